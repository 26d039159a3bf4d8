"""Video-level (cluster) bootstrap confidence intervals for a metric averaged over seeds.

Frames of one video are strongly correlated, so resampling frames would understate the spread.
Here the resampling unit is the video: each resample draws the real videos and the fake videos
separately, with replacement and in their original numbers (a stratified bootstrap, so every
resample has both classes); a drawn video brings all of its frames. When several seeds (runs)
were evaluated on the same videos, one draw of videos is applied to every seed's predictions, the
metric is computed per seed and the resample's statistic is the mean over seeds, the same statistic
as the reported mean. The interval is the percentile interval of these statistics; it reflects
which test videos happened to be sampled, while seed-to-seed spread is reported separately as std.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from workbench.metrics.binary import (
    FRAME_METRICS,
    SCORE_METRICS,
    accuracy,
    check_labels,
    check_probabilities,
    check_videos,
    cross_entropy,
)


def mann_whitney_auc(labels: np.ndarray, prob_fake: np.ndarray) -> float:
    """ROC AUC through the Mann-Whitney U identity (mid-ranks for ties), equal to sklearn's value.

    AUC = (sum of the fakes' ranks - n_fake (n_fake + 1) / 2) / (n_fake n_real). It is used inside
    the bootstrap loop because it skips sklearn's per-call validation (about 15x faster).
    """
    ranks = rankdata(prob_fake)
    is_fake = labels == 1
    n_fake = int(is_fake.sum())
    n_real = len(labels) - n_fake
    return float((ranks[is_fake].sum() - n_fake * (n_fake + 1) / 2.0) / (n_fake * n_real))


def _frame_metric(metric: str, threshold: float):
    if metric == "acc":
        return lambda y, p: accuracy(y, p, threshold)
    if metric == "auc":
        return mann_whitney_auc
    if metric == "log_loss":
        return cross_entropy
    return FRAME_METRICS[metric]


class _SeedPredictions:
    """One seed's predictions indexed by video code, so that a resample gathers rows without a loop."""

    def __init__(self, labels: np.ndarray, probs: np.ndarray, codes: np.ndarray, n_videos: int) -> None:
        order = np.argsort(codes, kind="stable")
        self.labels = labels[order]
        self.probs = probs[order]
        self.counts = np.bincount(codes, minlength=n_videos)
        self.starts = np.cumsum(self.counts) - self.counts
        self.video_probs = np.bincount(codes, weights=probs, minlength=n_videos) / np.maximum(self.counts, 1)

    def rows(self, videos: np.ndarray) -> np.ndarray:
        counts = self.counts[videos]
        first = np.repeat(self.starts[videos] - (np.cumsum(counts) - counts), counts)
        return first + np.arange(counts.sum())


def video_bootstrap_ci(
    samples: Sequence[tuple[Any, Any, Any]],
    metric: str = "auc",
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    threshold: float = 0.5,
) -> tuple[float, float]:
    """Percentile interval of the seed-mean ``metric`` under a stratified video-level bootstrap.

    ``samples`` holds one ``(labels, prob_fake, videos)`` triple per seed; all seeds must cover the
    same videos, every video must keep one label, and both classes must be present. ``video_auc``
    resamples the per-video mean probabilities; the other metrics resample frames by video.
    """
    if metric not in SCORE_METRICS:
        raise ValueError(f"metric {metric!r} cannot be bootstrapped; choose one of {list(SCORE_METRICS)}")
    if not samples:
        raise ValueError("no predictions to bootstrap")
    if n_boot < 1 or not 0.0 < ci < 1.0:
        raise ValueError(f"need n_boot >= 1 and 0 < ci < 1, got n_boot={n_boot}, ci={ci}")
    checked = []
    for s, (labels, probs, videos) in enumerate(samples):
        y = check_labels(labels, f"sample {s} labels")
        p = check_probabilities(probs, f"sample {s} prob_fake")
        v = check_videos(videos, f"sample {s} videos")
        if not len(y) == len(p) == len(v):
            lengths = (len(y), len(p), len(v))
            raise ValueError(f"sample {s}: labels, prob_fake and videos differ in length {lengths}")
        checked.append((y, p, v))

    video_ids, codes = np.unique(np.concatenate([v for _, _, v in checked]), return_inverse=True)
    all_labels = np.concatenate([y for y, _, _ in checked])
    per_video = pd.Series(all_labels).groupby(codes)
    mixed = np.flatnonzero(per_video.nunique().to_numpy() > 1)
    if len(mixed):
        raise ValueError(f"video {video_ids[mixed[0]]!r} has both real and fake frames")
    video_labels = per_video.first().to_numpy()
    strata = [np.flatnonzero(video_labels == label) for label in (0, 1)]
    if min(len(stratum) for stratum in strata) == 0:
        raise ValueError(f"bootstrap needs real and fake videos; have {len(strata[0])} real, {len(strata[1])} fake")

    seeds = []
    offset = 0
    for s, (y, p, _) in enumerate(checked):
        seed_codes = codes[offset : offset + len(y)]
        offset += len(y)
        seen = np.unique(seed_codes)
        if len(seen) != len(video_ids):
            absent = video_ids[np.setdiff1d(np.arange(len(video_ids)), seen)[0]]
            raise ValueError(f"sample {s} has no predictions for video {absent!r}; seeds must cover the same videos")
        seeds.append(_SeedPredictions(y, p, seed_codes, len(video_ids)))

    rng = np.random.default_rng(seed)
    frame_metric = None if metric == "video_auc" else _frame_metric(metric, threshold)
    statistics = np.empty(n_boot)
    for b in range(n_boot):
        drawn = np.concatenate([rng.choice(stratum, size=len(stratum), replace=True) for stratum in strata])
        values = []
        for predictions in seeds:
            if frame_metric is None:
                values.append(mann_whitney_auc(video_labels[drawn], predictions.video_probs[drawn]))
            else:
                rows = predictions.rows(drawn)
                values.append(frame_metric(predictions.labels[rows], predictions.probs[rows]))
        statistics[b] = np.mean(values)
    tail = 100.0 * (1.0 - ci) / 2.0
    low, high = np.percentile(statistics, [tail, 100.0 - tail])
    return float(low), float(high)
