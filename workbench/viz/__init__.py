"""Figures (plotly, with matplotlib/seaborn versions for print), export, and the explorer widgets.

Builders take plain data (arrays, DataFrames, loaded frames, analysis results, run records) and return
a figure; they never call ``show()``. See docs/analysis.md.
"""

from workbench.viz.alignment import alignment_over_training, cosine_heatmap, layerwise_heatmap
from workbench.viz.attribution_explorer import AttributionExplorer
from workbench.viz.data import alignment_frame, eval_frame
from workbench.viz.dataset import counts_figure, frame_gallery, image_grid
from workbench.viz.embeddings import embedding_scatter
from workbench.viz.explorer import RhoExplorer
from workbench.viz.export import kaleido_session, save_figure
from workbench.viz.gallery import frame_gallery_inputs, gradcam_gallery
from workbench.viz.labels import label, readable
from workbench.viz.landscape import landscape_contour, landscape_line, landscape_surface, sharpness_vs_rho
from workbench.viz.localisation import (
    localisation_depth_figure,
    localisation_depth_static,
    localisation_figure,
    method_comparison_figure,
    method_comparison_static,
)
from workbench.viz.results import results_bars, training_curves
from workbench.viz.robustness import robustness_figure
from workbench.viz.static import (
    alignment_over_training_static,
    cosine_heatmap_static,
    embedding_scatter_static,
    gradcam_gallery_static,
    landscape_contour_static,
    landscape_line_static,
    results_bars_static,
    sharpness_vs_rho_static,
    training_curves_static,
)

__all__ = [
    "AttributionExplorer",
    "RhoExplorer",
    "alignment_frame",
    "alignment_over_training",
    "alignment_over_training_static",
    "cosine_heatmap",
    "cosine_heatmap_static",
    "counts_figure",
    "embedding_scatter",
    "embedding_scatter_static",
    "eval_frame",
    "frame_gallery",
    "frame_gallery_inputs",
    "gradcam_gallery",
    "gradcam_gallery_static",
    "image_grid",
    "kaleido_session",
    "landscape_contour",
    "landscape_contour_static",
    "landscape_line",
    "landscape_line_static",
    "landscape_surface",
    "label",
    "layerwise_heatmap",
    "localisation_depth_figure",
    "localisation_depth_static",
    "localisation_figure",
    "method_comparison_figure",
    "method_comparison_static",
    "readable",
    "results_bars",
    "results_bars_static",
    "robustness_figure",
    "save_figure",
    "sharpness_vs_rho",
    "sharpness_vs_rho_static",
    "training_curves",
    "training_curves_static",
]
