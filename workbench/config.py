"""Run configuration: nested defaults, YAML files and ``key.path=value`` overrides.

Every key a run can use is listed in :data:`DEFAULT_CONFIG`; an unknown key in a file or override is
an error (naming it), so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

SYNTHETIC_SOURCE_DOMAINS = ["SYN-SWAP", "SYN-REENACT", "SYN-GAN", "SYN-NT"]
SYNTHETIC_TARGET_DOMAINS = ["SYN-SEAMLESS", "SYN-COMPRESS"]

DEFAULT_CONFIG: dict[str, Any] = {
    "run": {"name": None, "dir": "runs"},
    "data": {
        # A manifest CSV, or a list of them (cross-dataset), with one root or one per manifest;
        # when ``manifest`` is null the embedded synthetic benchmark is used.
        "manifest": None,
        "root": None,
        "synthetic": {"cache_dir": ".cache/synthetic", "videos_per_domain": 60, "frames_per_video": 8,
                      "size": 64, "seed": 0, "workers": 2},
        "source_domains": SYNTHETIC_SOURCE_DOMAINS,
        "target_domains": SYNTHETIC_TARGET_DOMAINS,
        "lodo_domain": None,
        "image_size": 64,
        "batch_size": 64,
        "real_fraction": 0.5,
        "paired_reals": False,
        "augment": True,
        "cache_images": True,
        "eval_batch_size": 256,
        "workers": 0,
    },
    "model": {"name": "resnet10t", "pretrained": False, "kwargs": {}},
    "algorithm": {"name": "roga", "hparams": {}},
    "train": {
        "steps": 300,
        "eval_every": 100,
        "seed": 0,
        "device": "auto",
        "progress": True,
        "alignment_every": 0,
        "sync_batchnorm": False,
        # CPU intra-op threads (null: PyTorch's default). 1 avoids OpenMP oversubscription when other
        # processes share the cores, which can slow small models by an order of magnitude.
        "cpu_threads": None,
    },
}


FREE_FORM_KEYS = ("model.kwargs", "algorithm.hparams", "data.synthetic")


def _merge(base: dict[str, Any], update: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Merge ``update`` into ``base`` in place; free-form mappings are validated by their consumers."""
    for key, value in update.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            raise KeyError(f"unknown config key {path!r}; known at this level: {sorted(base)}")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise TypeError(f"config key {path!r} must be a mapping, got {value!r}")
            if path in FREE_FORM_KEYS:
                base[key] = {**base[key], **copy.deepcopy(dict(value))}
            else:
                _merge(base[key], value, path)
        else:
            base[key] = copy.deepcopy(value)
    return base


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
            out += config_differences(saved.get(key, _MISSING), requested.get(key), defaults.get(key),
                                      prefix + (str(key),))
        return out
    return [] if saved == requested else [(prefix, saved, requested)]


def parse_override(item: str) -> dict[str, Any]:
    """``"train.steps=50"`` → ``{"train": {"steps": 50}}`` (the value is parsed as YAML)."""
    if "=" not in item:
        raise ValueError(f"override {item!r} must look like key.path=value")
    path, raw = item.split("=", 1)
    value: Any = yaml.safe_load(raw) if raw != "" else None
    for key in reversed(path.strip().split(".")):
        value = {key: value}
    return value


def load_config(
    path: str | Path | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
) -> dict[str, Any]:
    """Defaults, then the YAML file, then overrides (strings ``a.b=v`` or a nested mapping)."""
    config = copy.deepcopy(DEFAULT_CONFIG)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {str(path)!r} does not exist")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, Mapping):
            raise TypeError(f"{path}: a config file must hold a mapping at the top level")
        _merge(config, loaded, "")
    if isinstance(overrides, Mapping):
        _merge(config, overrides, "")
    else:
        for item in overrides:
            _merge(config, parse_override(item), "")
    return config


def dump_config(config: Mapping[str, Any], path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(dict(config), sort_keys=False))
