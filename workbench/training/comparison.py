"""Differences to a baseline algorithm, with paired video-bootstrap intervals.

"Is RoGA better than ERM here?" is a question about a difference, and two overlapping intervals
do not answer it: both detectors were scored on the same test videos, so their errors are
correlated and the difference is far less noisy than either value. Each resample therefore draws
the test videos once and scores both algorithms' runs on that draw
(:func:`workbench.metrics.video_bootstrap_statistics`), each side averaged over its seeds; the
percentile interval of the difference says whether it is distinguishable from 0 given which test
videos were drawn. Seed-to-seed variance is not in it (see the results table's ± std).

Besides each evaluation group, the held-out mean (mean over the ``target/*`` groups shown) and the
gap (``source_test`` − held-out mean) are compared on the same draws, one independent draw per group.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from workbench.metrics import LOWER_IS_BETTER, percentile_interval, video_bootstrap_statistics
from workbench.training.cells import NO_INTERVAL, ReportError, RunPredictions, numeric_column
from workbench.training.table_text import escape, outward_interval

HELD_OUT_MEAN, GAP = "held_out_mean", "gap"
PAIRED_BOOTSTRAP = "paired video bootstrap"
NO_PREDICTIONS = "no predictions of the selected step"
DIFFERENCE_COLUMNS: tuple[str, ...] = (
    "selection",
    "backbone",
    "algorithm",
    "variant",
    "baseline",
    "group",
    "metric",
    "difference",
    "ci_low",
    "ci_high",
    "ci_level",
    "ci_method",
    "excludes_zero",
    "n_seeds",
    "n_baseline_seeds",
)


def _values(cell: pd.DataFrame, group: str, metric: str) -> pd.Series:
    """The runs' defined values of ``metric`` on ``group``; a value that is not a number is refused."""
    return numeric_column(cell, f"{group}:{metric}").dropna()


def _baseline_cell(members: pd.DataFrame, baseline: str, where: str) -> pd.DataFrame:
    cell = members[members["algorithm"] == baseline]
    if cell.empty:
        have = sorted(members["algorithm"].unique())
        raise ReportError(f"no runs of the baseline {baseline!r} {where}; algorithms there: {have}")
    variants = sorted(cell["variant"].fillna("").unique())
    if len(variants) > 1:
        raise ReportError(
            f"the baseline {baseline!r} has {len(variants)} config variants {where} ({variants}); "
            "choose one with --tune or by listing only its runs"
        )
    return cell


def _group_statistics(
    base: pd.DataFrame,
    other: pd.DataFrame,
    group: str,
    metric: str,
    n_boot: int,
    seed: int,
    predictions: RunPredictions,
    where: str,
) -> np.ndarray | None:
    """Per resample, (other − baseline) seed-mean metric on ``group``; None without predictions for both."""
    other_rows = other.loc[_values(other, group, metric).index]
    base_rows = base.loc[_values(base, group, metric).index]
    if base_rows.empty or other_rows.empty:
        return None
    samples = [predictions.samples(cell, group, metric) for cell in (base_rows, other_rows)]
    if any(s is None for s in samples):
        return None
    try:
        statistics = video_bootstrap_statistics(samples, metric, n_boot=n_boot, seed=seed)
    except ValueError as exc:
        raise ReportError(f"{where}, {group}: cannot pair the two algorithms' predictions: {exc}") from exc
    return statistics[1] - statistics[0]


def _row(
    keys: dict,
    group: str,
    metric: str,
    difference: float,
    draws: np.ndarray | None,
    ci: float,
    reason: str,
    n_seeds: int,
    n_baseline_seeds: int,
) -> dict:
    low, high = percentile_interval(draws, ci) if draws is not None else (math.nan, math.nan)
    return {
        **keys,
        "group": group,
        "metric": metric,
        "difference": difference,
        "ci_low": low,
        "ci_high": high,
        "ci_level": ci,
        "ci_method": PAIRED_BOOTSTRAP if draws is not None else f"{NO_INTERVAL}: {reason}",
        "excludes_zero": bool(draws is not None and (low > 0 or high < 0)),
        "n_seeds": n_seeds,
        "n_baseline_seeds": n_baseline_seeds,
    }


def baseline_differences(
    runs: pd.DataFrame,
    baseline: str,
    groups: Sequence[str],
    metric: str = "auc",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    predictions: RunPredictions | None = None,
) -> pd.DataFrame:
    """For every other algorithm (and config variant), its difference to ``baseline`` per group, with a paired CI.

    ``runs`` is a :func:`workbench.training.collect.collect` table (one or more selection rules;
    already filtered to the tuned variants where tuning applies). Algorithms are compared within a
    selection rule and backbone. ``difference`` is the algorithm's seed-mean ``metric`` minus the
    baseline's; ``ci_low``/``ci_high`` its paired video-bootstrap interval when every run of both
    has predictions for the group, else NaN with the reason in ``ci_method``; ``excludes_zero``
    marks intervals that exclude 0. Rows for ``held_out_mean`` and ``gap`` follow the groups when
    ``groups`` holds ``source_test`` (gap only) and ``target/*`` groups.
    """
    predictions = predictions if predictions is not None else RunPredictions()
    targets = [g for g in groups if g.startswith("target/")]
    rows = []
    for (selection, backbone), members in runs.groupby(["selection", "backbone"], sort=False):
        where = f"under {selection} selection with backbone {backbone}"
        base = _baseline_cell(members, baseline, where)
        others = members[members["algorithm"] != baseline].assign(variant=lambda m: m["variant"].fillna(""))
        for (algorithm, variant), other in others.groupby(["algorithm", "variant"], sort=False):
            keys = {
                "selection": selection,
                "backbone": backbone,
                "algorithm": algorithm,
                "variant": variant,
                "baseline": baseline,
            }
            differences, draws = {}, {}
            for index, group in enumerate(groups):
                base_values, other_values = _values(base, group, metric), _values(other, group, metric)
                if base_values.empty or other_values.empty:
                    rows.append(
                        _row(
                            keys,
                            group,
                            metric,
                            math.nan,
                            None,
                            ci,
                            "metric undefined",
                            len(other_values),
                            len(base_values),
                        )
                    )
                    continue
                differences[group] = other_values.mean() - base_values.mean()
                draws[group] = _group_statistics(
                    base, other, group, metric, n_boot, seed + index, predictions, f"{algorithm} vs {baseline} {where}"
                )
                rows.append(
                    _row(
                        keys,
                        group,
                        metric,
                        differences[group],
                        draws[group],
                        ci,
                        NO_PREDICTIONS,
                        len(other_values),
                        len(base_values),
                    )
                )
            seeds = (len(other), len(base))
            if targets and all(t in differences for t in targets):
                held_out = float(np.mean([differences[t] for t in targets]))
                held_out_draws = (
                    np.mean([draws[t] for t in targets], axis=0) if all(draws[t] is not None for t in targets) else None
                )
                rows.append(_row(keys, HELD_OUT_MEAN, metric, held_out, held_out_draws, ci, NO_PREDICTIONS, *seeds))
                if "source_test" in differences:
                    gap_draws = (
                        draws["source_test"] - held_out_draws
                        if held_out_draws is not None and draws["source_test"] is not None
                        else None
                    )
                    rows.append(
                        _row(
                            keys,
                            GAP,
                            metric,
                            differences["source_test"] - held_out,
                            gap_draws,
                            ci,
                            NO_PREDICTIONS,
                            *seeds,
                        )
                    )
    return pd.DataFrame(rows, columns=list(DIFFERENCE_COLUMNS))


def format_difference(difference: float, low: float, high: float, excludes_zero: bool) -> str:
    """``"+0.052 [+0.01, +0.10]"``, in bold when the interval excludes 0; ``"n/a"`` without a difference."""
    if math.isnan(difference):
        return "n/a"
    text = f"{difference:+.3f}"
    if not (math.isnan(low) or math.isnan(high)):
        text += f" {outward_interval(low, high, signed=True)}"
    return f"**{text}**" if excludes_zero else text


def differences_markdown(differences: pd.DataFrame) -> str:
    """A markdown table of :func:`baseline_differences` (rows: algorithm, columns: groups) with its notes."""
    if differences.empty:
        raise ReportError("no differences to tabulate: the runs hold no algorithm besides the baseline")
    baseline, metric = differences["baseline"].iloc[0], differences["metric"].iloc[0]
    selections = list(dict.fromkeys(differences["selection"]))
    show_variant = bool(differences["variant"].astype(str).str.len().gt(0).any())
    row_keys = (
        ["algorithm", "backbone"]
        + (["variant"] if show_variant else [])
        + (["selection"] if len(selections) > 1 else [])
    )
    groups = list(dict.fromkeys(differences["group"]))
    header = [*row_keys, *(f"Δ {g}" for g in groups)]
    lines = ["| " + " | ".join(escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    for keys, rows in differences.groupby(row_keys, sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        cells = {
            r.group: format_difference(r.difference, r.ci_low, r.ci_high, r.excludes_zero) for r in rows.itertuples()
        }
        lines.append("| " + " | ".join([*(escape(k) for k in keys), *(cells.get(g, "") for g in groups)]) + " |")
    level = f"{100 * differences['ci_level'].iloc[0]:g}%"
    better = "lower" if metric in LOWER_IS_BETTER else "higher"
    notes = [
        f"Δ: the algorithm's mean {metric} over its seeds minus {baseline}'s ({better} is better, so a "
        f"{'negative' if better == 'lower' else 'positive'} Δ favours the algorithm).",
        f"[low, high]: {level} paired video bootstrap of Δ, rounded outward: each resample draws the test videos "
        "once and scores both algorithms' runs on them; it covers which test videos were drawn, not seed-to-seed "
        "variance. **Bold**: the interval excludes 0.",
    ]
    if {HELD_OUT_MEAN, GAP} & set(groups):
        notes.append(
            f"Δ {HELD_OUT_MEAN}: of the mean over the target groups; Δ {GAP}: of source_test − that mean "
            "(a negative Δ gap is a smaller generalisation gap)."
        )
    missing = sorted(
        {m.removeprefix(f"{NO_INTERVAL}: ") for m in differences["ci_method"] if m.startswith(NO_INTERVAL)}
    )
    if missing:
        notes.append(f"Cells without an interval: {'; '.join(missing)}.")
    return "\n".join([*lines, "", *(f"- {note}" for note in notes)]) + "\n"
