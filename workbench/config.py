"""Run configuration: nested defaults, YAML files and ``key.path=value`` overrides.

Every key a run can use is listed in :data:`DEFAULT_CONFIG`; an unknown key in a file or override is
an error (naming it), so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import timm
import torch
import yaml

from workbench.algorithms import algorithm_class, resolve_hparams

SYNTHETIC_SOURCE_DOMAINS = ["SYN-SWAP", "SYN-REENACT", "SYN-GAN", "SYN-NT"]
SYNTHETIC_TARGET_DOMAINS = ["SYN-SEAMLESS", "SYN-COMPRESS"]

DEFAULT_CONFIG: dict[str, Any] = {
    "run": {"name": None, "dir": "runs"},
    "data": {
        # A manifest CSV, or a list of them (cross-dataset), with one root or one per manifest;
        # when ``manifest`` is null the embedded synthetic benchmark is used.
        "manifest": None,
        "root": None,
        "synthetic": {
            "cache_dir": ".cache/synthetic",
            "videos_per_domain": 60,
            "frames_per_video": 8,
            "size": 64,
            "seed": 0,
            "workers": 2,
        },
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
        # Selection rules whose best model is kept as checkpoints/best_<rule>.pt (docs/records.md):
        # source_val always; lodo needs data.lodo_domain, oracle (a diagnostic) target domains.
        "checkpoint_rules": ["source_val"],
        # SWAD (Cha et al. 2021) for any algorithm: dense weight averaging over the validation-loss valley,
        # evaluated and kept as checkpoints/swad.pt (selection rule "swad"); the authors' defaults.
        "swad": {"enabled": False, "n_converge": 3, "n_tolerance": 6, "tolerance_ratio": 0.3, "bn_update_steps": 500},
        # A detector trained elsewhere and adopted as a finished run (`python -m workbench adopt`, steps: 0):
        # {"weights": <its file>, "sha256": <the file's SHA-256>}. Such a run is evaluated and analysed, never trained.
        "adopted": None,
    },
}

# Selection rules (workbench.training.selection) whose best model the trainer can keep as it trains.
CHECKPOINT_RULES: tuple[str, ...] = ("source_val", "lodo", "oracle")


FREE_FORM_KEYS = ("model.kwargs", "algorithm.hparams", "data.synthetic")


# The trainer's integer keys: dotted path -> (smallest allowed value, whether null is allowed).
INTEGER_KEYS: dict[str, tuple[int, bool]] = {
    "train.steps": (1, False),
    "train.eval_every": (1, False),
    "train.seed": (0, False),
    "train.alignment_every": (0, False),
    "train.cpu_threads": (1, True),
    "data.image_size": (1, False),
    "data.batch_size": (1, False),
    "data.eval_batch_size": (1, False),
    "data.workers": (0, False),
    "train.swad.n_converge": (1, False),
    "train.swad.n_tolerance": (1, False),
    "train.swad.bn_update_steps": (0, False),
}


# Floats as YAML 1.2 writes them: PyYAML (YAML 1.1) reads ``1e-3`` as text and wants ``1.0e-3``.
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that reads ``1e-3`` and ``5E+4`` as floats."""


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper that quotes text :class:`_Loader` would read as a float (``'1e5'``)."""


for _yaml_class in (_Loader, _Dumper):
    _yaml_class.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """A YAML document as config values: safe types only, and ``lr: 1e-3`` is the number 0.001, not text."""
    return yaml.load(text, Loader=_Loader)


def dump_yaml(data: Any) -> str:
    """``data`` as YAML that :func:`load_yaml` reads back unchanged (text such as ``'1e5'`` stays text)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False)


# Keys whose values are names or paths: dotted path -> whether null is allowed. A name that YAML reads as
# a number (run.name=1e3) must be quoted, and is refused naming the key rather than failing later.
TEXT_KEYS: dict[str, bool] = {
    "run.name": True,
    "run.dir": False,
    "model.name": False,
    "algorithm.name": False,
    "data.lodo_domain": True,
}
TEXT_LIST_KEYS: tuple[str, ...] = ("data.source_domains", "data.target_domains")


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key (dotted path) or file at fault."""


class UnknownConfigKeyError(ConfigError, KeyError):
    """A key :data:`DEFAULT_CONFIG` does not have (also a ``KeyError``, as a missing key is one)."""

    __str__ = ConfigError.__str__  # KeyError's would wrap the message in quotes


def _merge(base: dict[str, Any], update: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Merge ``update`` into ``base`` in place; free-form mappings are validated by their consumers."""
    for key, value in update.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            raise UnknownConfigKeyError(f"unknown config key {path!r}; known at this level: {sorted(base)}")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key {path!r} must be a mapping, got {value!r}")
            if path in FREE_FORM_KEYS:
                base[key] = {**base[key], **copy.deepcopy(dict(value))}
            else:
                _merge(base[key], value, path)
        else:
            base[key] = copy.deepcopy(value)
    return base


def parse_override(item: str) -> dict[str, Any]:
    """``"train.steps=50"`` → ``{"train": {"steps": 50}}`` (the value is parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.path=value")
    path, raw = item.split("=", 1)
    value: Any = load_yaml(raw) if raw != "" else None
    for key in reversed(path.strip().split(".")):
        value = {key: value}
    return value


def load_config(
    path: str | Path | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
) -> dict[str, Any]:
    """Defaults, then the YAML file, then overrides (strings ``a.b=v`` or a nested mapping); validated."""
    config = copy.deepcopy(DEFAULT_CONFIG)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {str(path)!r} does not exist")
        loaded = load_yaml(path.read_text()) or {}
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{path}: a config file must hold a mapping at the top level")
        _merge(config, loaded, "")
    if isinstance(overrides, Mapping):
        _merge(config, overrides, "")
    else:
        for item in overrides:
            _merge(config, parse_override(item), "")
    validate_config(config)
    rules = config["train"]["checkpoint_rules"]  # one order, so [lodo, source_val] resumes a [source_val, lodo] run
    config["train"]["checkpoint_rules"] = [rule for rule in CHECKPOINT_RULES if rule in rules]
    return config


def _lookup(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            raise ConfigError(f"the config has no key {dotted!r}; build it with load_config")
        node = node[key]
    return node


def validate_config(config: Mapping[str, Any]) -> None:
    """Check the trainer's numeric keys (:data:`INTEGER_KEYS`, ``data.real_fraction``, SWAD's), the kept
    checkpoints and the algorithm.

    The algorithm must be known and its ``hparams`` valid for it (:func:`workbench.algorithms.resolve_hparams`);
    an adopted run (``train.adopted``) has ``train.steps`` 0. Run before anything is written, so a bad value never
    leaves a half-made run directory behind.
    """
    adopted = _lookup(config, "train.adopted")
    _check_adopted(adopted, _lookup(config, "train.steps"))
    for dotted, (least, nullable) in INTEGER_KEYS.items():
        if dotted == "train.steps" and adopted is not None:
            continue  # 0, checked with train.adopted
        value = _lookup(config, dotted)
        if value is None and nullable:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            allowed = f"an integer >= {least}" + (" or null" if nullable else "")
            hint = (
                f" (write {int(value)})" if isinstance(value, float) and value.is_integer() and value >= least else ""
            )
            raise ConfigError(f"config key {dotted!r} must be {allowed}, got {value!r}{hint}")
    for dotted, nullable in TEXT_KEYS.items():
        _check_text(dotted, _lookup(config, dotted), nullable)
    for dotted in TEXT_LIST_KEYS:
        values = _lookup(config, dotted)
        if values is not None and not isinstance(values, list):
            raise ConfigError(f"config key {dotted!r} must be a list of names, got {values!r}")
        for value in values or ():
            _check_text(dotted, value, nullable=False)
    fraction = _lookup(config, "data.real_fraction")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise ConfigError(f"config key 'data.real_fraction' must be a number in [0, 1), got {fraction!r}")
    _validate_checkpoint_rules(config)
    if not isinstance(_lookup(config, "train.swad.enabled"), bool):
        raise ConfigError(
            f"config key 'train.swad.enabled' must be true or false, got {_lookup(config, 'train.swad.enabled')!r}"
        )
    ratio = _lookup(config, "train.swad.tolerance_ratio")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio < float("inf"):
        raise ConfigError(f"config key 'train.swad.tolerance_ratio' must be a finite number >= 0, got {ratio!r}")
    pretrained = _lookup(config, "model.pretrained")
    if not isinstance(pretrained, (bool, str)):
        raise ConfigError(
            f"config key 'model.pretrained' must be false, true (timm's weights) or a weights file, got {pretrained!r}"
        )
    _check_model(_lookup(config, "model.name"), _lookup(config, "model.kwargs"))
    _check_device(_lookup(config, "train.device"))
    name = _lookup(config, "algorithm.name")
    try:
        algorithm_class(name)
    except KeyError as exc:
        raise ConfigError(f"config key 'algorithm.name': {exc.args[0]}") from exc
    try:
        resolve_hparams(name, _lookup(config, "algorithm.hparams"))
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"config key 'algorithm.hparams': {exc.args[0]}") from exc


ADOPTED_KEYS = ("weights", "sha256")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _check_adopted(adopted: Any, steps: Any) -> None:
    """``train.adopted``: null, or ``{weights: <file>, sha256: <64 hex digits>}`` with ``train.steps`` 0 (no step
    was trained here)."""
    if adopted is None:
        return
    key = "config key 'train.adopted'"
    if not isinstance(adopted, Mapping) or sorted(adopted) != sorted(ADOPTED_KEYS):
        raise ConfigError(
            f"{key} must be null or a mapping with exactly the keys {list(ADOPTED_KEYS)}, got {adopted!r}"
        )
    if not isinstance(adopted["weights"], str):
        raise ConfigError(f"{key}: 'weights' must be the adopted weights file's path, got {adopted['weights']!r}")
    if not isinstance(adopted["sha256"], str) or not _SHA256.match(adopted["sha256"]):
        raise ConfigError(f"{key}: 'sha256' must be 64 lower-case hexadecimal digits, got {adopted['sha256']!r}")
    if isinstance(steps, bool) or steps != 0:
        raise ConfigError(
            f"config key 'train.steps' must be 0 for an adopted run (train.adopted is set: it was "
            f"trained elsewhere), got {steps!r}"
        )


def _check_model(name: str, kwargs: Mapping[str, Any]) -> None:
    """``model.name`` must be a timm model and ``model.kwargs`` arguments it takes (built on the meta device)."""
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f"; did you mean {close}?" if close else " (timm.list_models() lists them)"
        raise ConfigError(f"config key 'model.name': unknown timm model {name!r}{hint}")
    try:
        _build_on_meta(name, json.dumps(kwargs, sort_keys=True, default=str))
    except (TypeError, ValueError, AssertionError) as exc:
        raise ConfigError(
            f"config key 'model.kwargs': timm model {name!r} does not accept {dict(kwargs)!r} "
            f"({type(exc).__name__}: {exc})"
        ) from exc


@functools.lru_cache(maxsize=64)
def _build_on_meta(name: str, kwargs_json: str) -> None:
    """Build a timm model without allocating weights, to check its arguments (cached per name and arguments)."""
    with torch.device("meta"):
        timm.create_model(name, pretrained=False, num_classes=2, **json.loads(kwargs_json))


def _check_device(value: Any) -> None:
    """``train.device``: ``auto`` or a device name torch understands (its existence is checked at training)."""
    if value == "auto":
        return
    try:
        torch.device(value)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"config key 'train.device': {value!r} is not a device (use auto, cpu, cuda or cuda:N)"
        ) from exc


def _check_text(dotted: str, value: Any, nullable: bool) -> None:
    if (value is None and nullable) or isinstance(value, str):
        return
    raise ConfigError(
        f"config key {dotted!r} must be text{' or null' if nullable else ''}, got {value!r}; "
        f"quote a name that YAML reads as a number or true/false, e.g. {dotted}=\"'1e3'\""
    )


def _validate_checkpoint_rules(config: Mapping[str, Any]) -> None:
    """``train.checkpoint_rules``: distinct names from :data:`CHECKPOINT_RULES`, source_val included, each usable."""
    rules = _lookup(config, "train.checkpoint_rules")
    key = "config key 'train.checkpoint_rules'"
    if not isinstance(rules, list) or not all(isinstance(rule, str) for rule in rules):
        raise ConfigError(f"{key} must be a list of rule names, got {rules!r}")
    unknown = [rule for rule in rules if rule not in CHECKPOINT_RULES]
    if unknown:
        raise ConfigError(f"{key}: unknown rule(s) {unknown}; choose from {list(CHECKPOINT_RULES)}")
    if len(set(rules)) != len(rules) or "source_val" not in rules:
        raise ConfigError(
            f"{key} must name each rule once and include 'source_val' "
            f"(the selection behind predictions.csv), got {rules!r}"
        )


def check_checkpoint_rules_usable(config: Mapping[str, Any]) -> None:
    """Refuse kept rules that a training run could never score: ``lodo`` without ``data.lodo_domain``,
    ``oracle`` without target domains. Checked before training, not when a config loads, so a trained
    run can still be evaluated on other data (``eval --set data.lodo_domain=null ...``)."""
    rules, key = _lookup(config, "train.checkpoint_rules"), "config key 'train.checkpoint_rules'"
    if "lodo" in rules and not _lookup(config, "data.lodo_domain"):
        raise ConfigError(f"{key}: 'lodo' needs a held-out validation domain in 'data.lodo_domain'")
    if "oracle" in rules and not _lookup(config, "data.target_domains"):
        raise ConfigError(f"{key}: 'oracle' needs target domains in 'data.target_domains'")


def resolve_device(name: str) -> torch.device:
    """``train.device``: ``auto`` is CUDA when there is one, else the CPU; a CUDA device must exist here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            have = f"{count} CUDA device(s)" if count else "no CUDA device"
            raise ConfigError(
                f"config key 'train.device': {name!r} does not exist on this machine ({have}); use auto or cpu"
            )
    return device
