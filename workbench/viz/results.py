"""Results figures: metric bars with confidence intervals and training curves from records."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.viz.data import check_summary, mean_over_runs, split_eval_frame
from workbench.viz.style import colours_for

DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def results_bars(summary: pd.DataFrame, metric: str | None = None, title: str | None = None) -> go.Figure:
    """Grouped bars: x = evaluation group, one bar series per algorithm, error bars = [ci_low, ci_high].

    ``summary`` has columns ``algorithm``, ``group``, ``mean``, ``ci_low``, ``ci_high`` (one row per
    algorithm and group, e.g. from ``workbench.training.report.summarise``); ``metric`` defaults to its
    ``metric`` column (see :func:`~workbench.viz.data.check_summary`). For AUC a dashed line marks
    chance (0.5).
    """
    metric = check_summary(summary, metric)
    groups = list(dict.fromkeys(summary["group"]))
    figure = go.Figure()
    for algorithm, colour in colours_for(summary["algorithm"]).items():
        rows = summary[summary["algorithm"] == algorithm].set_index("group").reindex(groups)
        figure.add_trace(
            go.Bar(
                x=groups, y=rows["mean"], name=algorithm, marker_color=colour,
                error_y=dict(type="data", symmetric=False, array=rows["ci_high"] - rows["mean"],
                             arrayminus=rows["mean"] - rows["ci_low"]),
                customdata=rows[["ci_low", "ci_high"]].to_numpy(),
                hovertemplate="%{x}: %{y:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}]<extra>" + algorithm + "</extra>",
            )
        )
    if metric.lower().endswith("auc"):  # frame or video AUC: chance is 0.5
        figure.add_hline(y=0.5, line_dash="dash", line_color="grey", annotation_text="chance")
    figure.update_layout(barmode="group", title=title or f"{metric} with confidence intervals", yaxis_title=metric)
    return figure


def training_curves(
    frame: pd.DataFrame, metric: str = "auc", groups: Sequence[str] | None = None, loss: str = "loss"
) -> go.Figure:
    """Two panels against step: the training loss, and ``metric`` for every evaluation group.

    ``frame`` is :func:`workbench.viz.data.eval_frame`. Colour = algorithm, dash = evaluation group
    (``groups`` picks them; default all). Several runs per algorithm are averaged per step.
    """
    train, evaluated, groups = split_eval_frame(frame, metric, groups, loss)
    colours = colours_for(frame["algorithm"])
    figure = make_subplots(rows=1, cols=2, subplot_titles=[f"train {loss}", metric])
    train_stats = mean_over_runs(train, ["algorithm", "step"], "value")
    eval_stats = mean_over_runs(evaluated, ["algorithm", "group", "step"], "value")
    for algorithm, colour in colours.items():
        rows = train_stats[train_stats["algorithm"] == algorithm]
        figure.add_trace(
            go.Scatter(x=rows["step"], y=rows["mean"], mode="lines", name=algorithm, legendgroup=algorithm,
                       line=dict(color=colour)),
            row=1, col=1,
        )
        for index, group in enumerate(groups):
            rows = eval_stats[(eval_stats["algorithm"] == algorithm) & (eval_stats["group"] == group)]
            figure.add_trace(
                go.Scatter(x=rows["step"], y=rows["mean"], mode="lines+markers", name=f"{algorithm} · {group}",
                           legendgroup=algorithm, line=dict(color=colour, dash=DASHES[index % len(DASHES)])),
                row=1, col=2,
            )
    figure.update_xaxes(title_text="step")
    figure.update_layout(title="Training curves")
    return figure
