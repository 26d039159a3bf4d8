"""Matplotlib/seaborn versions of the figures, for static publication output (PDF/SVG/PNG).

Each function takes the same data as its plotly counterpart and returns a ``matplotlib.figure.Figure``
built without pyplot, so no global figure state is touched (Jupyter still displays it). Figures are
sized for print — one column (:data:`~workbench.viz.style.COLUMN_WIDTH_IN`) or, with several panels,
a page width — with 8 pt text (:func:`~workbench.viz.style.print_style`); legends sit outside the
axes, below them; algorithms keep the colour, dash and marker of :func:`~workbench.viz.style.styles_for`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from workbench.viz.data import (
    check_summary,
    curves,
    error_bar_caption,
    label_names,
    labelled,
    mean_over_runs,
    require_columns,
    split_eval_frame,
    square_matrix,
    surface,
)
from workbench.viz.gallery import gallery_layout, score_text
from workbench.viz.labels import label
from workbench.viz.style import (
    CATEGORY_PALETTE,
    COLUMN_WIDTH_IN,
    OUTLINE,
    PAGE_WIDTH_IN,
    REFERENCE,
    attribution_colourmap,
    print_style,
    styles_for,
    tick_text,
)


def legend_below(
    figure: Figure,
    handles: Sequence[Any] | None = None,
    labels: Sequence[str] | None = None,
    where: str = "lower center",
) -> None:
    """One legend for the figure outside its axes (never over data): below them, or ``where`` (e.g. "right upper")."""
    if handles is None:
        handles, labels = figure.axes[0].get_legend_handles_labels()
        order = sorted(range(len(labels)), key=lambda i: labels[i].startswith("chance"))  # references last
        handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    for ax in figure.axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if handles:
        columns = 1 if where.startswith("right") else min(len(handles), 5)
        figure.legend(handles, labels, loc=f"outside {where}", ncols=columns)


def cosine_heatmap_static(
    matrix: Any, names: Sequence[str] | None = None, title: str = "Cosine between domain gradients"
) -> Figure:
    """Annotated K×K cosine heatmap on a fixed [-1, 1] scale."""
    values, names = square_matrix(matrix, names)
    with print_style():
        side = min(PAGE_WIDTH_IN, max(COLUMN_WIDTH_IN, 1.1 + 0.6 * len(names)))
        figure = Figure(figsize=(side, side * 0.85), layout="constrained")
        ax = figure.subplots()
        sns.heatmap(
            values,
            annot=True,
            fmt=".2f",
            vmin=-1,
            vmax=1,
            cmap="RdBu",
            square=True,
            xticklabels=names,
            yticklabels=names,
            cbar_kws=dict(label="cos(g_i, g_j)"),
            ax=ax,
        )
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_title(title)
    return figure


def alignment_over_training_static(
    frame: pd.DataFrame, metrics: Sequence[str] = ("cos_clean_mean", "cos_perturbed_mean")
) -> Figure:
    """One panel per statistic, one line per algorithm (mean over runs, ±1 std band)."""
    require_columns(frame, ["algorithm", "step", *metrics], "alignment_over_training_static")
    styles = styles_for(frame["algorithm"])
    shown = frame.assign(algorithm=frame["algorithm"].map(label))
    with print_style():
        figure = Figure(figsize=(PAGE_WIDTH_IN if len(metrics) > 1 else COLUMN_WIDTH_IN, 2.6), layout="constrained")
        for ax, metric in zip(np.atleast_1d(figure.subplots(1, len(metrics), sharex=True)), metrics):
            sns.lineplot(
                shown,
                x="step",
                y=metric,
                hue="algorithm",
                style="algorithm",
                palette={label(a): s.colour for a, s in styles.items()},
                dashes={label(a): s.seaborn_dash for a, s in styles.items()},
                markers={label(a): s.mpl_marker for a, s in styles.items()},
                errorbar="sd",
                ax=ax,
            )
            ax.set_title(label(metric))
            ax.set_xlabel("training step")
            ax.set_ylabel("")
        legend_below(figure)
    return figure


def sharpness_vs_rho_static(data: pd.DataFrame | Mapping[str, pd.DataFrame], value: str = "sharpness") -> Figure:
    """One panel per domain, one line per algorithm: ``value`` against ρ (mean over repeated rows)."""
    frame = labelled(data)
    require_columns(frame, ["algorithm", "domain", "rho", value], "sharpness_vs_rho_static")
    frame = frame.assign(domain=frame["domain"].astype(str))
    domains = list(dict.fromkeys(frame["domain"]))
    stats = mean_over_runs(frame, ["algorithm", "domain", "rho"], value)
    styles = styles_for(frame["algorithm"])
    with print_style():
        columns = min(len(domains), 4)
        rows = -(-len(domains) // columns)
        figure = Figure(
            figsize=(PAGE_WIDTH_IN if columns > 1 else COLUMN_WIDTH_IN, 1.9 * rows + 0.6), layout="constrained"
        )
        axes = np.atleast_1d(figure.subplots(rows, columns, sharey=True, squeeze=False)).ravel()
        for ax, domain in zip(axes, domains):
            part = stats[stats["domain"] == domain]
            for algorithm, style in styles.items():
                line = part[part["algorithm"] == algorithm]
                ax.plot(
                    line["rho"],
                    line["mean"],
                    color=style.colour,
                    linestyle=style.mpl_dash,
                    marker=style.mpl_marker,
                    label=label(algorithm),
                )
            ax.set_title(domain)
            ax.set_xlabel("ρ")
        for ax in axes[len(domains) :]:
            ax.set_visible(False)
        for ax in axes[::columns]:
            ax.set_ylabel(label(value))
        legend_below(figure)
    return figure


def landscape_line_static(data: Any, xlabel: str = "α") -> Figure:
    """1-D loss slices, one line per label."""
    lines = curves(data)
    styles = styles_for(lines)
    with print_style():
        figure = Figure(figsize=(COLUMN_WIDTH_IN, 2.6), layout="constrained")
        ax = figure.subplots()
        for name, (coords, loss) in lines.items():
            style = styles[name]
            ax.plot(coords, loss, color=style.colour, linestyle=style.mpl_dash, label=label(name))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("loss")
        legend_below(figure)
    return figure


def landscape_contour_static(data: Any, levels: int = 20) -> Figure:
    """Filled contour of a 2-D slice with θ marked at the origin."""
    alphas, betas, loss = surface(data)
    with print_style():
        figure = Figure(figsize=(COLUMN_WIDTH_IN, 2.9), layout="constrained")
        ax = figure.subplots()
        filled = ax.contourf(betas, alphas, loss, levels=levels, cmap="viridis")
        ax.contour(betas, alphas, loss, levels=levels, colors="k", linewidths=0.3)
        ax.plot([0.0], [0.0], "wx")
        figure.colorbar(filled, ax=ax, label="loss")
        ax.set_xlabel("β (direction 2)")
        ax.set_ylabel("α (direction 1)")
    return figure


def gradcam_gallery_static(
    images: Mapping[str, Any],
    cams: Mapping[str, Mapping[str, Any]],
    scores: Mapping[str, Mapping[str, float]] | None = None,
    masks: Mapping[str, Any] | None = None,
    score_label: str = "in mask",
    normalize: bool = True,
    opacity: float = 0.7,
    mask_threshold: float = 0.5,
    cell_in: float = 0.95,
) -> Figure:
    """Faces (rows) beside their maps (columns), masks outlined, scores under the cells.

    The print twin of :func:`workbench.viz.gradcam_gallery` (same inputs and colour map,
    :func:`~workbench.viz.style.attribution_colourmap`): transparent at zero.
    """
    gallery = gallery_layout(images, cams, normalize, masks)
    columns = ["input", *gallery.columns]
    cmap = attribution_colourmap(opacity)
    with print_style():
        figure = Figure(
            figsize=(cell_in * len(columns) + 0.9, (cell_in + 0.22) * len(gallery.rows) + 0.35), layout="constrained"
        )
        axes = figure.subplots(len(gallery.rows), len(columns), squeeze=False)
        for row, name in enumerate(gallery.rows):
            mask = gallery.masks.get(name)
            for column, key in enumerate(columns):
                ax = axes[row, column]
                ax.imshow(gallery.pictures[name])
                if column:
                    ax.imshow(gallery.maps[(key, name)], cmap=cmap, vmin=0, vmax=gallery.peak)
                if mask is not None:
                    ax.contour(mask, levels=[mask_threshold], colors=[OUTLINE], linewidths=1.0)
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if row == 0:
                    ax.set_title(label(key))
                if column:
                    ax.set_xlabel(score_text(scores, key, name, score_label), fontsize=7, labelpad=1)
            axes[row, 0].set_ylabel(name, fontsize=7)
        bar = figure.colorbar(
            ScalarMappable(Normalize(0, gallery.peak), attribution_colourmap(1.0)),
            ax=axes,
            shrink=min(1.0, 2.5 / len(gallery.rows)),
            aspect=15,
            pad=0.01,
        )
        bar.set_label("map ÷ its maximum" if normalize else "map")
    return figure


def embedding_scatter_static(
    frame: pd.DataFrame, x: str = "x", y: str = "y", color: str = "domain", symbol: str = "label"
) -> Figure:
    """Scatter coloured by domain with one marker style per label (real/fake)."""
    require_columns(frame, [x, y, color, symbol], "embedding_scatter_static")
    shown = frame.assign(**{symbol: label_names(frame[symbol]), color: frame[color].astype(str)})
    with print_style():
        figure = Figure(figsize=(COLUMN_WIDTH_IN, 3.3), layout="constrained")
        ax = figure.subplots()
        sns.scatterplot(
            shown,
            x=x,
            y=y,
            hue=color,
            style=symbol,
            s=12,
            alpha=0.8,
            palette=list(CATEGORY_PALETTE[: shown[color].nunique()])
            if shown[color].nunique() <= len(CATEGORY_PALETTE)
            else None,
            ax=ax,
        )
        ax.set_xlabel("embedding dimension 1")
        ax.set_ylabel("embedding dimension 2")
        legend_below(figure, where="right upper")
    return figure


def results_bars_static(summary: pd.DataFrame, metric: str | None = None, title: str | None = None) -> Figure:
    """Grouped bars (x = evaluation group, one colour per algorithm) with [ci_low, ci_high] error bars,
    captioned with what they are (:func:`~workbench.viz.data.error_bar_caption`); ``metric`` as in
    :func:`workbench.viz.results_bars`; for AUC a dashed line marks chance (0.5); the legend sits below the axes."""
    metric = check_summary(summary, metric)
    groups = list(dict.fromkeys(summary["group"]))
    styles = styles_for(summary["algorithm"])
    width = 0.8 / len(styles)
    with print_style():
        figure = Figure(
            figsize=(min(PAGE_WIDTH_IN, max(COLUMN_WIDTH_IN, 0.8 + 0.75 * len(groups))), 2.8), layout="constrained"
        )
        ax = figure.subplots()
        for index, (algorithm, style) in enumerate(styles.items()):
            rows = summary[summary["algorithm"] == algorithm].set_index("group").reindex(groups)
            positions = np.arange(len(groups)) + (index - (len(styles) - 1) / 2) * width
            errors = np.vstack([rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]])
            ax.bar(
                positions,
                rows["mean"],
                width,
                yerr=errors,
                capsize=2,
                color=style.colour,
                hatch=style.mpl_hatch,
                edgecolor="white" if not style.mpl_hatch else "black",
                linewidth=0.3,
                label=label(algorithm),
                error_kw=dict(elinewidth=0.8),
            )
        if metric.lower().endswith("auc"):  # frame or video AUC: chance is 0.5
            ax.axhline(0.5, color=REFERENCE, linestyle=":", linewidth=1, label="chance")
        ax.set_xticks(np.arange(len(groups)), [tick_text(label(g)).replace("<br>", "\n") for g in groups])
        ax.set_ylabel(metric)
        ax.set_xlabel(error_bar_caption(summary), fontsize="small")
        if title is not None:
            ax.set_title(title)
        legend_below(figure)
    return figure


def training_curves_static(
    frame: pd.DataFrame, metric: str = "auc", groups: Sequence[str] | None = None, loss: str = "loss"
) -> Figure:
    """Training loss and ``metric`` per evaluation group against step (colour = algorithm, dash = group)."""
    train, evaluated, groups = split_eval_frame(frame, metric, groups, loss)
    styles = styles_for(frame["algorithm"])
    dashes = ["-", "--", ":", "-.", (0, (8, 3)), (0, (8, 3, 2, 3))]
    with print_style():
        figure = Figure(figsize=(PAGE_WIDTH_IN, 2.7), layout="constrained")
        left, right = figure.subplots(1, 2)
        train_stats = mean_over_runs(train, ["algorithm", "step"], "value")
        eval_stats = mean_over_runs(evaluated, ["algorithm", "group", "step"], "value")
        handles = []
        for algorithm, style in styles.items():
            line = train_stats[train_stats["algorithm"] == algorithm]
            left.plot(line["step"], line["mean"], color=style.colour)
            for index, group in enumerate(groups):
                line = eval_stats[(eval_stats["algorithm"] == algorithm) & (eval_stats["group"] == group)]
                right.plot(
                    line["step"],
                    line["mean"],
                    color=style.colour,
                    linestyle=dashes[index % len(dashes)],
                    marker=style.mpl_marker,
                )
            handles.append(Line2D([], [], color=style.colour, marker=style.mpl_marker, label=label(algorithm)))
        handles += [
            Line2D([], [], color="0.3", linestyle=dashes[i % len(dashes)], label=label(g)) for i, g in enumerate(groups)
        ]
        left.set_title(f"training {label(loss)}")
        right.set_title(label(metric))
        for ax in (left, right):
            ax.set_xlabel("training step")
        legend_below(figure, handles, [h.get_label() for h in handles])
    return figure
