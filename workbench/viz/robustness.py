"""AUC against perturbation severity, one panel per DeeperForensics-1.0 perturbation, one line per algorithm."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.data.perturbations import CLEAN, PERTURBATIONS
from workbench.viz.labels import label
from workbench.viz.style import REFERENCE, legend_outside, paper_layout, styles_for

PANELS_PER_ROW = 4
DODGE = 0.08  # severity units between neighbouring algorithms' points, so that their error bars stay apart


def check_robustness_table(table: pd.DataFrame, group: str | None) -> tuple[pd.DataFrame, str]:
    """The rows of one evaluation group (``group``, or the table's only one) and its name.

    Raises naming what is missing: a column, the group, clean rows, or one (algorithm, perturbation,
    level) given twice (e.g. two seeds of one algorithm, which this figure does not average).
    """
    needed = {"algorithm", "group", "perturbation", "level", "auc", "auc_low", "auc_high", "ci_level", "n_boot"}
    missing = sorted(needed - set(table.columns))
    if missing:
        raise ValueError(f"robustness table lacks columns {missing} (expected workbench.training.robustness.COLUMNS)")
    groups = list(dict.fromkeys(table["group"]))
    if group is None and len(groups) != 1:
        raise ValueError(f"the table has groups {groups}; choose one with group=")
    group = groups[0] if group is None else group
    rows = table[table["group"] == group]
    if rows.empty:
        raise ValueError(f"no rows for group {group!r}; the table has {groups}")
    repeated = rows[rows.duplicated(["algorithm", "perturbation", "level"], keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        raise ValueError(
            f"{first['algorithm']} has several rows for {first['perturbation']} level {first['level']} "
            f"in group {group!r}; pass one run per algorithm"
        )
    without_clean = sorted(set(rows["algorithm"]) - set(rows.loc[rows["perturbation"] == CLEAN, "algorithm"]))
    if without_clean:
        raise ValueError(f"no clean (level 0) rows for {without_clean} in group {group!r}")
    return rows, group


def error_bar_text(rows: pd.DataFrame) -> str:
    """What the error bars are, from the rows' ``ci_level`` and ``n_boot``."""
    levels = "/".join(sorted({f"{100 * float(v):g}%" for v in rows["ci_level"]}))
    resamples = "/".join(str(int(v)) for v in sorted(set(rows["n_boot"])))
    return f"error bars: {levels} CI, video bootstrap ({resamples} resamples)"


def robustness_figure(table: pd.DataFrame, group: str | None = None, title: str | None = None) -> go.Figure:
    """AUC against severity level (0 = clean) per perturbation panel; colour = algorithm, its points shifted
    slightly sideways; error bars = the table's video-bootstrap intervals (named under the panels); a
    dotted line at chance (0.5).

    ``table`` holds rows of :func:`workbench.training.robustness.robustness_table` for one run per
    algorithm (concatenated); ``group`` picks the evaluation group when it has several.
    """
    rows, group = check_robustness_table(table, group)
    names = [name for name in PERTURBATIONS if name in set(rows["perturbation"])]
    if not names:
        raise ValueError(f"the table has no perturbed rows for group {group!r}")
    columns = min(PANELS_PER_ROW, len(names))
    grid_rows = -(-len(names) // columns)
    figure = make_subplots(
        rows=grid_rows,
        cols=columns,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        vertical_spacing=0.18,
        subplot_titles=[PERTURBATIONS[n].title for n in names],
    )
    styles = styles_for(rows["algorithm"])
    for index, name in enumerate(names):
        position = dict(row=index // columns + 1, col=index % columns + 1)
        for rank, (algorithm, style) in enumerate(styles.items()):
            mine = rows[rows["algorithm"] == algorithm]
            line = pd.concat([mine[mine["perturbation"] == CLEAN], mine[mine["perturbation"] == name]])
            line = line.sort_values("level")
            shift = (rank - (len(styles) - 1) / 2) * DODGE
            figure.add_trace(
                go.Scatter(
                    x=line["level"] + shift,
                    y=line["auc"],
                    customdata=line["level"],
                    mode="lines+markers",
                    name=label(algorithm),
                    legendgroup=algorithm,
                    showlegend=index == 0,
                    line=dict(color=style.colour, dash=style.dash),
                    error_y=dict(
                        type="data",
                        symmetric=False,
                        array=line["auc_high"] - line["auc"],
                        arrayminus=line["auc"] - line["auc_low"],
                    ),
                    hovertemplate="level %{customdata}: AUC %{y:.3f}<extra>" + label(algorithm) + "</extra>",
                ),
                **position,
            )
        figure.add_hline(y=0.5, line_dash="dot", line_color=REFERENCE, line_width=1.5, **position)
    figure.add_trace(
        go.Scatter(x=[None], y=[None], mode="lines", name="chance", line=dict(color=REFERENCE, dash="dot", width=1.5))
    )
    figure.update_xaxes(tickvals=[0, 1, 2, 3, 4, 5], range=[-0.3, 5.3])
    for column in range(1, columns + 1):
        figure.update_xaxes(title_text="severity (0 = clean)", row=grid_rows, col=column)
    figure.update_yaxes(title_text="AUC", col=1)
    paper_layout(
        figure,
        title=title or f"AUC under perturbations: {label(group)}",
        width=max(640, 260 * columns + 120),
        height=300 * grid_rows + 220,
    )
    figure.add_annotation(
        text=error_bar_text(rows),
        xref="paper",
        yref="paper",
        x=0,
        y=0,
        yshift=-70,
        showarrow=False,
        xanchor="left",
        yanchor="top",
    )
    figure.update_layout(margin=dict(b=120))
    return legend_outside(figure)
