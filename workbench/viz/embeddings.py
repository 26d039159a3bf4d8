"""Embedding scatter: 2-D projections of penultimate features, coloured by domain, shaped by label."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from workbench.viz.data import label_names, require_columns
from workbench.viz.style import CATEGORY_PALETTE, legend_outside, paper_layout


def embedding_scatter(
    frame: pd.DataFrame,
    x: str = "x",
    y: str = "y",
    color: str = "domain",
    symbol: str = "label",
    title: str = "Penultimate-layer embeddings",
) -> go.Figure:
    """Scatter of ``frame`` (e.g. ``workbench.analysis.embeddings.tsne_2d``): colour = domain, symbol = real/fake.

    One trace per (colour, symbol) pair; 0/1 labels are shown as ``real``/``fake``.
    """
    require_columns(frame, [x, y, color, symbol], "embedding_scatter")
    shown = frame.assign(**{symbol: label_names(frame[symbol]), color: frame[color].astype(str)})
    hover = [c for c in ("path", "video") if c in shown.columns]
    figure = px.scatter(
        shown,
        x=x,
        y=y,
        color=color,
        symbol=symbol,
        hover_data=hover or None,
        title=title,
        color_discrete_sequence=list(CATEGORY_PALETTE),
        labels={x: "embedding dimension 1", y: "embedding dimension 2"},
    )
    figure.update_traces(marker=dict(size=6, opacity=0.8))
    paper_layout(figure, width=700, height=560)
    return legend_outside(figure)
