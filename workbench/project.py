"""Paths and configs relative to the project root, so that a notebook, a test and the command line started in the
project root find the same runs, data and weights; and the rule for reusing a finished run from them."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.config import load_config
from workbench.training.run_dir import RunDir

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_FILE = "configs/demo.yaml"
# Config paths taken from the project root; each holds a path, a list of paths (one per manifest), or
# (model.pretrained) false.
PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("run", "dir"),
    ("data", "manifest"),
    ("data", "root"),
    ("data", "synthetic", "cache_dir"),
    ("model", "pretrained"),
)


def project_path(path: str | Path) -> Path:
    """``path`` itself when absolute, else relative to the project root (the folder holding ``workbench/``)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def merge_overrides(*overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merge nested override mappings left to right (later values win; ``None`` entries are skipped)."""
    merged: dict[str, Any] = {}

    def merge(into: dict[str, Any], update: Mapping[str, Any]) -> None:
        for key, value in update.items():
            if isinstance(value, Mapping) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else copy.deepcopy(value)

    for update in overrides:
        if update is None:
            continue
        if not isinstance(update, Mapping):
            raise TypeError(
                f"an override must be a nested mapping such as {{'train': {{'steps': 10}}}}, got {update!r}"
            )
        merge(merged, update)
    return merged


def notebook_config(config_file: str | Path | None = DEFAULT_CONFIG_FILE, *overrides: Mapping[str, Any] | None) -> dict:
    """A resolved run config: defaults, ``config_file`` (relative to the project root), then each override.

    Relative paths in :data:`PATH_KEYS` (``run.dir``, ``data.manifest`` and ``data.root``, also as
    lists, ``data.synthetic.cache_dir``, a ``model.pretrained`` weights file) are made absolute
    against the project root, so runs, data and weights are found in the same place from a notebook,
    a test or the command line started in the project root.
    """
    config = load_config(project_path(config_file) if config_file is not None else None, merge_overrides(*overrides))
    return resolve_project_paths(config)


def resolve_project_paths(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the relative paths of :data:`PATH_KEYS` made absolute against the project root (in place)."""
    for keys in PATH_KEYS:
        node = config
        for key in keys[:-1]:
            node = node.get(key, {})
        if keys[-1] in node:
            node[keys[-1]] = _project_paths(node[keys[-1]])
    return config


def _project_paths(value: Any) -> Any:
    """:func:`project_path` of a path or of each path in a list; other values (None, False) unchanged."""
    if isinstance(value, (list, tuple)):
        return [_project_paths(v) for v in value]
    return str(project_path(value)) if isinstance(value, (str, Path)) else value


def check_reusable(run_dir: str | Path, config: Mapping[str, Any]) -> None:
    """Raise :class:`RunMismatchError` naming every key where the finished ``run_dir``'s saved config differs
    from ``config`` (:meth:`RunDir.check_config`); its saved paths are resolved against the project root like
    the request's, so a run trained from the command line with relative paths matches."""
    RunDir(run_dir).check_config(config, require_saved=True, normalise=resolve_project_paths)
