"""Results tables across runs: select a record per run, then summarise over seeds with intervals.

Runs are read by :func:`workbench.training.collect.collect`; ``summarise`` gives, per (algorithm,
backbone, config variant) and evaluation group, the mean and std over seeds, a bootstrap confidence
interval and the test set's size; ``write_report`` renders it with
:func:`workbench.training.table_text.to_markdown`. ``figure_summary`` picks one selection rule's rows
with one label per algorithm/variant/backbone (what the results figures take), and ``held_out_table``
arranges them as source / held-out manipulation / cross-dataset columns; ``report_tables`` chains
collection, tuning (:mod:`workbench.training.tuning`) and summaries.

Confidence intervals. When every run of a cell has ``predictions.csv`` rows for the group at the
selected step (and they give the recorded metric: :class:`workbench.training.cells.RunPredictions`
refuses otherwise), the interval is a stratified video-level (cluster) bootstrap of the seed-mean
metric over those predictions pooled across seeds (see ``workbench.metrics.bootstrap``): it
measures how much the result depends on which test videos were drawn. Otherwise it is a bootstrap
over the seed-level values (resample seeds with replacement, take the mean), which needs two or
more seeds. ``ci_method`` says which one each cell used.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.metrics import SCORE_METRICS, video_bootstrap_ci
from workbench.training.cells import (
    NO_INTERVAL,
    SEED_BOOTSTRAP,
    VIDEO_BOOTSTRAP,
    ReportError,
    RunPredictions,
    numeric_column,
)
from workbench.training.collect import CELL_KEYS, collect, default_groups, expand_sweeps, groups_in
from workbench.training.comparison import differences_markdown
from workbench.training.table_text import format_cell, to_markdown
from workbench.training.tuning import tune_variants, tuning_notes


def _undefined(cell: pd.DataFrame, group: str, metric: str) -> str:
    reasons = cell.get(f"{group}:{metric}_reason", pd.Series(dtype=object)).dropna()
    return f"{NO_INTERVAL}: metric undefined" + (f" ({reasons.iloc[0]})" if len(reasons) else "")


def _interval(
    runs: pd.DataFrame,
    group: str,
    metric: str,
    values: np.ndarray,
    n_boot: int,
    ci: float,
    seed: int,
    predictions: RunPredictions,
) -> tuple[float, float, str]:
    """CI of the seed mean: video bootstrap when every run has predictions for the group, else seed bootstrap."""
    if metric in SCORE_METRICS:
        samples = predictions.samples(runs, group, metric)
        if samples is not None:
            low, high = video_bootstrap_ci(samples, metric, n_boot=n_boot, ci=ci, seed=seed)
            return low, high, f"{VIDEO_BOOTSTRAP} ({len(samples)} seed(s) pooled)"
    if len(values) < 2:
        return math.nan, math.nan, f"{NO_INTERVAL}: 1 seed and no predictions"
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(n_boot, len(values)), replace=True).mean(axis=1)
    tail = 100.0 * (1.0 - ci) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high), SEED_BOOTSTRAP


def summarise(
    df: pd.DataFrame,
    groups: Sequence[str] | None = None,
    metric: str = "auc",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    predictions: RunPredictions | None = None,
) -> pd.DataFrame:
    """Per (selection, algorithm, backbone, variant) and group: mean, std (ddof=1), seeds, a bootstrap CI
    and the test set's size.

    ``n_seeds`` counts runs with a non-null value (the mean and std use those); ``n_runs`` counts
    all runs of the cell and ``n_incomplete`` those without a ``done`` marker. ``real_frames``,
    ``fake_frames``, ``real_videos`` and ``fake_videos`` size the group's test set
    (:meth:`RunPredictions.sizes`). ``predictions`` reuses already-read ``predictions.csv`` files.
    Raises :class:`ReportError` when a run's predictions and records disagree on the metric.
    """
    if n_boot < 1 or not 0.0 < ci < 1.0:
        raise ReportError(f"need n_boot >= 1 and 0 < ci < 1, got n_boot={n_boot}, ci={ci}")
    groups = list(groups) if groups is not None else default_groups(df)
    available = groups_in(df)
    unknown = [g for g in groups if f"{g}:{metric}" not in df.columns]
    if unknown:
        raise ReportError(f"no {metric!r} values for group(s) {unknown}; groups in these runs: {available}")
    predictions = predictions if predictions is not None else RunPredictions()
    rows = []
    for keys, cell in df.groupby(list(CELL_KEYS), sort=False, dropna=False):
        for group in groups:
            column = numeric_column(cell, f"{group}:{metric}")
            present = cell[column.notna()]
            values = column.dropna().to_numpy(dtype=float)
            if len(values):
                low, high, method = _interval(present, group, metric, values, n_boot, ci, seed, predictions)
            else:
                low, high, method = math.nan, math.nan, _undefined(cell, group, metric)
            rows.append(
                {
                    **dict(zip(CELL_KEYS, keys)),
                    "oracle": bool(cell["oracle"].iloc[0]),
                    "group": group,
                    "metric": metric,
                    "selection_metric": cell["selection_metric"].iloc[0],
                    "mean": float(values.mean()) if len(values) else math.nan,
                    "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                    "n_seeds": len(values),
                    "n_runs": len(cell),
                    "n_incomplete": int((~cell["complete"].astype(bool)).sum()),
                    "ci_low": low,
                    "ci_high": high,
                    "ci_level": ci,
                    "ci_method": method,
                    **predictions.sizes(cell, group),
                }
            )
    return pd.DataFrame(rows)


def figure_summary(summary: pd.DataFrame, rule: str = "source_val") -> pd.DataFrame:
    """A summary's rows selected by ``rule``, one per (label, group), for :func:`workbench.viz.results_bars`.

    Config variants get their own label (``"roga (algorithm.hparams.rho=0.1)"``) so they are never
    pooled; the backbone is added to the label when the rows have more than one.
    """
    rows = summary[summary["selection"] == rule]
    if rows.empty:
        have = sorted(summary["selection"].unique())
        raise ValueError(f"the summary has no rows selected by {rule!r}; it has {have}")
    variants = rows["variant"].fillna("").astype(str)
    labels = [a if not v else f"{a} ({v})" for a, v in zip(rows["algorithm"], variants)]
    if rows["backbone"].nunique() > 1:
        labels = [f"{label} · {b}" for label, b in zip(labels, rows["backbone"])]
    return rows.assign(algorithm=labels)


def held_out_table(summary: pd.DataFrame, kinds: Mapping[str, str], rule: str = "source_val") -> pd.DataFrame:
    """Mean ± std [CI] per algorithm (rows) and group (columns), grouped as source / held-out / cross-dataset.

    ``kinds`` maps target groups to their kind (:func:`workbench.training.runs.target_kinds`);
    ``source_*`` groups are "source", unmapped groups "target".
    """
    rows = figure_summary(summary, rule)
    kind_of = {group: "source" if group.startswith("source") else kinds.get(group, "target") for group in rows["group"]}
    cells = rows.assign(
        kind=rows["group"].map(kind_of),
        cell=[format_cell(r.mean, r.std, r.ci_low, r.ci_high) for r in rows.itertuples()],
    )
    table = cells.pivot(index="algorithm", columns=["kind", "group"], values="cell")
    kinds_in_order = ("source", "held-out manipulation", "cross-dataset", "target")
    order = [column for kind in kinds_in_order for column in table.columns if column[0] == kind]
    return table[order].reindex(list(dict.fromkeys(rows["algorithm"])))


def report_tables(
    run_dirs: Iterable[str | Path],
    rule: str = "source_val",
    metric: str = "auc",
    groups: Sequence[str] | None = None,
    with_oracle: bool = False,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    tune: bool = False,
    selection_metric: str | None = None,
    predictions: RunPredictions | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-run table and summary for ``rule``, plus the oracle-selected columns when ``with_oracle``.

    ``run_dirs`` may name sweep folders, which stand for their finished runs (:func:`expand_sweeps`).
    Records are selected by ``selection_metric`` (default: ``metric``, the one reported); the
    table's notes say which. ``predictions`` shares read ``predictions.csv`` files with later
    comparisons (:func:`workbench.training.comparison.baseline_differences`).

    With ``tune``, config variants (e.g. a ρ grid) are not listed side by side: per algorithm and
    backbone the variant :func:`tune_variants` chooses by the rule's validation score is summarised,
    the per-run table marks it (``chosen``) and the summary's ``tuning`` column lists the candidates.
    """
    run_dirs = expand_sweeps(run_dirs)
    rules = [rule] + (["oracle"] if with_oracle and rule != "oracle" else [])
    with warnings.catch_warnings():
        if tune:  # variants are tuned over, not summarised side by side
            warnings.filterwarnings("ignore", message=".*summarised as separate variants")
        runs = [collect(run_dirs, rule=r, metric=selection_metric or metric) for r in rules]
    groups = list(groups) if groups is not None else default_groups(runs[0])
    if tune:
        runs = [tune_variants(table) for table in runs]
    predictions = predictions if predictions is not None else RunPredictions()
    summaries = [
        summarise(
            table[table["chosen"]] if tune else table,
            groups,
            metric,
            n_boot=n_boot,
            ci=ci,
            seed=seed,
            predictions=predictions,
        )
        for table in runs
    ]
    if tune:
        notes = pd.concat([tuning_notes(table) for table in runs], ignore_index=True)
        summaries = [
            summary.merge(notes, on=["selection", "algorithm", "backbone"], how="left") for summary in summaries
        ]
    return pd.concat(runs, ignore_index=True), pd.concat(summaries, ignore_index=True)


def write_report(
    summary: pd.DataFrame,
    out_dir: str | Path,
    runs: pd.DataFrame | None = None,
    differences: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write ``report.md`` and ``report.csv`` (the summary), ``runs.csv`` when given the per-run table, and
    ``differences.csv`` (and its table in ``report.md``) when given
    :func:`~workbench.training.comparison.baseline_differences`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "report.md", "csv": out / "report.csv"}
    paths["markdown"].write_text(report_markdown(summary, differences), encoding="utf-8")
    summary.to_csv(paths["csv"], index=False)
    if runs is not None:
        paths["runs"] = out / "runs.csv"
        runs.to_csv(paths["runs"], index=False)
    if differences is not None:
        paths["differences"] = out / "differences.csv"
        differences.to_csv(paths["differences"], index=False)
    return paths


def report_markdown(summary: pd.DataFrame, differences: pd.DataFrame | None = None) -> str:
    """The results table and, when given, the differences to the baseline below it."""
    text = to_markdown(summary)
    if differences is not None:
        baseline = differences["baseline"].iloc[0] if len(differences) else "the baseline"
        text += f"\nDifferences to {baseline}:\n\n" + differences_markdown(differences)
    return text
