"""Results figures: metric bars with confidence intervals and training curves from records."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.viz.data import check_summary, error_bar_caption, mean_over_runs, split_eval_frame
from workbench.viz.labels import label
from workbench.viz.style import REFERENCE, legend_outside, paper_layout, styles_for, tick_text

DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def results_bars(summary: pd.DataFrame, metric: str | None = None, title: str | None = None) -> go.Figure:
    """Grouped bars: x = evaluation group, one bar series per algorithm, error bars = [ci_low, ci_high].

    ``summary`` has columns ``algorithm``, ``group``, ``mean``, ``ci_low``, ``ci_high`` (one row per
    algorithm and group, e.g. from ``workbench.training.report.summarise``); ``metric`` defaults to its
    ``metric`` column (see :func:`~workbench.viz.data.check_summary`). For AUC a dashed line marks
    chance (0.5). The x-axis title says what the error bars are (:func:`~workbench.viz.data.error_bar_caption`).
    """
    metric = check_summary(summary, metric)
    groups = list(dict.fromkeys(summary["group"]))
    figure = go.Figure()
    for algorithm, style in styles_for(summary["algorithm"]).items():
        rows = summary[summary["algorithm"] == algorithm].set_index("group").reindex(groups)
        name = label(algorithm)
        figure.add_trace(
            go.Bar(
                x=[tick_text(label(g)) for g in groups],
                y=rows["mean"],
                name=name,
                marker_color=style.colour,
                marker_pattern_shape=style.hatch,
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=rows["ci_high"] - rows["mean"],
                    arrayminus=rows["mean"] - rows["ci_low"],
                ),
                customdata=rows[["ci_low", "ci_high"]].to_numpy(),
                hovertemplate="%{x}: %{y:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}]<extra>" + name + "</extra>",
            )
        )
    if metric.lower().endswith("auc"):  # frame or video AUC: chance is 0.5
        figure.add_hline(y=0.5, line_dash="dot", line_color=REFERENCE, line_width=2, layer="above")
        figure.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name="chance",  # its legend entry
                line=dict(color=REFERENCE, dash="dot", width=2),
            )
        )
    paper_layout(
        figure,
        barmode="group",
        title=title or f"{metric} with confidence intervals",
        yaxis_title=metric,
        xaxis_title=error_bar_caption(summary),
        width=max(600, 130 * len(groups) + 200),
        height=480,
    )
    return legend_outside(figure)


def training_curves(
    frame: pd.DataFrame, metric: str = "auc", groups: Sequence[str] | None = None, loss: str = "loss"
) -> go.Figure:
    """Two panels against step: the training loss, and ``metric`` for every evaluation group.

    ``frame`` is :func:`workbench.viz.data.eval_frame`. Colour = algorithm, dash = evaluation group
    (``groups`` picks them; default all); the legend lists the algorithms, then the groups' dashes.
    Several runs per algorithm are averaged per step.
    """
    train, evaluated, groups = split_eval_frame(frame, metric, groups, loss)
    styles = styles_for(frame["algorithm"])
    figure = make_subplots(rows=1, cols=2, subplot_titles=[f"training {label(loss)}", label(metric)])
    train_stats = mean_over_runs(train, ["algorithm", "step"], "value")
    eval_stats = mean_over_runs(evaluated, ["algorithm", "group", "step"], "value")
    for algorithm, style in styles.items():
        name = label(algorithm)
        rows = train_stats[train_stats["algorithm"] == algorithm]
        figure.add_trace(  # the legend: colour = algorithm (one entry each), dash = group (entries below)
            go.Scatter(
                x=rows["step"],
                y=rows["mean"],
                mode="lines",
                name=name,
                legendgroup=algorithm,
                line=dict(color=style.colour),
            ),
            row=1,
            col=1,
        )
        for index, group in enumerate(groups):
            rows = eval_stats[(eval_stats["algorithm"] == algorithm) & (eval_stats["group"] == group)]
            figure.add_trace(
                go.Scatter(
                    x=rows["step"],
                    y=rows["mean"],
                    mode="lines+markers",
                    name=f"{name} · {label(group)}",
                    legendgroup=algorithm,
                    showlegend=False,
                    line=dict(color=style.colour, dash=DASHES[index % len(DASHES)]),
                    marker=dict(symbol=style.marker),
                ),
                row=1,
                col=2,
            )
    for index, group in enumerate(groups):
        figure.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name=label(group),
                legendgroup=f"group {index}",
                line=dict(color="#555555", dash=DASHES[index % len(DASHES)]),
            ),
            row=1,
            col=2,
        )
    figure.update_xaxes(title_text="training step")
    paper_layout(figure, title="Training curves", width=1000, height=460)
    return legend_outside(figure)
