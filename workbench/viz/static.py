"""Matplotlib/seaborn versions of the figures, for static publication output (PDF/SVG/PNG).

Each function takes the same data as its plotly counterpart and returns a ``matplotlib.figure.Figure``
built without pyplot, so no global figure state is touched (Jupyter still displays it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LinearSegmentedColormap, to_rgba
from matplotlib.figure import Figure

from workbench.viz.data import (
    check_summary,
    curves,
    label_names,
    labelled,
    mean_over_runs,
    require_columns,
    split_eval_frame,
    square_matrix,
    surface,
)
from workbench.viz.gallery import CAM_COLOURSCALE, gallery_layout
from workbench.viz.style import colours_for


def cosine_heatmap_static(matrix: Any, names: Sequence[str] | None = None, title: str = "cos(g_i, g_j)") -> Figure:
    """Annotated K×K cosine heatmap on a fixed [-1, 1] scale."""
    values, names = square_matrix(matrix, names)
    figure = Figure(figsize=(1.0 + 0.9 * len(names), 0.6 + 0.8 * len(names)), layout="constrained")
    ax = figure.subplots()
    sns.heatmap(values, annot=True, fmt=".2f", vmin=-1, vmax=1, cmap="RdBu", square=True,
                xticklabels=names, yticklabels=names, cbar_kws=dict(label="cos"), ax=ax)
    ax.set_title(title)
    return figure


def alignment_over_training_static(
    frame: pd.DataFrame, metrics: Sequence[str] = ("cos_clean_mean", "cos_perturbed_mean")
) -> Figure:
    """One panel per statistic, one line per algorithm (mean over runs, ±1 std band)."""
    require_columns(frame, ["algorithm", "step", *metrics], "alignment_over_training_static")
    palette = colours_for(frame["algorithm"])
    figure = Figure(figsize=(4.5 * len(metrics), 3.5), layout="constrained")
    for ax, metric in zip(np.atleast_1d(figure.subplots(1, len(metrics), sharex=True)), metrics):
        sns.lineplot(frame, x="step", y=metric, hue="algorithm", palette=palette, errorbar="sd", marker="o", ax=ax)
        ax.set_title(metric)
    return figure


def sharpness_vs_rho_static(data: pd.DataFrame | Mapping[str, pd.DataFrame], value: str = "sharpness") -> Figure:
    """One panel per domain, one line per algorithm: ``value`` against ρ (mean over repeated rows)."""
    frame = labelled(data)
    require_columns(frame, ["algorithm", "domain", "rho", value], "sharpness_vs_rho_static")
    frame = frame.assign(domain=frame["domain"].astype(str))
    domains = list(dict.fromkeys(frame["domain"]))
    stats = mean_over_runs(frame, ["algorithm", "domain", "rho"], value)
    palette = colours_for(frame["algorithm"])
    figure = Figure(figsize=(3.5 * len(domains), 3.2), layout="constrained")
    for ax, domain in zip(np.atleast_1d(figure.subplots(1, len(domains), sharey=True)), domains):
        rows = stats[stats["domain"] == domain]
        for algorithm, colour in palette.items():
            line = rows[rows["algorithm"] == algorithm]
            ax.plot(line["rho"], line["mean"], marker="o", color=colour, label=algorithm)
        ax.set_title(domain)
        ax.set_xlabel("ρ")
    figure.axes[0].set_ylabel(value)
    figure.axes[0].legend()
    return figure


def landscape_line_static(data: Any, xlabel: str = "α") -> Figure:
    """1-D loss slices, one line per label."""
    lines = curves(data)
    colours = colours_for(lines)
    figure = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = figure.subplots()
    for label, (coords, loss) in lines.items():
        ax.plot(coords, loss, color=colours[label], label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    ax.legend()
    return figure


def landscape_contour_static(data: Any, levels: int = 20) -> Figure:
    """Filled contour of a 2-D slice with θ marked at the origin."""
    alphas, betas, loss = surface(data)
    figure = Figure(figsize=(4.5, 3.8), layout="constrained")
    ax = figure.subplots()
    filled = ax.contourf(betas, alphas, loss, levels=levels, cmap="viridis")
    ax.contour(betas, alphas, loss, levels=levels, colors="k", linewidths=0.3)
    ax.plot([0.0], [0.0], "wx")
    figure.colorbar(filled, ax=ax, label="loss")
    ax.set_xlabel("β (direction 2)")
    ax.set_ylabel("α (direction 1)")
    return figure


def _rgba(colour: str) -> tuple[float, float, float, float]:
    """A plotly ``"rgba(r, g, b, a)"`` colour as a matplotlib RGBA tuple."""
    red, green, blue, alpha = (float(v) for v in colour[colour.index("(") + 1: colour.index(")")].split(","))
    return to_rgba((red / 255, green / 255, blue / 255, alpha))


# The interactive gallery's overlay colours, transparency included: a CAM of zero leaves the face untinted.
CAM_COLOURMAP = LinearSegmentedColormap.from_list("cam", [(stop, _rgba(colour)) for stop, colour in CAM_COLOURSCALE])


def gradcam_gallery_static(
    images: Mapping[str, Any],
    cams: Mapping[str, Mapping[str, Any]],
    scores: Mapping[str, Mapping[str, float]] | None = None,
    score_label: str = "energy in mask",
    normalize: bool = True,
) -> Figure:
    """Faces with CAM overlays: rows = algorithms, columns = domains, titles carry the scores.

    The overlay uses the interactive gallery's colour scale (:data:`CAM_COLOURMAP`): transparent at
    zero, opaque red at the peak.
    """
    algorithms, domains, pictures, maps = gallery_layout(images, cams, normalize)
    peak = 1.0 if normalize else max(float(m.max()) for m in maps.values()) or 1.0
    figure = Figure(figsize=(2.2 * len(domains), 2.4 * len(algorithms)), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(algorithms), len(domains), squeeze=False))
    for row, algorithm in enumerate(algorithms):
        for column, domain in enumerate(domains):
            ax = axes[row, column]
            ax.imshow(pictures[domain])
            ax.imshow(maps[(algorithm, domain)], cmap=CAM_COLOURMAP, vmin=0, vmax=peak)
            score = (scores or {}).get(algorithm, {}).get(domain)
            ax.set_title(f"{algorithm} · {domain}" + ("" if score is None else f"\n{score_label} {score:.2f}"), fontsize=8)
            ax.axis("off")
    return figure


def embedding_scatter_static(
    frame: pd.DataFrame, x: str = "x", y: str = "y", color: str = "domain", symbol: str = "label"
) -> Figure:
    """Scatter coloured by domain with one marker style per label (real/fake)."""
    require_columns(frame, [x, y, color, symbol], "embedding_scatter_static")
    shown = frame.assign(**{symbol: label_names(frame[symbol]), color: frame[color].astype(str)})
    figure = Figure(figsize=(5, 4), layout="constrained")
    ax = figure.subplots()
    sns.scatterplot(shown, x=x, y=y, hue=color, style=symbol, s=18, alpha=0.8, ax=ax)
    return figure


def results_bars_static(summary: pd.DataFrame, metric: str | None = None, title: str | None = None) -> Figure:
    """Grouped bars (x = evaluation group, one colour per algorithm) with [ci_low, ci_high] error bars;
    ``metric`` as in :func:`workbench.viz.results_bars`; for AUC a dashed line marks chance (0.5)."""
    metric = check_summary(summary, metric)
    groups = list(dict.fromkeys(summary["group"]))
    palette = colours_for(summary["algorithm"])
    width = 0.8 / len(palette)
    figure = Figure(figsize=(1.2 + 1.3 * len(groups), 3.5), layout="constrained")
    ax = figure.subplots()
    for index, (algorithm, colour) in enumerate(palette.items()):
        rows = summary[summary["algorithm"] == algorithm].set_index("group").reindex(groups)
        positions = np.arange(len(groups)) + (index - (len(palette) - 1) / 2) * width
        errors = np.vstack([rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]])
        ax.bar(positions, rows["mean"], width, yerr=errors, capsize=3, color=colour, label=algorithm)
    if metric.lower().endswith("auc"):  # frame or video AUC: chance is 0.5
        ax.axhline(0.5, color="0.4", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(np.arange(len(groups)), groups, rotation=20, ha="right")
    ax.set_ylabel(metric)
    if title is not None:
        ax.set_title(title)
    ax.legend()
    return figure


def training_curves_static(
    frame: pd.DataFrame, metric: str = "auc", groups: Sequence[str] | None = None, loss: str = "loss"
) -> Figure:
    """Training loss and ``metric`` per evaluation group against step (colour = algorithm, style = group)."""
    train, evaluated, _ = split_eval_frame(frame, metric, groups, loss)
    palette = colours_for(frame["algorithm"])
    figure = Figure(figsize=(9, 3.5), layout="constrained")
    left, right = figure.subplots(1, 2)
    sns.lineplot(train, x="step", y="value",
                 hue="algorithm", palette=palette, errorbar=None, ax=left)
    left.set_title(f"train {loss}")
    sns.lineplot(evaluated, x="step", y="value", hue="algorithm", style="group", palette=palette,
                 errorbar=None, marker="o", ax=right)
    right.set_title(metric)
    return figure
