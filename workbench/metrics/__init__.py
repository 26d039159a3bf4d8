"""Detection metrics (AUC, EER, AP, accuracy, video AUC), per-domain tables and bootstrap intervals."""

from workbench.metrics.binary import (
    LOWER_IS_BETTER,
    METRIC_KEYS,
    SCORE_METRICS,
    compute_metrics,
    equal_error_rate,
    vertex_equal_error_rate,
)
from workbench.metrics.bootstrap import percentile_interval, video_bootstrap_ci, video_bootstrap_statistics
from workbench.metrics.breakdown import per_domain_metrics

__all__ = [
    "LOWER_IS_BETTER",
    "METRIC_KEYS",
    "SCORE_METRICS",
    "compute_metrics",
    "equal_error_rate",
    "per_domain_metrics",
    "percentile_interval",
    "vertex_equal_error_rate",
    "video_bootstrap_ci",
    "video_bootstrap_statistics",
]
