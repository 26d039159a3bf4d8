"""Loss-geometry figures: sharpness against the radius ρ and 1-D / 2-D loss-landscape slices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.viz.data import curves, labelled, mean_over_runs, require_columns, surface
from workbench.viz.labels import label
from workbench.viz.style import legend_outside, paper_layout, styles_for


def sharpness_vs_rho(data: pd.DataFrame | Mapping[str, pd.DataFrame], value: str = "sharpness") -> go.Figure:
    """One panel per domain, one line per algorithm: ``value`` against ρ.

    ``data``: a table with ``algorithm``, ``domain``, ``rho`` and ``value`` columns, or
    ``{algorithm: sharpness_per_domain(...)}``. Repeated (algorithm, domain, ρ) rows (seeds) are averaged.
    """
    frame = labelled(data)
    require_columns(frame, ["algorithm", "domain", "rho", value], "sharpness_vs_rho")
    domains = list(dict.fromkeys(frame["domain"].astype(str)))
    frame = frame.assign(domain=frame["domain"].astype(str))
    stats = mean_over_runs(frame, ["algorithm", "domain", "rho"], value)
    styles = styles_for(frame["algorithm"])
    figure = make_subplots(rows=1, cols=len(domains), subplot_titles=domains, shared_yaxes=True)
    for column, domain in enumerate(domains, start=1):
        for algorithm, style in styles.items():
            rows = stats[(stats["algorithm"] == algorithm) & (stats["domain"] == domain)]
            figure.add_trace(
                go.Scatter(
                    x=rows["rho"],
                    y=rows["mean"],
                    mode="lines+markers",
                    name=label(algorithm),
                    legendgroup=algorithm,
                    line=dict(color=style.colour, dash=style.dash),
                    marker=dict(symbol=style.marker),
                    showlegend=column == 1,
                ),
                row=1,
                col=column,
            )
        figure.update_xaxes(title_text="ρ", row=1, col=column)
    figure.update_yaxes(title_text=label(value), row=1, col=1)
    paper_layout(figure, title=f"{label(value)} against ρ per domain", width=max(600, 260 * len(domains)), height=440)
    return legend_outside(figure)


def landscape_line(data: Any, title: str = "Loss along a direction", xlabel: str = "α") -> go.Figure:
    """1-D loss slices: one line per label (``LossCurve``, ``(coords, loss)`` or a mapping of them)."""
    lines = curves(data)
    styles = styles_for(lines)
    figure = go.Figure()
    for name, (coords, loss) in lines.items():
        figure.add_trace(
            go.Scatter(
                x=coords,
                y=loss,
                mode="lines",
                name=label(name),
                line=dict(color=styles[name].colour, dash=styles[name].dash, width=2.5),
            )
        )
    paper_layout(figure, title=title, xaxis_title=xlabel, yaxis_title="loss", width=700, height=440)
    return legend_outside(figure)


def landscape_contour(data: Any, title: str = "Loss landscape") -> go.Figure:
    """Contour of a 2-D slice (``LossSurface`` or ``(alphas, betas, loss)``); θ itself is marked at (0, 0)."""
    alphas, betas, loss = surface(data)
    figure = go.Figure(
        go.Contour(
            x=betas,
            y=alphas,
            z=loss,
            colorscale="Viridis",
            colorbar=dict(title="loss"),
            contours=dict(showlabels=True),
            name="loss",
        )
    )
    figure.add_trace(
        go.Scatter(x=[0.0], y=[0.0], mode="markers", marker=dict(symbol="x", color="white", size=10), name="θ")
    )
    paper_layout(
        figure, title=title, xaxis_title="β (direction 2)", yaxis_title="α (direction 1)", width=640, height=540
    )
    return legend_outside(figure)


def landscape_surface(data: Any, title: str = "Loss landscape") -> go.Figure:
    """3-D surface of a 2-D slice (``LossSurface`` or ``(alphas, betas, loss)``)."""
    alphas, betas, loss = surface(data)
    figure = go.Figure(go.Surface(x=betas, y=alphas, z=loss, colorscale="Viridis", colorbar=dict(title="loss")))
    paper_layout(
        figure,
        title=title,
        width=760,
        height=640,
        margin=dict(l=10, r=10, b=10, t=60),
        scene=dict(
            xaxis_title="β (direction 2)",
            yaxis_title="α (direction 1)",
            zaxis_title="loss",
            camera=dict(eye=dict(x=1.7, y=1.7, z=1.0)),
            domain=dict(x=[0.0, 0.9]),
        ),
    )
    return figure
