"""A run directory (docs/records.md): its layout and file names, its writes, and the one rule for whether a
run may be resumed or reused with a given config. Nothing else spells a path of the layout.

```
<run>/config.yaml        resolved config (every hyper-parameter spelled out)
<run>/records.jsonl      one JSON line per evaluation or analysis (workbench.training.records)
<run>/checkpoints/       last.pt (resume point), best_<rule>.pt (kept models), swad.pt (SWAD model)
<run>/predictions.csv    per-frame predictions of the kept source_val model (and the SWAD model)
<run>/done               written when training finished
```
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from workbench.atomic import atomic_path, atomic_write_text
from workbench.config import CHECKPOINT_RULES, ConfigError, load_yaml
from workbench.saved_config import RUN_SPECIFIC_KEYS, dump_config, run_config_changes, with_resolved_hparams
from workbench.training.checkpoint import load_checkpoint, save_checkpoint
from workbench.training.records import RECORDS_FILE, RecordsError, RecordWriter
from workbench.training.selection import load_records

CONFIG_FILE = "config.yaml"
PREDICTIONS_FILE = "predictions.csv"
DONE_MARKER = "done"
CHECKPOINTS = "checkpoints"
LAST = "last.pt"
SWAD_CHECKPOINT = "swad.pt"
# Config keys that may differ when an interrupted run is resumed: where and how it runs, and the number of
# steps (a run may be extended, never shortened). The kept checkpoints may not change: the model of an
# earlier best step of a newly named rule would be lost.
RESUMABLE_CHANGES: frozenset[str] = (RUN_SPECIFIC_KEYS - {"train.checkpoint_rules"}) | {"train.steps"}


def best_checkpoint(rule: str) -> str:
    """File name under ``checkpoints/`` of the model selection ``rule`` picks (``train.checkpoint_rules``)."""
    return f"best_{rule}.pt"


BEST = best_checkpoint("source_val")


class RunConfigError(ConfigError):
    """A run's ``config.yaml`` that cannot be read, or a run that may not be resumed or reused with a config."""


class RunMismatchError(RunConfigError):
    """A run directory whose saved config forbids resuming or reusing it with the requested one."""


def default_run_name(config: Mapping[str, Any]) -> str:
    """``<algorithm>-<model>-seed<seed>``: the name ``train`` gives a run when ``run.name`` is unset."""
    return f"{config['algorithm']['name']}-{config['model']['name']}-seed{config['train']['seed']}"


def run_directory(config: Mapping[str, Any], run_dir: str | Path | None = None) -> Path:
    """Where a run is written: ``run_dir`` when given, else ``run.dir/run.name`` (default: algorithm-model-seed)."""
    if run_dir is not None:
        return Path(run_dir)
    return Path(config["run"]["dir"]) / (config["run"]["name"] or default_run_name(config))


class RunDir:
    """One run directory: the paths, reads and writes of everything in it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    # ----------------------------------------------------------------- layout
    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def records_file(self) -> Path:
        return self.path / RECORDS_FILE

    @property
    def predictions_file(self) -> Path:
        return self.path / PREDICTIONS_FILE

    @property
    def done_file(self) -> Path:
        return self.path / DONE_MARKER

    def checkpoint(self, name: str) -> Path:
        """The path of ``checkpoints/<name>`` (``last.pt``, ``best_<rule>.pt``, ``swad.pt``)."""
        return self.path / CHECKPOINTS / name

    @property
    def last(self) -> Path:
        return self.checkpoint(LAST)

    def best(self, rule: str) -> Path:
        """The kept model of selection ``rule``."""
        return self.checkpoint(best_checkpoint(rule))

    @property
    def swad(self) -> Path:
        return self.checkpoint(SWAD_CHECKPOINT)

    # ------------------------------------------------------------------ state
    @property
    def done(self) -> bool:
        """Whether training finished (the ``done`` marker exists)."""
        return self.done_file.is_file()

    @property
    def resumable(self) -> bool:
        """Whether an unfinished run has a ``last.pt`` to continue from."""
        return not self.done and self.last.is_file()

    def mark_done(self, step: int) -> None:
        atomic_write_text(self.done_file, f"step {step}\n")

    def refuse_finished(self) -> None:
        """Raise ``FileExistsError`` for a finished run: it is never overwritten."""
        if self.done:
            raise FileExistsError(f"{self.path} is a finished run; choose another run name or directory")

    # ----------------------------------------------------------------- config
    def read_config(self) -> dict[str, Any]:
        """The saved ``config.yaml`` (empty when there is none), hyper-parameters with their algorithm's defaults
        filled in (:func:`workbench.saved_config.with_resolved_hparams`)."""
        if not self.config_file.is_file():
            return {}
        try:
            config = load_yaml(self.config_file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise RunConfigError(f"{self.config_file}: invalid YAML: {exc}") from exc
        if config is None:
            return {}
        if not isinstance(config, dict):
            raise RunConfigError(
                f"{self.config_file}: expected a mapping at the top level, got {type(config).__name__}"
            )
        try:
            return with_resolved_hparams(config)
        except (KeyError, ValueError) as exc:
            raise RunConfigError(f"{self.config_file}: {exc.args[0]}") from exc

    def write_config(self, config: Mapping[str, Any]) -> None:
        """Save ``config`` as ``config.yaml``, with every hyper-parameter of its algorithm spelled out."""
        dump_config(config, self.config_file)

    def check_config(
        self,
        config: Mapping[str, Any],
        require_saved: bool = False,
        normalise: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """The one rule for taking this run as the run of ``config``; :class:`RunMismatchError` when it may not.

        A finished run is reused only if the saved config equals ``config`` apart from where and how it ran
        (:data:`workbench.saved_config.RUN_SPECIFIC_KEYS`); an unfinished one is resumed only if they differ at most
        in :data:`RESUMABLE_CHANGES` (``train.steps`` may grow). Without a saved config there is nothing to
        compare (a new run), unless ``require_saved``. ``normalise`` is applied to the saved config first
        (e.g. to resolve its relative paths as the request's were).
        """
        saved = self.read_config()
        if not saved:
            if require_saved:
                raise RunMismatchError(f"{self.path}: no {CONFIG_FILE}, so it cannot be reused as a run")
            return
        ignored: Collection[str] = RUN_SPECIFIC_KEYS if self.done else RESUMABLE_CHANGES
        changed = run_config_changes(normalise(saved) if normalise else saved, config, ignored)
        if changed:
            details = "; ".join(f"{name}: saved {old!r}, requested {new!r}" for name, old, new in changed)
            what = "reuse this finished run" if self.done else "resume this run"
            raise RunMismatchError(
                f"{self.path}: cannot {what}: its config differs from the requested one in "
                f"{details}; choose another run name or directory, or delete the run to train "
                "it again"
            )

    # ---------------------------------------------------------------- records
    @property
    def records(self) -> RecordWriter:
        return RecordWriter(self.path)

    def load_records(self) -> list[dict[str, Any]]:
        """Every record of ``records.jsonl`` (empty before the first one)."""
        return load_records(self.path) if self.records_file.is_file() else []

    # ------------------------------------------------------------ predictions
    def write_predictions(self, table: pd.DataFrame) -> None:
        with atomic_path(self.predictions_file) as tmp:
            table.to_csv(tmp, index=False)

    def read_predictions(self) -> pd.DataFrame:
        """``predictions.csv`` with identifiers read as strings; a missing file says the run has not finished."""
        if not self.predictions_file.is_file():
            raise FileNotFoundError(f"{self.predictions_file} does not exist; the run has not finished")
        return pd.read_csv(
            self.predictions_file, dtype={"video": str, "path": str, "domain": str, "group": str, "dataset": str}
        )

    # ------------------------------------------------------------ checkpoints
    def save(self, name: str, state: dict[str, Any]) -> Path:
        """Write ``checkpoints/<name>`` atomically."""
        return save_checkpoint(state, self.checkpoint(name))

    def load(self, name: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """Read ``checkpoints/<name>`` (tensors and plain containers only; damaged files are named)."""
        return load_checkpoint(self.checkpoint(name), map_location=map_location)

    # ------------------------------------------------- interrupted attempts
    def truncate_to(self, step: int, finishing_kinds: Collection[str] = ()) -> None:
        """Make records and predictions describe only the steps up to ``step``: those of an interrupted stretch,
        and the records of the ``finishing_kinds`` written after the last checkpoint, are dropped."""
        self.records.truncate_after(step, drop_kinds=finishing_kinds)
        path = self.predictions_file
        if not path.is_file():
            return
        table = pd.read_csv(path, dtype=str, keep_default_na=False)  # strings: kept rows are written back as read
        if "step" not in table.columns:
            raise RecordsError(f"{path}: no 'step' column; have {list(table.columns)}")
        late = pd.to_numeric(table["step"]) > step
        if late.any():
            self.write_predictions(table[~late])

    def discard_attempt(self) -> list[str]:
        """Remove what an attempt that never reached ``last.pt`` wrote (records, kept models, predictions);
        return the removed files relative to the run."""
        candidates = (self.records_file, *(self.best(rule) for rule in CHECKPOINT_RULES), self.predictions_file)
        stale = [path for path in candidates if path.exists()]
        for path in stale:
            path.unlink()
        return [str(path.relative_to(self.path)) for path in stale]
