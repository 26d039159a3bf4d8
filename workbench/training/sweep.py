"""Sweeps: every algorithm × hyper-parameter combination × seed of one config, as run directories.

A sweep is planned in full before anything trains (:func:`plan_sweep`): every run's config is loaded
and checked against its manifest as training would check it, so a bad grid value fails at once,
naming the key. :func:`run_sweep` then trains the
runs in ``out_dir/<name>``, one after another in this process or elsewhere through a launcher
(:mod:`workbench.training.launchers`: N at once on this machine, or SLURM); a run finished with the
same config is reused (one of another config is a failure, never passed off as this one), an
interrupted one resumes, and a run that fails (e.g. a diverging learning rate) is recorded and the
sweep goes on. ``sweep.csv`` in ``out_dir``, written by this process alone, lists every run (pending
ones too) with its status and where it executed. Choose hyper-parameters afterwards, honestly, with
``report --tune`` (:func:`workbench.training.tuning.tune_variants`).
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.algorithms import ALGORITHMS, hparam_spec
from workbench.atomic import atomic_path
from workbench.config import (
    ConfigError,
    check_checkpoint_rules_usable,
    load_config,
    load_yaml,
    parse_override,
)
from workbench.data.manifest import ManifestError
from workbench.project import merge_overrides, resolve_project_paths
from workbench.saved_config import RUN_SPECIFIC_KEYS
from workbench.training.collect import SWEEP_ALREADY_DONE, SWEEP_FILE
from workbench.training.launchers import Launcher, RunJob, SerialLauncher
from workbench.training.pipeline import training_protocol
from workbench.training.run_dir import RunConfigError, RunDir
from workbench.training.runs import run_manifest

# sweep.csv's status of a run executing in another process or on another machine
SWEEP_RUNNING = "running"
# keys a grid may not sweep: the sweep's own axes (--algorithms, --seeds) and where or how a run executes
UNSWEPT_KEYS: frozenset[str] = RUN_SPECIFIC_KEYS | {"algorithm.name", "train.seed"}


@dataclass(frozen=True)
class GridAxis:
    """One swept config key, its values, and the algorithms it applies to (None: all of them)."""

    key: str
    values: tuple[Any, ...]
    algorithms: tuple[str, ...] | None = None


@dataclass
class SweepRun:
    """One planned run: its directory name, resolved config and the grid values that set it apart."""

    name: str
    config: dict[str, Any]
    grid: dict[str, Any] = field(default_factory=dict)


def parse_axis(text: str) -> GridAxis:
    """``"KEY=[v1, v2]"`` or ``"roga,sagm:KEY=[v1, v2]"`` (values as a YAML list; the prefix limits the algorithms)."""
    head, sep, raw = text.partition("=")
    scope, _, key = head.rpartition(":")
    if not sep or not key.strip():
        raise ConfigError(f"grid {text!r} must look like KEY=[v1, v2] or ALGORITHM:KEY=[v1, v2]")
    values = load_yaml(raw)
    if not isinstance(values, list) or not values:
        raise ConfigError(f"grid {text!r}: the values must be a non-empty YAML list, e.g. {key.strip()}=[0.02, 0.05]")
    if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
        raise ConfigError(f"grid {text!r}: a value is listed twice")
    algorithms = tuple(a.strip().lower() for a in scope.split(",")) if scope else None
    return GridAxis(key.strip(), tuple(values), algorithms)


def _label(axes: Sequence[GridAxis]) -> dict[str, str]:
    """Short names for run directories: the key's last part, or the whole key where two would clash."""
    last = [axis.key.rsplit(".", 1)[-1] for axis in axes]
    return {axis.key: short if last.count(short) == 1 else axis.key for axis, short in zip(axes, last)}


def _format(value: Any) -> str:
    """A grid value as part of a directory name: JSON with other characters than ``[A-Za-z0-9._+-]`` as ``_``."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "_"


def plan_sweep(
    config: str | Path | Mapping[str, Any] | None,
    overrides: Sequence[str],
    algorithms: Sequence[str],
    seeds: Sequence[int],
    axes: Sequence[GridAxis] = (),
) -> list[SweepRun]:
    """Every run of the sweep, with its config loaded and checked as training would check it before its
    first step, against its manifest (nothing is trained; the embedded benchmark may be generated).

    ``config`` is a config file (None: the defaults) or an already loaded config (e.g. a notebook's).

    Runs are ordered algorithm, grid combination (in the order the axes and values are given), seed,
    so the seeds of one setting are adjacent. An axis limited to other algorithms does not multiply
    an algorithm's runs. ``overrides`` apply to every run; the grid values go after them.
    """
    if not algorithms or not seeds:
        raise ConfigError("a sweep needs at least one algorithm and one seed")
    if len(set(seeds)) != len(seeds) or len({a.lower() for a in algorithms}) != len(algorithms):
        raise ConfigError(f"algorithms {list(algorithms)} and seeds {list(seeds)} must each be listed once")
    keys = [axis.key for axis in axes]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"grid keys {keys} must each be swept once")
    unswept = [key for key in keys if key in UNSWEPT_KEYS]
    if unswept:
        raise ConfigError(
            f"grid keys {unswept} cannot be swept: algorithms and seeds are set with --algorithms "
            "and --seeds, and where or how a run executes does not change what it computes"
        )
    for axis in axes:
        unknown = set(axis.algorithms or ()) - {a.lower() for a in algorithms}
        if unknown:
            raise ConfigError(f"grid {axis.key!r} is limited to {sorted(unknown)}, which the sweep does not run")
    labels = _label(axes)
    manifests: dict[str, pd.DataFrame] = {}
    runs: list[SweepRun] = []
    for algorithm in algorithms:
        own = [axis for axis in axes if axis.algorithms is None or algorithm.lower() in axis.algorithms]
        _check_hparam_axes(algorithm, own, algorithms)
        for combination in itertools.product(*(axis.values for axis in own)):
            grid = {axis.key: value for axis, value in zip(own, combination)}
            for seed in seeds:
                assigned = [
                    f"algorithm.name={algorithm}",
                    f"train.seed={seed}",
                    *(f"{key}={json.dumps(value)}" for key, value in grid.items()),
                ]
                try:
                    run_config = _run_config(config, [*overrides, *assigned])
                    check_trainable(run_config, manifests)
                except (ConfigError, ManifestError) as exc:
                    raise ConfigError(f"sweep run {algorithm}, seed {seed}, grid {grid}: {exc}") from exc
                parts = [algorithm.lower(), *(f"{labels[k]}={_format(v)}" for k, v in grid.items()), f"seed{seed}"]
                runs.append(SweepRun("-".join(parts), run_config, grid))
    names = [run.name for run in runs]
    clashing = sorted({name for name in names if names.count(name) > 1})
    if clashing:
        raise ConfigError(f"grid values that differ only in punctuation would share run directories {clashing}")
    return runs


def _run_config(config: str | Path | Mapping[str, Any] | None, overrides: Sequence[str]) -> dict[str, Any]:
    if isinstance(config, Mapping):
        return load_config(None, merge_overrides(config, *(parse_override(item) for item in overrides)))
    return load_config(config, overrides)


def _check_hparam_axes(algorithm: str, axes: Sequence[GridAxis], algorithms: Sequence[str]) -> None:
    """Refuse a hyper-parameter axis for an algorithm that has no such hyper-parameter, saying how to scope it."""
    prefix = "algorithm.hparams."
    if algorithm.lower() not in ALGORITHMS:
        return  # loading its config names the unknown algorithm
    spec = hparam_spec(algorithm)
    for axis in axes:
        leaf = axis.key[len(prefix) :]
        if axis.key.startswith(prefix) and leaf not in spec:
            takers = [a.lower() for a in algorithms if a.lower() in ALGORITHMS and leaf in hparam_spec(a)]
            scope = (
                f"; limit it to the algorithms that have it: '{','.join(takers)}:{axis.key}=[...]'" if takers else ""
            )
            raise ConfigError(
                f"grid {axis.key!r}: algorithm {algorithm!r} has no hyper-parameter {leaf!r} "
                f"(its hyper-parameters: {sorted(spec)}){scope}"
            )


def check_existing(run: SweepRun, run_dir: Path) -> None:
    """Raise :class:`RunConfigError` when ``run_dir`` holds a run that may not be taken as ``run``.

    A finished run is reused only if its saved config equals the planned one (where it ran aside; a
    finished run without a saved config cannot be checked, so it is refused), and an unfinished one
    resumes only if training would accept it (``train.steps`` may grow). Relative paths on either side
    are taken from the project root (:func:`workbench.project.resolve_project_paths`), so a run trained
    from the command line is reused from a notebook and the other way round.
    """
    directory = RunDir(run_dir)
    directory.check_config(
        resolve_project_paths(copy.deepcopy(run.config)), require_saved=directory.done, normalise=resolve_project_paths
    )


def existing_status(run: SweepRun, run_dir: Path, refuse: bool = False) -> str | None:
    """What ``run_dir`` already holds for ``run``: ``"already done"``, a failure, or None (train or resume it).

    Changing ``--set`` or ``--config`` never passes old runs off as new ones: a run that
    :func:`check_existing` refuses fails, naming the keys (``refuse``: raises its :class:`RunConfigError`).
    """
    try:
        check_existing(run, run_dir)
    except RunConfigError as exc:
        if refuse:
            raise
        return f"failed: {exc}"
    return SWEEP_ALREADY_DONE if RunDir(run_dir).done else None


def planned_status(run: SweepRun, run_dir: Path) -> str:
    """What a sweep would do with ``run``: its :func:`existing_status`, ``to resume`` or ``to train``."""
    return existing_status(run, run_dir) or ("to resume" if RunDir(run_dir).resumable else "to train")


def check_trainable(config: dict[str, Any], manifests: dict[str, pd.DataFrame]) -> None:
    """The checks training makes before its first step (:func:`workbench.training.pipeline.training_protocol`,
    kept checkpoint rules), on the config's manifest; ``manifests`` caches the tables read so far."""
    data = config["data"]
    key = json.dumps(
        [data["manifest"], data["root"], None if data["manifest"] else data["synthetic"]], sort_keys=True, default=str
    )
    if key not in manifests:
        manifests[key] = run_manifest(config, check_files=False)[0]
    training_protocol(config, manifests[key])
    check_checkpoint_rules_usable(config)


def _status_row(run: SweepRun, run_dir: Path, status: str, job: str = "") -> dict[str, Any]:
    return {
        "name": run.name,
        "run_dir": str(run_dir),
        "algorithm": run.config["algorithm"]["name"],
        "seed": run.config["train"]["seed"],
        "grid": json.dumps(run.grid, sort_keys=True),
        "status": status,
        "job": job,
    }


def _write_table(table: dict[str, dict[str, Any]], path: Path) -> None:
    """Write the status table atomically: a reader never sees half a file, an interruption never loses the old one."""
    with atomic_path(path) as tmp:
        pd.DataFrame(table.values()).to_csv(tmp, index=False)


def _mark_pending(table: dict[str, dict[str, Any]], path: Path) -> None:
    """Runs listed as running are pending again (their process was stopped); write the table."""
    for row in table.values():
        if row["status"] == SWEEP_RUNNING:
            row["status"] = "pending"
    _write_table(table, path)


def run_sweep(
    runs: Iterable[SweepRun],
    out_dir: str | Path,
    train_run: Callable[[dict[str, Any], Path], Any],
    errors: tuple[type[Exception], ...] = (Exception,),
    on_status: Callable[[dict[str, Any]], None] | None = None,
    launcher: Launcher | None = None,
    statuses: Mapping[str, str | None] | None = None,
) -> pd.DataFrame:
    """Train each planned run in ``out_dir/<name>`` with ``train_run(config, run_dir)``; return the status table.

    Status: ``trained``, ``already done`` (finished with the same config: not touched; see
    :func:`existing_status`) or ``failed: <message>`` for an exception in ``errors``, after which the
    sweep continues. ``launcher`` says where runs execute (default: :class:`SerialLauncher`, in this
    process, where any other exception stops the sweep; a parallel launcher records every failure of
    a run and goes on). ``train_run`` must be picklable (a module-level function) for a parallel launcher.

    This function alone writes ``out_dir/sweep.csv``, atomically, whenever a run starts elsewhere or
    finishes: one row per run of this and earlier calls, planned runs not yet reached keep their earlier
    row or are ``pending`` (so an interrupted sweep still lists them), a run executing elsewhere is
    ``running``, and column ``job`` says where each run executed. ``on_status`` sees each finished row.
    ``statuses``: each run's :func:`existing_status` when the caller has already checked them.
    Returns this call's rows, in the planned order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table_path = out / SWEEP_FILE
    earlier = pd.read_csv(table_path, dtype=str, keep_default_na=False) if table_path.is_file() else pd.DataFrame()
    table = {row["name"]: {"job": "", **row} for row in earlier.to_dict("records")}
    runs = list(runs)
    for run in runs:  # a run not reached (the sweep interrupted) keeps its earlier row, or is listed as pending
        table.setdefault(run.name, _status_row(run, out / run.name, "pending"))
    stale = [f"{row['name']} ({row['job']})" for row in table.values() if row["status"] == SWEEP_RUNNING]
    if stale:
        warnings.warn(
            f"{table_path} lists runs as running: the sweep that started them was killed before it could "
            f"stop them: {stale}; if such a job still runs (e.g. on SLURM), cancel it (scancel) so that it "
            "does not train beside this sweep",
            stacklevel=2,
        )
    _mark_pending(table, table_path)
    launcher = launcher or SerialLauncher()
    by_name = {run.name: run for run in runs}
    rows: dict[str, dict[str, Any]] = {}

    def record(run: SweepRun, status: str, job: str) -> None:
        row = _status_row(run, out / run.name, status, job)
        table[run.name] = row
        if status != SWEEP_RUNNING:
            rows[run.name] = row
            if on_status is not None:
                on_status(row)
        _write_table(table, table_path)

    jobs = []
    for run in runs:
        status = existing_status(run, out / run.name) if statuses is None else statuses[run.name]
        if status is None:
            jobs.append(RunJob(run.name, run.config, out / run.name, train_run, errors))
        else:
            record(run, status, table[run.name].get("job", "") if status == SWEEP_ALREADY_DONE else "")
    launched = launcher.launch(jobs)
    try:
        for job, status in launched:
            record(by_name[job.name], SWEEP_RUNNING if status is None else status, launcher.where(job))
    finally:
        launched.close()  # the launcher stops the runs still executing
        _mark_pending(table, table_path)
    return pd.DataFrame([rows[run.name] for run in runs])


def ensure_runs(
    runs: Sequence[SweepRun], out_dir: str | Path, train_run: Callable[[dict[str, Any], Path], Any]
) -> list[Path]:
    """The runner as the demo and the notebooks use it: every planned run finished in ``out_dir/<name>``.

    Each run is reused when it finished with the same config, resumed when it was interrupted and trained
    otherwise, one after another in this process, with ``sweep.csv`` kept as by :func:`run_sweep`. Unlike a
    sweep, nothing is recorded and skipped: a run that cannot be reused raises :class:`RunConfigError` (naming
    the keys) before anything trains, and a training error is raised as it is. Returns the run directories.
    """
    out = Path(out_dir)
    statuses = {run.name: existing_status(run, out / run.name, refuse=True) for run in runs}
    run_sweep(runs, out, train_run, errors=(), statuses=statuses)
    return [out / run.name for run in runs]
