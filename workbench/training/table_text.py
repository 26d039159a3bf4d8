"""Markdown results tables whose notes say what every number is.

A cell reads ``mean ± std [low, high]``: the mean over the cell's seeds, their standard deviation
where there are two or more, and the bootstrap interval rounded outward (never narrower than the
computed one). The notes name the metric and what the selection rule compared, what each interval
resamples (test videos, or seeds) and therefore what it does not cover, and mark cells that rest on
fewer seeds than their row or have no interval beside cells that do. A second table gives each
group's test set (videos and frames per class): the chance level of AP is the fake share, so an AP
is only read with it.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import pandas as pd

from workbench.metrics import LOWER_IS_BETTER
from workbench.training.cells import NO_INTERVAL, SEED_BOOTSTRAP, SIZE_COLUMNS, VIDEO_BOOTSTRAP, ReportError
from workbench.training.selection import RULE_DESCRIPTIONS

NO_INTERVAL_MARK = "‡"  # a cell without an interval in a table where other cells have one
SEED_INTERVAL_MARK = "†"  # a seed-bootstrap interval in a table that also has video-bootstrap ones


def _rounded(value: float, rounding: str, digits: int, signed: bool) -> str:
    text = str(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), rounding=rounding))
    if Decimal(text) == 0:
        text = f"{0:.{digits}f}"
    return f"+{text}" if signed and not text.startswith("-") else text


def outward_interval(low: float, high: float, digits: int = 2, signed: bool = False) -> str:
    """``"[low, high]"`` with the low bound rounded down and the high bound up, so the printed interval
    contains the computed one; ``signed`` writes a plus sign on non-negative bounds (for differences)."""
    return f"[{_rounded(low, ROUND_FLOOR, digits, signed)}, {_rounded(high, ROUND_CEILING, digits, signed)}]"


def format_cell(mean: float, std: float, low: float, high: float) -> str:
    """``"0.912 ± 0.010 [0.89, 0.94]"``; parts that are NaN are left out (``"n/a"`` without a mean)."""
    if math.isnan(mean):
        return "n/a"
    text = f"{mean:.3f}"
    if not math.isnan(std):
        text += f" ± {std:.3f}"
    if not (math.isnan(low) or math.isnan(high)):
        text += f" {outward_interval(low, high)}"
    return text


def escape(value: Any) -> str:
    """Text safe inside a markdown table cell."""
    return str(value).replace("|", "\\|")


def _has_interval(row: Any) -> bool:
    return not (math.isnan(row.ci_low) or math.isnan(row.ci_high))


def _cell_text(row: Any, row_seeds: int, marks: dict[str, bool]) -> str:
    text = format_cell(row.mean, row.std, row.ci_low, row.ci_high)
    if 0 < row.n_seeds < row_seeds:
        text += f" ({row.n_seeds} seed{'s' if row.n_seeds > 1 else ''})"
    if marks["seed"] and row.ci_method == SEED_BOOTSTRAP:
        text += f" {SEED_INTERVAL_MARK}"
    if marks["none"] and not math.isnan(row.mean) and not _has_interval(row):
        text += f" {NO_INTERVAL_MARK}"
    return text


def _interval_notes(summary: pd.DataFrame, level: str, marks: dict[str, bool]) -> list[str]:
    """What the intervals resample, what they leave out, and the cells without one."""
    defined = summary[summary["mean"].notna()]
    methods = defined["ci_method"]
    with_interval = defined[[_has_interval(r) for r in defined.itertuples()]]
    reasons = sorted({m.removeprefix(f"{NO_INTERVAL}: ") for m in methods if m.startswith(NO_INTERVAL)})
    if with_interval.empty:
        return ["No cell has a confidence interval" + (f" ({'; '.join(reasons)})" if reasons else "") + "."]
    notes = [f"[low, high]: {level} percentile bootstrap interval of the cell's mean, rounded outward."]
    if methods.str.startswith(VIDEO_BOOTSTRAP).any():
        notes.append(
            "Video bootstrap: resamples the test videos (real and fake separately, each video with all its "
            "frames) with the selected models fixed, all seeds under the same draws; it says how much the "
            "result depends on which test videos were drawn, not how much it varies between training "
            "seeds (± std shows that, given two or more seeds)."
        )
    if (methods == SEED_BOOTSTRAP).any():
        notes.append(
            ("†: " if marks["seed"] else "") + "seed bootstrap: resamples the seeds' values (no predictions "
            "of the selected step were saved, e.g. for oracle-selected steps); it covers seed-to-seed "
            "variance only, with the test set fixed, so its width is not comparable with a video "
            "bootstrap's."
        )
    if marks["none"]:
        notes.append(f"{NO_INTERVAL_MARK}: no interval ({'; '.join(reasons)}).")
    return notes


def _seed_notes(summary: pd.DataFrame, partial: bool) -> list[str]:
    most = int(summary["n_seeds"].max())
    if most < 2:
        notes = [
            "Cells: one seed each, so no ± std, and no interval covers seed-to-seed variance (that needs "
            "two or more seeds)."
        ]
    else:
        notes = ["Cells: mean over seeds ± std over seeds (ddof=1, where a cell has two or more)."]
    notes.append(
        "seeds: the seeds behind the row's cells"
        + (
            "; a cell followed by (k seeds) rests on fewer, because the metric is undefined or missing in the row's "
            "other runs"
            if partial
            else ""
        )
        + "."
    )
    return notes


def _count(values: pd.Series) -> str:
    known = values.dropna()
    if known.empty:
        return "not saved"
    low, high = int(known.min()), int(known.max())
    return f"{low}" if low == high else f"{low}–{high}"


def sizes_markdown(summary: pd.DataFrame) -> str:
    """Per evaluation group, the test set behind the table: videos and frames per class and the fake share."""
    lines = [
        "| group | real videos | fake videos | real frames | fake frames | fake share (AP of a random score) |",
        "|---|---|---|---|---|---|",
    ]
    for group, rows in summary.groupby("group", sort=False):
        counts = [_count(rows[column]) for column in ("real_videos", "fake_videos", "real_frames", "fake_frames")]
        real, fake = rows["real_frames"].max(), rows["fake_frames"].max()
        share = f"{fake / (real + fake):.2f}" if real + fake > 0 else "n/a"
        lines.append(f"| {escape(group)} | " + " | ".join([*counts, share]) + " |")
    return "\n".join(lines) + "\n"


def to_markdown(summary: pd.DataFrame) -> str:
    """A markdown results table (one row per algorithm/backbone(/variant), one column per group and rule),
    its notes, and the test-set sizes of :func:`sizes_markdown` when the summary has them."""
    if summary.empty:
        raise ReportError("empty summary: nothing to tabulate")
    selections = list(dict.fromkeys(summary["selection"]))
    oracle_of = dict(zip(summary["selection"], summary["oracle"]))
    primary = next((s for s in selections if not oracle_of[s]), selections[0])
    labels = {
        (s, g): g if s == primary else f"{g} [{s}]"
        for s, g in dict.fromkeys(zip(summary["selection"], summary["group"]))
    }
    summary = summary.assign(variant=summary["variant"].fillna(""))
    show_variant = bool(summary["variant"].astype(str).str.len().gt(0).any())
    row_keys = ["algorithm", "backbone"] + (["variant"] if show_variant else [])
    defined = summary[summary["mean"].notna()]
    has_interval = [_has_interval(r) for r in defined.itertuples()]
    marks = {
        # seed-bootstrap cells are marked where other intervals are over test videos
        "seed": bool(
            summary["ci_method"].str.startswith(VIDEO_BOOTSTRAP).any()
            and (summary["ci_method"] == SEED_BOOTSTRAP).any()
        ),
        # cells without an interval are marked where other cells have one
        "none": any(has_interval) and not all(has_interval),
    }
    header = [*row_keys, "seeds", *labels.values()]
    lines = ["| " + " | ".join(escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    partial = False
    for keys, rows in summary.groupby(row_keys, sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        row_seeds = int(rows["n_seeds"].max())
        n_runs, n_incomplete = int(rows["n_runs"].max()), int(rows["n_incomplete"].max())
        partial |= bool(rows["n_seeds"].between(1, row_seeds - 1).any())
        seeds = f"{row_seeds}" + (f" of {n_runs} runs" if n_runs != row_seeds else "")
        seeds += f" ({n_incomplete} incomplete)" if n_incomplete else ""
        cells = {labels[(r.selection, r.group)]: _cell_text(r, row_seeds, marks) for r in rows.itertuples()}
        values = [*(escape(k) for k in keys), seeds, *(cells.get(label, "") for label in labels.values())]
        lines.append("| " + " | ".join(values) + " |")

    metric = summary["metric"].iloc[0]
    selection_metric = summary["selection_metric"].iloc[0]
    direction = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
    level = f"{100 * summary['ci_level'].iloc[0]:g}%"
    notes = [
        f"Metric: {metric} ({direction}). Model selection: {RULE_DESCRIPTIONS.get(primary, primary)}, "
        f"comparing records by {selection_metric}"
        + (f", not by the reported {metric}." if selection_metric != metric else "."),
        *_seed_notes(defined if len(defined) else summary, partial),
        *_interval_notes(summary, level, marks),
    ]
    for selection in selections:
        if selection != primary:
            notes.append(f"[{selection}]: {RULE_DESCRIPTIONS.get(selection, selection)}.")
    if "tuning" in summary.columns:
        tuned = summary.drop_duplicates(["selection", "algorithm", "backbone"])
        notes += [
            f"Hyper-parameters of {r.algorithm}/{r.backbone} [{r.selection}], chosen among {r.tuning}."
            for r in tuned.itertuples()
        ]
    if summary["n_incomplete"].gt(0).any():
        notes.append("Incomplete: runs without a 'done' marker (training did not finish) are included.")
    text = "\n".join([*lines, "", *(f"- {note}" for note in notes)]) + "\n"
    if set(SIZE_COLUMNS) <= set(summary.columns):
        text += "\nTest sets behind the cells (per group; a range where runs differ):\n\n" + sizes_markdown(summary)
    return text
