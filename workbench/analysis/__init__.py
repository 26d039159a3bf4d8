"""Analysis of trained (or training) detectors: functions from a model and data to numbers/tensors.

No plotting here (that is ``workbench.viz``). Every function restores the model's weights, buffers
and train/eval flags exactly.
"""

from workbench.analysis.callbacks import AlignmentCallback
from workbench.analysis.embeddings import penultimate_embeddings, tsne_2d
from workbench.analysis.gradients import (
    alignment_summary,
    ascent_pass,
    ascent_point_gradients,
    conflict_rate,
    cosine_matrix,
    domain_gradients,
    layerwise_cosine,
    parameter_groups,
    per_domain_perturbed_loss,
    preserved_state,
)
from workbench.analysis.hessian import hessian_top_eigenvalue, hutchinson_trace
from workbench.analysis.landscape import (
    LossCurve,
    LossSurface,
    filter_normalized_direction,
    interpolate_checkpoints,
    loss_along_direction,
    loss_grid_1d,
    loss_grid_2d,
)
from workbench.analysis.sharpness import epsilon_sharpness, sharpness_per_domain

__all__ = [
    "AlignmentCallback",
    "LossCurve",
    "LossSurface",
    "alignment_summary",
    "ascent_pass",
    "ascent_point_gradients",
    "conflict_rate",
    "cosine_matrix",
    "domain_gradients",
    "epsilon_sharpness",
    "filter_normalized_direction",
    "hessian_top_eigenvalue",
    "hutchinson_trace",
    "interpolate_checkpoints",
    "layerwise_cosine",
    "loss_along_direction",
    "loss_grid_1d",
    "loss_grid_2d",
    "parameter_groups",
    "penultimate_embeddings",
    "per_domain_perturbed_loss",
    "preserved_state",
    "sharpness_per_domain",
    "tsne_2d",
]
