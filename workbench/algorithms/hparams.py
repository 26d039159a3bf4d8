"""Hyper-parameters shared by every algorithm (docs/method.md), with defaults and validation.

Besides the method's keys, four switches choose how an update runs; none changes the update itself:

- ``precision``: ``"auto"`` (bf16 autocast on CUDA, fp32 elsewhere), ``"bf16"`` (autocast),
  ``"fp32"`` (float32, PyTorch's global TF32 settings untouched) or ``"tf32"`` (float32 storage with
  TF32 tensor-core convolutions and matrix products during the algorithm's passes).
- ``cuda_graph`` [True]: on CUDA, capture the whole update (passes, ascent arithmetic, optimizer step)
  in one CUDA graph after a few eager warm-up steps and replay it; ignored elsewhere. Changing input
  shapes, train/eval mode, optimizer hyper-parameters or parameter storage falls back to eager steps
  and captures again.
- ``channels_last`` [False]: store 4-D weights and inputs in NHWC order (faster convolutions on
  tensor-core GPUs; see docs/performance.md).
- ``domain_passes`` ["sequential"]: RoGA's K per-domain passes run one after the other on the
  module, or ``"concurrent"``-ly as independent functional passes (one CUDA stream per domain,
  private BN buffers merged afterwards). ``"concurrent"`` is opt-in until it has been timed and
  checked on the production backbones on a GPU (docs/performance.md).
"""

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
    "cuda_graph": True,
    "channels_last": False,
    "domain_passes": "sequential",
}

CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adam", "sgd"),
    "ascent": ("per_domain", "shared"),
    "combine": ("with_erm", "perturbed_only"),
    "precision": ("auto", "bf16", "fp32", "tf32"),
    "domain_passes": ("sequential", "concurrent"),
}

NON_NEGATIVE = ("lr", "weight_decay", "momentum", "rho", "alpha")

SWITCHES = ("cuda_graph", "channels_last")


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
    for key in SWITCHES:
        if not isinstance(resolved[key], bool):
            raise ValueError(f"hyper-parameter {key}={resolved[key]!r} must be true or false")
    return resolved
