"""Collecting runs into one table: a row per run with its identity, its selected record and its config variant.

:func:`collect` reads run directories (docs/records.md); a sweep folder stands for its finished runs
(:func:`expand_sweeps`). Runs of one algorithm and backbone whose configs differ in anything but the
seed and where they ran are separate *variants* (:func:`config_variants`), never pooled.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.saved_config import RUN_SPECIFIC_KEYS
from workbench.training.cells import ReportError
from workbench.training.run_dir import CONFIG_FILE, DONE_MARKER, RunDir
from workbench.training.selection import load_records, select

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
    warnings.warn(
        f"{path}: no '{DONE_MARKER}' marker (training did not finish); included with complete=False",
        IncompleteRunWarning,
        stacklevel=stacklevel + 1,
    )
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

    Seeds and :data:`workbench.saved_config.RUN_SPECIFIC_KEYS` (where and how a run ran) never make a variant;
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
            warnings.warn(
                f"{path}: left out {len(left_out)} sweep run(s) that did not finish: {left_out}", stacklevel=2
            )
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
