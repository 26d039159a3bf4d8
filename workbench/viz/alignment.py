"""Gradient-alignment figures: the K×K cosine matrix, per-layer cosines, and alignment statistics over training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.viz.data import mean_over_runs, require_columns, square_matrix
from workbench.viz.style import colours_for


def cosine_heatmap(matrix: Any, names: Sequence[str] | None = None, title: str = "cos(g_i, g_j)") -> go.Figure:
    """Annotated K×K heatmap of pairwise gradient cosines on a fixed [-1, 1] diverging scale.

    ``matrix``: array, tensor or DataFrame (e.g. ``cosine_matrix(domain_gradients(...))``); row 0 is
    drawn at the top, as in the matrix.
    """
    values, names = square_matrix(matrix, names)
    heatmap = go.Heatmap(
        z=values, x=names, y=names, zmin=-1, zmax=1, colorscale="RdBu", texttemplate="%{z:.2f}",
        colorbar=dict(title="cos"), hovertemplate="%{y} · %{x}: %{z:.3f}<extra></extra>",
    )
    figure = go.Figure(heatmap)
    figure.update_layout(title=title, xaxis=dict(side="top"), yaxis=dict(autorange="reversed"))
    figure.update_yaxes(scaleanchor="x")
    return figure



def layerwise_heatmap(frames: Mapping[str, pd.DataFrame], title: str = "cos(g_k, g) per parameter group") -> go.Figure:
    """A heatmap per algorithm of :func:`workbench.analysis.layerwise_cosine` tables (rows: layers, cols: domains)."""
    if not frames:
        raise ValueError("no layer-wise tables given")
    names = list(frames)
    figure = make_subplots(rows=1, cols=len(names), subplot_titles=names, shared_yaxes=True, horizontal_spacing=0.03)
    for column, name in enumerate(names, start=1):
        table = frames[name]
        figure.add_trace(
            go.Heatmap(z=table.to_numpy(), x=[str(c) for c in table.columns], y=[str(i) for i in table.index],
                       zmin=-1, zmax=1, colorscale="RdBu", texttemplate="%{z:.2f}", showscale=column == len(names),
                       colorbar=dict(title="cos"), hovertemplate=name + " · %{y} · %{x}: %{z:.3f}<extra></extra>"),
            row=1, col=column,
        )
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(title=title, height=120 + 28 * max(len(t) for t in frames.values()))
    return figure

def alignment_over_training(
    frame: pd.DataFrame, metrics: Sequence[str] = ("cos_clean_mean", "cos_perturbed_mean"), title: str | None = None
) -> go.Figure:
    """One panel per statistic, one line per algorithm, from :func:`workbench.viz.data.alignment_frame`.

    Several runs (seeds) under one algorithm are averaged per step, with a ±1 std band.
    """
    require_columns(frame, ["algorithm", "step", *metrics], "alignment_over_training")
    colours = colours_for(frame["algorithm"])
    figure = make_subplots(rows=1, cols=len(metrics), subplot_titles=list(metrics), shared_xaxes=True)
    for column, metric in enumerate(metrics, start=1):
        stats = mean_over_runs(frame, ["algorithm", "step"], metric)
        for algorithm, colour in colours.items():
            rows = stats[stats["algorithm"] == algorithm]
            if (rows["n"] > 1).any():
                band = rows.dropna(subset=["std"])
                figure.add_trace(
                    go.Scatter(
                        x=[*band["step"], *band["step"][::-1]],
                        y=[*(band["mean"] + band["std"]), *(band["mean"] - band["std"])[::-1]],
                        fill="toself", fillcolor=colour, opacity=0.2, line=dict(width=0),
                        name=f"{algorithm} ±1 std", legendgroup=algorithm, showlegend=False, hoverinfo="skip",
                    ),
                    row=1, col=column,
                )
            figure.add_trace(
                go.Scatter(
                    x=rows["step"], y=rows["mean"], mode="lines+markers", name=algorithm, legendgroup=algorithm,
                    line=dict(color=colour), showlegend=column == 1,
                ),
                row=1, col=column,
            )
        figure.update_xaxes(title_text="step", row=1, col=column)
    figure.update_layout(title=title or "Gradient alignment over training")
    return figure
