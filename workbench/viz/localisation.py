"""Localisation figures: how well attribution maps fall on the manipulated region per domain, per depth
(feature stage) and per method, interactive (plotly) and static (matplotlib) — the scores of
:mod:`workbench.analysis.localisation`. Each marks the chance level: a uniform map scores the mask's area
share on both the energy in the mask and the pointing game."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

from workbench.analysis.localisation import SCORE_COLUMNS, mean_over_domains
from workbench.viz.data import (
    require_columns,
)
from workbench.viz.labels import label
from workbench.viz.static import legend_below
from workbench.viz.style import (
    PAGE_WIDTH_IN,
    REFERENCE,
    legend_outside,
    paper_layout,
    print_style,
    styles_for,
    tick_text,
)

CHANCE = "chance (mask area)"
SCORES = ("energy_in_mask", "pointing_game")


def _score_table(table: pd.DataFrame, value: str) -> pd.DataFrame:
    if value not in SCORES:
        raise ValueError(f"value={value!r}: choose one of {list(SCORES)}")
    require_columns(table, ["algorithm", "domain", value, "mask_fraction"], "the localisation table")
    return table.dropna(subset=[value])


def localisation_figure(
    table: pd.DataFrame, value: str = "energy_in_mask", held_out: Sequence[str] = (), title: str | None = None
) -> go.Figure:
    """Grouped bars of a localisation score per domain (x) and algorithm (colour), chance marked per domain.

    ``table`` has columns ``algorithm``, ``domain``, ``value`` (``energy_in_mask`` or
    ``pointing_game``) and ``mask_fraction`` (e.g.
    :func:`workbench.analysis.localisation.localisation_table`). A uniform map scores the mask's area
    share on both, so bars above the black marks concentrate on the manipulated region. Domains in
    ``held_out`` are labelled so.
    """
    defined = _score_table(table, value)
    names = {d: tick_text(f"{d} (held-out)" if d in set(held_out) else d) for d in dict.fromkeys(defined["domain"])}
    figure = go.Figure()
    for algorithm, style in styles_for(defined["algorithm"]).items():
        rows = defined[defined["algorithm"] == algorithm]
        figure.add_trace(
            go.Bar(
                x=[names[d] for d in rows["domain"]],
                y=rows[value],
                name=label(algorithm),
                marker_color=style.colour,
                marker_pattern_shape=style.hatch,
                hovertemplate="%{x}: %{y:.3f}<extra>" + label(algorithm) + "</extra>",
            )
        )
    reference = defined.groupby("domain", sort=False)["mask_fraction"].mean()
    figure.add_trace(
        go.Scatter(
            x=[names[d] for d in reference.index],
            y=list(reference.values),
            mode="markers",
            name=CHANCE,
            marker=dict(symbol="line-ew-open", size=34, color=REFERENCE, line=dict(width=3)),
            hovertemplate="%{x}: chance %{y:.3f}<extra></extra>",
        )
    )
    top = max(float(defined[value].max()), float(reference.max()))
    paper_layout(
        figure,
        barmode="group",
        yaxis=dict(title=label(value), range=[0, min(1.0, top * 1.15 + 0.02)]),
        title=title or f"Localisation per domain: {label(value)}",
        width=900,
        height=480,
    )
    return legend_outside(figure)


def _depth_ticks(stats: pd.DataFrame, default_layer: str | None) -> tuple[list[str], dict[str, str]]:
    order = stats.sort_values("depth", kind="stable").drop_duplicates("layer")
    ticks = {}
    for row in order.itertuples():
        size = f"{int(row.height)} × {int(row.width)}" if "height" in stats.columns else ""
        marked = f"{row.layer} (default)" if row.layer == default_layer else row.layer
        ticks[row.layer] = f"{marked}<br>{size}" if size else marked
    return list(ticks), ticks


def _add_chance(figure: go.Figure, x: Sequence[str], chance: pd.Series, stats: pd.DataFrame, **drawing: Any) -> None:
    """The chance level (a uniform map's score, the mask's area) in both score panels, and a y range that
    shows it and every score."""
    for column in (1, 2):
        figure.add_trace(
            go.Scatter(
                x=list(x),
                y=chance,
                name=CHANCE,
                legendgroup="chance",
                showlegend=column == 1,
                hovertemplate="%{x}: chance %{y:.3f}<extra></extra>",
                **drawing,
            ),
            row=1,
            col=column,
        )
    top = max(float(stats[list(SCORES)].max().max()), float(chance.max()))
    figure.update_yaxes(range=[0, min(1.0, top * 1.15 + 0.02)])


def localisation_depth_figure(
    table: pd.DataFrame,
    domains: Sequence[str] | None = None,
    default_layer: str | None = None,
    title: str = "Grad-CAM localisation against depth",
) -> go.Figure:
    """Energy in the mask and pointing game (panels) at every layer (x, shallow to deep), one line per algorithm.

    ``table``: :func:`workbench.analysis.localisation.localisation_by_depth`; scores are averaged
    over ``domains`` (default all), each domain weighing the same. The dotted black line is the
    chance level; ``default_layer`` is marked on the axis.
    """
    require_columns(table, ["algorithm", "layer", "depth", "domain", *SCORE_COLUMNS], "localisation_depth_figure")
    rows = table if domains is None else table[table["domain"].isin(list(domains))]
    if rows.empty:
        raise ValueError(
            f"no rows for domains {list(domains or [])}; the table has {list(dict.fromkeys(table['domain']))}"
        )
    stats = mean_over_domains(rows, ["algorithm", "layer"])
    layers, ticks = _depth_ticks(stats, default_layer)
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=[label(v) for v in SCORES], shared_yaxes=True, horizontal_spacing=0.06
    )
    for algorithm, style in styles_for(stats["algorithm"]).items():
        line = stats[stats["algorithm"] == algorithm].set_index("layer").reindex(layers)
        for column, value in enumerate(SCORES, start=1):
            figure.add_trace(
                go.Scatter(
                    x=[ticks[layer] for layer in layers],
                    y=line[value],
                    mode="lines+markers",
                    name=label(algorithm),
                    legendgroup=algorithm,
                    showlegend=column == 1,
                    line=dict(color=style.colour, dash=style.dash, width=2.5),
                    marker=dict(symbol=style.marker, size=9),
                    hovertemplate="%{x}: %{y:.3f}<extra>" + label(algorithm) + "</extra>",
                ),
                row=1,
                col=column,
            )
    chance = stats.groupby("layer", sort=False)["mask_fraction"].mean().reindex(layers)
    _add_chance(
        figure,
        [ticks[layer] for layer in layers],
        chance,
        stats,
        mode="lines",
        line=dict(color=REFERENCE, dash="dot", width=2),
    )
    figure.update_xaxes(title_text="layer (map size at the input size)")
    paper_layout(figure, title=title, width=1000, height=480)
    return legend_outside(figure)


def method_comparison_figure(
    table: pd.DataFrame, domains: Sequence[str] | None = None, title: str = "Localisation by attribution method"
) -> go.Figure:
    """Energy in the mask and pointing game (panels) per attribution method (x) and algorithm (colour).

    ``table``: :func:`workbench.analysis.localisation.compare_methods` ``.table``; averaged over
    ``domains`` (default all), each domain weighing the same; black marks: chance level.
    """
    require_columns(table, ["algorithm", "method", "domain", *SCORE_COLUMNS], "method_comparison_figure")
    rows = table if domains is None else table[table["domain"].isin(list(domains))]
    stats = mean_over_domains(rows, ["algorithm", "method"])
    methods = list(dict.fromkeys(stats["method"]))
    names = [tick_text(label(m)) for m in methods]
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=[label(v) for v in SCORES], shared_yaxes=True, horizontal_spacing=0.06
    )
    for algorithm, style in styles_for(stats["algorithm"]).items():
        bars = stats[stats["algorithm"] == algorithm].set_index("method").reindex(methods)
        for column, value in enumerate(SCORES, start=1):
            figure.add_trace(
                go.Bar(
                    x=names,
                    y=bars[value],
                    name=label(algorithm),
                    legendgroup=algorithm,
                    showlegend=column == 1,
                    marker_color=style.colour,
                    marker_pattern_shape=style.hatch,
                    hovertemplate="%{x}: %{y:.3f}<extra>" + label(algorithm) + "</extra>",
                ),
                row=1,
                col=column,
            )
    chance = stats.groupby("method", sort=False)["mask_fraction"].mean().reindex(methods)
    marker = dict(symbol="line-ew-open", size=40, color=REFERENCE, line=dict(width=3))
    _add_chance(figure, names, chance, stats, mode="markers", marker=marker)
    paper_layout(figure, barmode="group", title=title, width=1000, height=480)
    return legend_outside(figure)


def _score_panels(figure: Figure) -> np.ndarray:
    axes = np.atleast_1d(figure.subplots(1, 2, sharey=True))
    for ax, value in zip(axes, SCORES):
        ax.set_title(label(value))
    return axes


def localisation_depth_static(
    table: pd.DataFrame, domains: Sequence[str] | None = None, default_layer: str | None = None
) -> Figure:
    """The print twin of :func:`workbench.viz.localisation_depth_figure`."""
    require_columns(table, ["algorithm", "layer", "depth", "domain", *SCORE_COLUMNS], "localisation_depth_static")
    rows = table if domains is None else table[table["domain"].isin(list(domains))]
    stats = mean_over_domains(rows, ["algorithm", "layer"])
    order = stats.sort_values("depth", kind="stable").drop_duplicates("layer")
    layers = list(order["layer"])
    ticks = [
        f"{r.layer}{'*' if r.layer == default_layer else ''}\n{int(r.height)}×{int(r.width)}"
        if "height" in order.columns
        else r.layer
        for r in order.itertuples()
    ]
    chance = stats.groupby("layer", sort=False)["mask_fraction"].mean().reindex(layers)
    with print_style():
        figure = Figure(figsize=(PAGE_WIDTH_IN, 2.7), layout="constrained")
        axes = _score_panels(figure)
        positions = np.arange(len(layers))
        for algorithm, style in styles_for(stats["algorithm"]).items():
            line = stats[stats["algorithm"] == algorithm].set_index("layer").reindex(layers)
            for ax, value in zip(axes, SCORES):
                ax.plot(
                    positions,
                    line[value],
                    color=style.colour,
                    linestyle=style.mpl_dash,
                    marker=style.mpl_marker,
                    label=label(algorithm),
                )
        for ax in axes:
            ax.plot(positions, chance, color=REFERENCE, linestyle=":", linewidth=1.2, label=CHANCE)
            ax.set_xticks(positions, ticks)
            ax.set_xlabel("layer (map size)" + ("; * default" if default_layer in layers else ""))
            ax.set_ylim(bottom=0)
        legend_below(figure)
    return figure


def method_comparison_static(table: pd.DataFrame, domains: Sequence[str] | None = None) -> Figure:
    """The print twin of :func:`workbench.viz.method_comparison_figure`."""
    require_columns(table, ["algorithm", "method", "domain", *SCORE_COLUMNS], "method_comparison_static")
    rows = table if domains is None else table[table["domain"].isin(list(domains))]
    stats = mean_over_domains(rows, ["algorithm", "method"])
    methods = list(dict.fromkeys(stats["method"]))
    styles = styles_for(stats["algorithm"])
    width = 0.8 / len(styles)
    chance = stats.groupby("method", sort=False)["mask_fraction"].mean().reindex(methods)
    with print_style():
        figure = Figure(figsize=(PAGE_WIDTH_IN, 2.8), layout="constrained")
        axes = _score_panels(figure)
        positions = np.arange(len(methods))
        for index, (algorithm, style) in enumerate(styles.items()):
            bars = stats[stats["algorithm"] == algorithm].set_index("method").reindex(methods)
            for ax, value in zip(axes, SCORES):
                ax.bar(
                    positions + (index - (len(styles) - 1) / 2) * width,
                    bars[value],
                    width,
                    color=style.colour,
                    hatch=style.mpl_hatch,
                    edgecolor="white" if not style.mpl_hatch else "black",
                    linewidth=0.3,
                    label=label(algorithm),
                )
        for ax in axes:
            ax.hlines(
                chance, positions - 0.45, positions + 0.45, color=REFERENCE, linestyle=":", linewidth=1.2, label=CHANCE
            )
            ax.set_xticks(positions, [tick_text(label(m)).replace("<br>", "\n") for m in methods])
        legend_below(figure)
    return figure
