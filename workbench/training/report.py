"""Results tables across runs: select a record per run, then summarise over seeds with intervals.

``collect`` reads run directories (docs/records.md) into one row per run; ``summarise`` gives, per
(algorithm, backbone, config variant) and evaluation group, the mean and std over seeds, a
bootstrap confidence interval and the test set's size; ``write_report`` renders it with
:func:`workbench.training.table_text.to_markdown`. ``figure_summary``
picks one selection rule's rows with one label per algorithm/variant/backbone (what the results
figures take), and ``held_out_table`` arranges them as source / held-out manipulation / cross-dataset
columns.

Confidence intervals. When every run of a cell has ``predictions.csv`` rows for the group at the
selected step (and they give the recorded metric: :class:`workbench.training.cells.RunPredictions`
refuses otherwise), the interval is a stratified video-level (cluster) bootstrap of the seed-mean
metric over those predictions pooled across seeds (see ``workbench.metrics.bootstrap``): it
measures how much the result depends on which test videos were drawn. Otherwise it is a bootstrap
over the seed-level values (resample seeds with replacement, take the mean), which needs two or
more seeds. ``ci_method`` says which one each cell used.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.config import RUN_SPECIFIC_KEYS
from workbench.metrics import LOWER_IS_BETTER, SCORE_METRICS, video_bootstrap_ci
from workbench.training.comparison import differences_markdown
from workbench.training.cells import NO_INTERVAL, SEED_BOOTSTRAP, VIDEO_BOOTSTRAP, ReportError, RunPredictions
from workbench.training.run_dir import CONFIG_FILE, DONE_MARKER, RunDir
from workbench.training.selection import load_records, select
from workbench.training.table_text import format_cell, to_markdown

SWEEP_FILE = "sweep.csv"  # a sweep folder's status table (workbench.training.sweep)
# a sweep run's status in sweep.csv when it finished (trained now, or earlier with the same config)
SWEEP_TRAINED, SWEEP_ALREADY_DONE = "trained", "already done"
SWEEP_RUN_STATUSES: tuple[str, ...] = (SWEEP_TRAINED, SWEEP_ALREADY_DONE)
IDENTITY_KEYS: dict[str, str] = {"algorithm": "algorithm.name", "backbone": "model.name", "seed": "train.seed"}
RECORD_FALLBACKS: dict[str, tuple[str, ...]] = {
    "algorithm": ("algorithm",),
    "backbone": ("backbone", "model"),
    "seed": ("seed",),
}
CELL_KEYS: tuple[str, ...] = ("selection", "algorithm", "backbone", "variant")
GROUP_ORDER: tuple[str, ...] = ("source_val", "source_val/", "source_test", "source_test/", "lodo_val", "target/")


class IncompleteRunWarning(UserWarning):
    """A run without a ``done`` marker: it is reported, flagged ``complete=False``."""


def run_complete(run_dir: str | Path, stacklevel: int = 2) -> bool:
    """Whether a run finished (has a ``done`` marker); an :class:`IncompleteRunWarning` when it did not.

    Tables include unfinished runs (flagged ``complete=False``) rather than dropping them silently.
    """
    path = Path(run_dir)
    if RunDir(path).done:
        return True
    warnings.warn(f"{path}: no '{DONE_MARKER}' marker (training did not finish); included with complete=False",
                  IncompleteRunWarning, stacklevel=stacklevel + 1)
    return False


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's resolved ``config.yaml`` (empty when absent): :meth:`RunDir.read_config`."""
    return RunDir(run_dir).read_config()


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value, sort_keys=True, default=str)
    return flat


def run_identity(run_dir: Path, config: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """Algorithm, backbone and seed from the config, else from the record; raises if neither has one."""
    identity = {}
    for field, dotted in IDENTITY_KEYS.items():
        value = _lookup(config, dotted)
        if value is None:
            value = next((record[k] for k in RECORD_FALLBACKS[field] if record.get(k) is not None), None)
        if value is None:
            fallbacks = list(RECORD_FALLBACKS[field])
            raise ReportError(
                f"{run_dir}: no {field}: neither {CONFIG_FILE} key {dotted!r} nor record key(s) {fallbacks}"
            )
        identity[field] = value
    return identity


def _variants(runs: list[dict[str, Any]], flat_configs: list[dict[str, str]]) -> list[str]:
    """Per run, the config keys (with values) that set it apart from other runs of its algorithm/backbone.

    Seeds and :data:`workbench.config.RUN_SPECIFIC_KEYS` (where and how a run ran) never make a variant;
    any other differing key does.
    """
    variants = [""] * len(runs)
    ignored = set(IDENTITY_KEYS.values())
    by_cell: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        by_cell.setdefault((run["algorithm"], run["backbone"]), []).append(i)
    for (algorithm, backbone), members in by_cell.items():
        keys = sorted({k for i in members for k in flat_configs[i]})
        differing = [
            k
            for k in keys
            if k not in ignored
            and "seed" not in k.rsplit(".", 1)[-1]
            and k not in RUN_SPECIFIC_KEYS
            and len({flat_configs[i].get(k, "<unset>") for i in members}) > 1
        ]
        if differing:
            warnings.warn(
                f"runs of {algorithm}/{backbone} differ in config key(s) {differing}; "
                "they are summarised as separate variants",
                stacklevel=3,
            )
            for i in members:
                variants[i] = ", ".join(f"{k}={flat_configs[i].get(k, '<unset>')}" for k in differing)
    return variants


def config_variants(configs: Sequence[dict[str, Any]]) -> list[str]:
    """Per run config, the keys (with values) that set it apart from other runs of its algorithm and backbone.

    The rule of :func:`collect` (seeds and where a run ran never count), for tables of runs other
    than results, e.g. :func:`workbench.analysis.run_summary.analyse_runs`.
    """
    runs = [{"algorithm": _lookup(c, "algorithm.name"), "backbone": _lookup(c, "model.name")} for c in configs]
    return _variants(runs, [_flatten(c) for c in configs])


def expand_sweeps(paths: Iterable[str | Path]) -> list[Path]:
    """Run directories: each path as given, except that a sweep folder (with ``sweep.csv``) stands for its runs.

    A sweep's finished runs are taken in the table's order; runs that failed or never finished are
    left out with a warning naming them (their partial records would compete as if complete).
    """
    expanded = []
    for path in map(Path, paths):
        table_path = path / SWEEP_FILE
        if not table_path.is_file():
            expanded.append(path)
            continue
        table = pd.read_csv(table_path, dtype=str, keep_default_na=False)
        missing = [c for c in ("name", "status") if c not in table.columns]
        if missing:
            raise ReportError(f"{table_path}: no column(s) {missing}; is it a sweep table?")
        finished = table["status"].isin(SWEEP_RUN_STATUSES)
        if not finished.all():
            left_out = [f"{r.name} ({r.status})" for r in table[~finished].itertuples()]
            warnings.warn(f"{path}: left out {len(left_out)} sweep run(s) that did not finish: {left_out}", stacklevel=2)
        expanded += [path / name for name in table.loc[finished, "name"]]
    return expanded


def _group_sort_key(group: str) -> tuple[int, str]:
    ranks = [
        i
        for i, prefix in enumerate(GROUP_ORDER)
        if group == prefix or (prefix.endswith("/") and group.startswith(prefix))
    ]
    return (ranks[-1] if ranks else len(GROUP_ORDER), group)


def collect(run_dirs: Iterable[str | Path], rule: str = "source_val", metric: str = "auc") -> pd.DataFrame:
    """One row per run: identity, completeness, the record chosen by ``rule`` and its ``<group>:<key>`` values.

    Identity comes from ``config.yaml`` (``algorithm.name``, ``model.name``, ``train.seed``), else
    from the records. ``variant`` names the config keys that differ from other runs of the same
    algorithm and backbone (seeds and run locations excepted), so ablations are never pooled.
    Runs without a ``done`` marker are kept with ``complete=False`` and an ``IncompleteRunWarning``.
    """
    paths = [Path(d) for d in run_dirs]
    if not paths:
        raise ReportError("no run directories given")
    seen: set[Path] = set()
    runs, flat_configs = [], []
    for path in paths:
        if path.resolve() in seen:
            raise ReportError(f"{path}: run directory listed twice")
        seen.add(path.resolve())
        records = load_records(path)
        if not records:
            raise ReportError(f"{path}: records.jsonl holds no records")
        try:
            chosen = select(records, rule=rule, metric=metric)
        except ValueError as exc:
            raise ReportError(f"{path}: {exc}") from exc
        config = read_config(path)
        complete = run_complete(path, stacklevel=3)
        selection = chosen["selection"]
        row = {
            "run": path.name,
            "run_dir": str(path),
            **run_identity(path, config, chosen),
            "complete": complete,
            "selection": rule,
            "oracle": selection["oracle"],
            "selection_metric": metric,
            "step": chosen["step"],
            "selection_score": selection["score"],
        }
        for group in sorted(chosen.get("eval", {}), key=_group_sort_key):
            for key, value in chosen["eval"][group].items():
                row[f"{group}:{key}"] = value
        runs.append(row)
        flat_configs.append(_flatten(config))
    for row, variant in zip(runs, _variants(runs, flat_configs)):
        row["variant"] = variant
    table = pd.DataFrame(runs)
    repeated = table[table.duplicated(["algorithm", "backbone", "variant", "seed"], keep=False)]
    if len(repeated):
        warnings.warn(
            f"runs {list(repeated['run_dir'])} repeat an algorithm/backbone/variant/seed; each counts as a seed",
            stacklevel=2,
        )
    front = ["run", "run_dir", "algorithm", "backbone", "seed", "variant", "complete"]
    return table[front + [c for c in table.columns if c not in front]]


def groups_in(df: pd.DataFrame) -> list[str]:
    """Evaluation groups that have columns in a ``collect`` table, in report order."""
    return sorted({c.split(":", 1)[0] for c in df.columns if ":" in c}, key=_group_sort_key)


def default_groups(df: pd.DataFrame) -> list[str]:
    """The groups a results table shows by default: ``source_test`` and every ``target/*`` group."""
    chosen = [g for g in groups_in(df) if g == "source_test" or g.startswith("target/")]
    return chosen or groups_in(df)


def _numeric(cell: pd.DataFrame, column: str) -> pd.Series:
    values = pd.to_numeric(cell[column], errors="coerce")
    bad = values.isna() & cell[column].notna()
    if bad.any():
        run = cell.loc[bad, "run_dir"].iloc[0]
        raise ReportError(f"{run}: {column} = {cell.loc[bad, column].iloc[0]!r} is not a number")
    return values


def _undefined(cell: pd.DataFrame, group: str, metric: str) -> str:
    reasons = cell.get(f"{group}:{metric}_reason", pd.Series(dtype=object)).dropna()
    return f"{NO_INTERVAL}: metric undefined" + (f" ({reasons.iloc[0]})" if len(reasons) else "")


def _interval(
    runs: pd.DataFrame, group: str, metric: str, values: np.ndarray, n_boot: int, ci: float, seed: int,
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
            column = _numeric(cell, f"{group}:{metric}")
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


def tune_variants(runs: pd.DataFrame) -> pd.DataFrame:
    """Hyper-parameter selection after DomainBed: per rule, algorithm and backbone, the best config variant.

    A variant's score is the mean over its seeds of each run's ``selection_score`` (what the rule
    selected the run's record by: source-val metric for ``source_val``, ``lodo_val`` for ``lodo``,
    the target mean for ``oracle``, which is therefore oracle-tuned too); the best (highest, lowest
    for error metrics; ties go to the variant listed first) is chosen, so no test group is looked at
    unless the rule does. Returns ``runs`` (from :func:`collect`) with ``tuning_score`` (the
    variant's mean score), ``tuning_seeds``, ``tuning_incomplete`` (its runs without a ``done`` marker,
    which compete with the records they have; the notes flag them) and ``chosen`` columns. ``last``
    has no score and is refused.
    """
    if (runs["selection"] == "last").any():
        raise ReportError("hyper-parameter tuning needs a rule with a validation score; 'last' has none")
    scores = pd.to_numeric(runs["selection_score"], errors="coerce")
    variant_of = [runs[k] for k in CELL_KEYS]
    by_variant = scores.groupby(variant_of, sort=False)
    incomplete = (~runs["complete"].astype(bool)).groupby(variant_of, sort=False).transform("sum")
    runs = runs.assign(tuning_score=by_variant.transform("mean"), tuning_seeds=by_variant.transform("count"),
                       tuning_incomplete=incomplete.astype(int))
    chosen = pd.Series(False, index=runs.index)
    for cell, members in runs.groupby(["selection", "algorithm", "backbone"], sort=False):
        scored = members.dropna(subset=["tuning_score"])
        if scored.empty:
            raise ReportError(f"{dict(zip(['selection', 'algorithm', 'backbone'], cell))}: no run has a selection "
                              "score to tune on")
        lower = scored["selection_metric"].iloc[0] in LOWER_IS_BETTER
        best = scored["tuning_score"].idxmin() if lower else scored["tuning_score"].idxmax()
        chosen[members.index[members["variant"] == scored.at[best, "variant"]]] = True
    return runs.assign(chosen=chosen)


def _tuning_notes(runs: pd.DataFrame) -> pd.DataFrame:
    """Per rule, algorithm and backbone, one line naming the chosen variant and the candidates' scores."""
    rows = []
    for (selection, algorithm, backbone), members in runs.groupby(["selection", "algorithm", "backbone"], sort=False):
        variants = members.drop_duplicates("variant")
        metric = members["selection_metric"].iloc[0]
        candidates = "; ".join(
            f"{'**' if v.chosen else ''}{v.variant or '(default)'}: {v.tuning_score:.4f} ({v.tuning_seeds} seeds"
            f"{f', {v.tuning_incomplete} incomplete' if v.tuning_incomplete else ''}){'**' if v.chosen else ''}"
            for v in variants.itertuples()
        )
        rows.append({"selection": selection, "algorithm": algorithm, "backbone": backbone,
                     "tuning": f"{len(variants)} variant(s) by mean {selection} {metric}: {candidates}"})
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
    summaries = [summarise(table[table["chosen"]] if tune else table, groups, metric, n_boot=n_boot, ci=ci, seed=seed,
                           predictions=predictions) for table in runs]
    if tune:
        notes = pd.concat([_tuning_notes(table) for table in runs], ignore_index=True)
        summaries = [summary.merge(notes, on=["selection", "algorithm", "backbone"], how="left")
                     for summary in summaries]
    return pd.concat(runs, ignore_index=True), pd.concat(summaries, ignore_index=True)


def write_report(summary: pd.DataFrame, out_dir: str | Path, runs: pd.DataFrame | None = None,
                 differences: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write ``report.md`` and ``report.csv`` (the summary), ``runs.csv`` when given the per-run table, and
    ``differences.csv`` (and its table in ``report.md``) when given :func:`~workbench.training.comparison.baseline_differences`."""
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
