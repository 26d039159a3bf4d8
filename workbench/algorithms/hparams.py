"""Hyper-parameters shared by every algorithm (DESIGN.md §2), with defaults and validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULT_HPARAMS: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 2e-4,
    "weight_decay": 5e-4,
    "momentum": 0.9,
    "rho": 0.05,
    "alpha": 0.001,
    "ascent": "per_domain",
    "combine": "with_erm",
    "precision": "auto",
}

CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adam", "sgd"),
    "ascent": ("per_domain", "shared"),
    "combine": ("with_erm", "perturbed_only"),
    "precision": ("auto", "bf16", "fp32"),
}

NON_NEGATIVE = ("lr", "weight_decay", "momentum", "rho", "alpha")


def resolve_hparams(hparams: Mapping[str, Any] | None) -> dict[str, Any]:
    """Fill in defaults and reject unknown keys or invalid values, naming the offending key."""
    resolved = dict(DEFAULT_HPARAMS)
    for key, value in (hparams or {}).items():
        if key not in DEFAULT_HPARAMS:
            raise KeyError(f"unknown hyper-parameter {key!r}; known: {sorted(DEFAULT_HPARAMS)}")
        resolved[key] = value
    for key, allowed in CHOICES.items():
        if resolved[key] not in allowed:
            raise ValueError(f"hyper-parameter {key}={resolved[key]!r} is not one of {list(allowed)}")
    for key in NON_NEGATIVE:
        value = resolved[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"hyper-parameter {key}={value!r} must be a non-negative number")
        resolved[key] = float(value)
    return resolved
