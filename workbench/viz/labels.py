"""Human labels for what figures and tables show: metrics, statistics, evaluation groups, attribution methods.

Figures label axes, panels and legends with :func:`label` (never a column name), and notebooks
display tables through :func:`readable`. Unknown names fall back to the name with underscores as
spaces, so a new metric still reads as words.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from workbench.viz.style import algorithm_of, display_name

LABELS: dict[str, str] = {
    # detection metrics (workbench.metrics)
    "auc": "AUC",
    "video_auc": "video AUC",
    "eer": "EER",
    "eer_vertex": "EER (nearest ROC vertex)",
    "ap": "AP",
    "acc": "accuracy at 0.5",
    "loss": "loss",
    "lr": "learning rate",
    # gradient alignment and sharpness (workbench.analysis)
    "cos_clean_mean": "mean cos(g_k, g)",
    "cos_perturbed_mean": "mean cos(g_k^p, g)",
    "conflict_rate": "conflicting domain pairs",
    "conflict_rate_perturbed": "conflicting pairs at ascent points",
    "loss_mean": "mean domain loss",
    "loss_perturbed_mean": "mean loss at ascent points",
    "grad_norm": "‖g‖",
    "sharpness": "ε-sharpness",
    "loss_perturbed": "loss at the ascent point",
    "rho": "ρ",
    "lambda_max": "largest Hessian eigenvalue",
    "trace": "Hessian trace",
    # localisation (workbench.analysis.attribution)
    "energy_in_mask": "energy in mask",
    "pointing_game": "pointing game",
    "mask_fraction": "chance (mask area)",
    "seconds_per_image": "seconds per image",
    "n": "images",
    "n_undefined": "images without a score",
    "domains": "domains",
    "layer": "layer",
    "depth": "depth",
    "method": "method",
    "domain": "domain",
    "algorithm": "algorithm",
    "map_size": "map size",
    # evaluation groups
    "source_val": "source validation",
    "source_test": "source test",
    "train": "training",
    "held_out_mean": "held-out mean",
    "gap": "source − held-out gap",
    "step": "step",
}

METHOD_LABELS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "guided_gradcam": "Guided Grad-CAM",
    "integrated_gradients": "Integrated Gradients",
    "saliency": "Saliency",
    "occlusion": "Occlusion",
}


def label(name: str) -> str:
    """The human label of a metric, statistic, group, method or algorithm name.

    ``"auc"`` → ``"AUC"``, ``"target/X"`` → ``"X (held-out)"``, ``"gradcam"`` → ``"Grad-CAM"``,
    ``"roga"`` → ``"RoGA"`` (:func:`~workbench.viz.style.display_name`), ``"target/X:auc"`` → ``"AUC, X (held-out)"``.
    """
    name = str(name)
    if name in LABELS:
        return LABELS[name]
    if name in METHOD_LABELS:
        return METHOD_LABELS[name]
    if ":" in name:  # a collected run table's "<group>:<metric>" column
        group, metric = name.rsplit(":", 1)
        return f"{label(metric)}, {label(group)}"
    if algorithm_of(name) is not None:
        return display_name(name)
    if name.startswith("target/"):
        return f"{name.split('/', 1)[1]} (held-out)"
    if name.startswith(("source_test/", "source_val/")):
        group, domain = name.split("/", 1)
        return f"{domain} ({LABELS[group]})"
    return name.replace("_", " ")


def readable(table: pd.DataFrame, names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``table`` for display: columns (every level of a column MultiIndex) and index names as labels, algorithm
    and method values (and an index of them, named or not) spelled out.

    ``names`` overrides :func:`label` for particular columns.
    """
    shown = table.copy()
    for column, spell in (("algorithm", display_name), ("method", label)):
        if column in shown.columns:
            shown[column] = shown[column].map(spell)
    if shown.index.name in ("algorithm", "method"):
        shown.index = shown.index.map(display_name if shown.index.name == "algorithm" else label)
    elif shown.index.name is None and all(algorithm_of(str(name)) is not None for name in shown.index):
        shown.index = shown.index.map(lambda name: display_name(str(name)))
    overrides = dict(names or {})
    shown = shown.rename(columns=lambda c: overrides.get(c, label(c)) if isinstance(c, str) else c)
    shown.index.names = [overrides.get(n, label(n)) if isinstance(n, str) else n for n in shown.index.names]
    return shown
