"""A run's config as it is saved (every hyper-parameter of its algorithm spelled out) and the one rule
for comparing a saved config with a requested one (may this run be resumed or reused?)."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from workbench.algorithms import hparam_spec, resolve_hparams
from workbench.atomic import atomic_write_text
from workbench.config import DEFAULT_CONFIG, dump_yaml, load_yaml

# Keys that say where and how a run executes, never what it computes. They may differ between the
# seeds of one experiment (reports pool such runs) and when an interrupted run is resumed.
RUN_SPECIFIC_KEYS: frozenset[str] = frozenset(
    {
        "run.dir",
        "run.name",
        "data.root",
        "data.synthetic.cache_dir",
        "data.synthetic.workers",
        "data.workers",
        "data.eval_batch_size",
        "train.device",
        "train.progress",
        "train.cpu_threads",
        "train.checkpoint_rules",
    }
)


_MISSING = object()


def config_differences(
    saved: Any, requested: Any, default: Any = None, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any, Any]]:
    """``(key path, saved value, requested value)`` wherever two configs differ.

    A key the saved config lacks counts as its value in ``default`` (a config of defaults, e.g.
    :data:`DEFAULT_CONFIG`, so runs saved before a key existed compare equal to its default).
    """
    if saved is _MISSING:
        saved = default
    if isinstance(saved, dict) and isinstance(requested, dict):
        defaults = default if isinstance(default, dict) else {}
        out = []
        for key in sorted(set(saved) | set(requested), key=str):
            out += config_differences(
                saved.get(key, _MISSING), requested.get(key), defaults.get(key), prefix + (str(key),)
            )
        return out
    return [] if saved == requested else [(prefix, saved, requested)]


def with_resolved_hparams(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` whose ``algorithm.hparams`` hold every hyper-parameter of its algorithm (defaults filled).

    Two configs that differ only in spelling out a default then compare equal. Keys the algorithm does
    not take are dropped: runs saved before hyper-parameters were per algorithm hold every algorithm's
    keys (e.g. ``rho`` for ERM), which never affected that algorithm.
    """
    config = copy.deepcopy(dict(config))
    algorithm = config.get("algorithm")
    if not isinstance(algorithm, dict) or "name" not in algorithm or not isinstance(algorithm.get("hparams", {}), dict):
        return config
    name = algorithm["name"]
    spec = hparam_spec(name)
    algorithm["hparams"] = resolve_hparams(
        name, {k: v for k, v in (algorithm.get("hparams") or {}).items() if k in spec}
    )
    return config


def run_config_changes(
    saved: Mapping[str, Any], requested: Mapping[str, Any], ignored: Collection[str] = RUN_SPECIFIC_KEYS
) -> list[tuple[str, Any, Any]]:
    """``(dotted key, saved, requested)`` where a run's saved config differs from a requested one.

    The one rule for whether a run may be resumed or reused: the request is compared as it would be
    saved (a YAML round trip, so a tuple equals the saved list), hyper-parameters are compared with
    their algorithm's defaults filled in (:func:`with_resolved_hparams`), a key the saved config lacks
    counts as its :data:`DEFAULT_CONFIG` value, and the keys in ``ignored`` (dotted) never count. When the
    algorithm differs, the hyper-parameters only one of the two algorithms has are not listed besides it.
    """
    as_saved = with_resolved_hparams(load_yaml(dump_yaml(dict(requested))))
    differences = [
        (".".join(p), o, n) for p, o, n in config_differences(with_resolved_hparams(saved), as_saved, DEFAULT_CONFIG)
    ]
    renamed = any(name == "algorithm.name" for name, _, _ in differences)
    return [
        (name, old, new)
        for name, old, new in differences
        if name not in ignored
        and not (renamed and name.startswith("algorithm.hparams.") and (old is None or new is None))
    ]


def dump_config(config: Mapping[str, Any], path: str | Path) -> None:
    """Write ``config`` as a config file (atomically), with every hyper-parameter of its algorithm spelled out."""
    atomic_write_text(path, dump_yaml(with_resolved_hparams(config)))
