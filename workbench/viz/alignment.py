"""Gradient-alignment figures: the K×K cosine matrix, per-layer cosines, and alignment statistics over training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.viz.data import mean_over_runs, require_columns, square_matrix
from workbench.viz.labels import label
from workbench.viz.style import legend_outside, paper_layout, styles_for


def cosine_heatmap(
    matrix: Any, names: Sequence[str] | None = None, title: str = "Cosine between domain gradients"
) -> go.Figure:
    """Annotated K×K heatmap of pairwise gradient cosines on a fixed [-1, 1] diverging scale.

    ``matrix``: array, tensor or DataFrame (e.g. ``cosine_matrix(domain_gradients(...))``); row 0 is
    drawn at the top, as in the matrix.
    """
    values, names = square_matrix(matrix, names)
    heatmap = go.Heatmap(
        z=values,
        x=names,
        y=names,
        zmin=-1,
        zmax=1,
        colorscale="RdBu",
        texttemplate="%{z:.2f}",
        colorbar=dict(title="cos(g_i, g_j)"),
        hovertemplate="%{y} · %{x}: %{z:.3f}<extra></extra>",
    )
    figure = paper_layout(
        go.Figure(heatmap),
        title=title,
        xaxis=dict(showgrid=False, tickangle=-30),
        yaxis=dict(autorange="reversed", showgrid=False),
        width=220 + 90 * len(names),
        height=240 + 80 * len(names),
    )
    figure.update_yaxes(scaleanchor="x")
    return figure


def layerwise_heatmap(
    frames: Mapping[str, pd.DataFrame], title: str = "Cosine of each domain's gradient with the mean, per layer"
) -> go.Figure:
    """A heatmap per algorithm of :func:`workbench.analysis.layerwise_cosine` tables (rows: layers, cols: domains)."""
    if not frames:
        raise ValueError("no layer-wise tables given")
    names = list(frames)
    figure = make_subplots(
        rows=1, cols=len(names), subplot_titles=[label(n) for n in names], shared_yaxes=True, horizontal_spacing=0.03
    )
    for column, name in enumerate(names, start=1):
        table = frames[name]
        figure.add_trace(
            go.Heatmap(
                z=table.to_numpy(),
                x=[str(c) for c in table.columns],
                y=[str(i) for i in table.index],
                zmin=-1,
                zmax=1,
                colorscale="RdBu",
                texttemplate="%{z:.2f}",
                showscale=column == len(names),
                colorbar=dict(title="cos(g_k, g)"),
                hovertemplate=label(name) + " · %{y} · %{x}: %{z:.3f}<extra></extra>",
            ),
            row=1,
            col=column,
        )
    paper_layout(
        figure,
        title=title,
        height=max(360, 200 + 28 * max(len(t) for t in frames.values())),
        width=max(700, 260 * len(names) + 200),
    )
    figure.update_xaxes(showgrid=False, tickangle=30)
    figure.update_yaxes(showgrid=False, autorange="reversed")
    return figure


def alignment_over_training(
    frame: pd.DataFrame, metrics: Sequence[str] = ("cos_clean_mean", "cos_perturbed_mean"), title: str | None = None
) -> go.Figure:
    """One panel per statistic, one line per algorithm, from :func:`workbench.viz.data.alignment_frame`.

    Several runs (seeds) under one algorithm are averaged per step, with a ±1 std band.
    """
    require_columns(frame, ["algorithm", "step", *metrics], "alignment_over_training")
    styles = styles_for(frame["algorithm"])
    figure = make_subplots(rows=1, cols=len(metrics), subplot_titles=[label(m) for m in metrics], shared_xaxes=True)
    for column, metric in enumerate(metrics, start=1):
        stats = mean_over_runs(frame, ["algorithm", "step"], metric)
        for algorithm, style in styles.items():
            colour, name = style.colour, label(algorithm)
            rows = stats[stats["algorithm"] == algorithm]
            if (rows["n"] > 1).any():
                band = rows.dropna(subset=["std"])
                figure.add_trace(
                    go.Scatter(
                        x=[*band["step"], *band["step"][::-1]],
                        y=[*(band["mean"] + band["std"]), *(band["mean"] - band["std"])[::-1]],
                        mode="lines",
                        fill="toself",
                        fillcolor=colour,
                        opacity=0.2,
                        line=dict(width=0),
                        name=f"{name} ±1 std",
                        legendgroup=algorithm,
                        showlegend=False,
                        hoverinfo="skip",
                    ),
                    row=1,
                    col=column,
                )
            figure.add_trace(
                go.Scatter(
                    x=rows["step"],
                    y=rows["mean"],
                    mode="lines+markers",
                    name=name,
                    legendgroup=algorithm,
                    line=dict(color=colour, dash=style.dash),
                    marker=dict(symbol=style.marker),
                    showlegend=column == 1,
                ),
                row=1,
                col=column,
            )
        figure.update_xaxes(title_text="training step", row=1, col=column)
    paper_layout(
        figure, title=title or "Gradient alignment over training", width=max(600, 380 * len(metrics)), height=440
    )
    return legend_outside(figure)
