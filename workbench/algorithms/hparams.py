"""Hyper-parameter specifications: what each key means, its default and the values it accepts.

Every algorithm declares the keys of its method (``Algorithm.HPARAMS``); the keys below are shared by
all of them. Besides the base optimizer's keys, three switches choose how an update runs; none
changes the update itself:

- ``precision``: ``"auto"`` (bf16 autocast on CUDA, fp32 elsewhere), ``"bf16"`` (autocast),
  ``"fp32"`` (float32, PyTorch's global TF32 settings untouched) or ``"tf32"`` (float32 storage with
  TF32 tensor-core convolutions and matrix products during the algorithm's passes).
- ``cuda_graph`` [True]: on CUDA, capture the whole update (passes, arithmetic, optimizer step) in one
  CUDA graph after a few eager warm-up steps and replay it; ignored elsewhere and by algorithms that
  do not declare themselves capturable. Changing input shapes, train/eval mode, optimizer
  hyper-parameters or parameter storage falls back to eager steps and captures again.
- ``channels_last`` [False]: store 4-D weights and inputs in NHWC order (faster convolutions on
  tensor-core GPUs; see docs/performance.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HParam:
    """One hyper-parameter: its default, its kind and the values it accepts.

    ``kind`` is ``"number"`` (a finite float in ``[low, high]``, or ``[low, high)`` when
    ``high_open``), ``"integer"`` (an int ``>= low``), ``"choice"`` (one of ``choices``) or
    ``"switch"`` (true or false).
    """

    default: Any
    kind: str
    doc: str
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    choices: tuple[str, ...] = ()

    def check(self, key: str, value: Any) -> Any:
        """``value`` in its canonical type (ints become floats for numbers); ``ValueError`` naming ``key`` otherwise."""
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"hyper-parameter {key}={value!r} is not one of {list(self.choices)}")
            return value
        if self.kind == "switch":
            if not isinstance(value, bool):
                raise ValueError(f"hyper-parameter {key}={value!r} must be true or false")
            return value
        if self.kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int) or (self.low is not None and value < self.low):
                raise ValueError(f"hyper-parameter {key}={value!r} must be an integer >= {self.low}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"hyper-parameter {key}={value!r} must be a finite number{self._range()}")
        if (self.low is not None and value < self.low) or (
            self.high is not None and (value >= self.high if self.high_open else value > self.high)
        ):
            raise ValueError(f"hyper-parameter {key}={value!r} must be a number{self._range()}")
        return float(value)

    def _range(self) -> str:
        if self.low is None and self.high is None:
            return ""
        if self.high is None:
            return f" >= {self.low:g}"
        return f" in [{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def describe(self) -> str:
        """The accepted values, for tables and error messages (``>= 0``, ``one of [...]``, ...)."""
        if self.kind == "choice":
            return ", ".join(self.choices)
        if self.kind == "switch":
            return "true, false"
        if self.kind == "integer":
            return f"integer >= {self.low}"
        return f"number{self._range()}"


def number(default: float, doc: str, low: float = 0.0, high: float | None = None, high_open: bool = False) -> HParam:
    """A finite real hyper-parameter (non-negative unless ``low`` says otherwise)."""
    return HParam(float(default), "number", doc, low=low, high=high, high_open=high_open)


def integer(default: int, doc: str, low: int = 0) -> HParam:
    """A whole-number hyper-parameter ``>= low``."""
    return HParam(int(default), "integer", doc, low=low)


def choice(default: str, doc: str, *choices: str) -> HParam:
    """A hyper-parameter that takes one of a few names."""
    return HParam(default, "choice", doc, choices=tuple(choices))


def switch(default: bool, doc: str) -> HParam:
    """A true/false hyper-parameter."""
    return HParam(bool(default), "switch", doc)


# Shared by every algorithm: the base optimizer (weight decay lives here, never in a perturbation) and
# the execution switches of the module docstring.
COMMON_HPARAMS: dict[str, HParam] = {
    "optimizer": choice("adam", "base optimizer", "adam", "sgd"),
    "lr": number(2e-4, "learning rate of the base optimizer"),
    "weight_decay": number(5e-4, "L2 weight decay inside the base optimizer"),
    "momentum": number(0.9, "SGD momentum (optimizer: sgd)"),
    "precision": choice("auto", "numeric precision of the passes", "auto", "bf16", "fp32", "tf32"),
    "cuda_graph": switch(True, "capture the whole update in a CUDA graph (capturable algorithms, CUDA only)"),
    "channels_last": switch(False, "NHWC weights and inputs"),
}


def resolve(spec: Mapping[str, HParam], hparams: Mapping[str, Any] | None, owner: str) -> dict[str, Any]:
    """Defaults of ``spec`` updated by ``hparams``; every value checked, every unknown key refused.

    ``owner`` names the algorithm in the errors, which list the keys it accepts.
    """
    given = dict(hparams or {})
    unknown = [key for key in given if key not in spec]
    if unknown:
        raise KeyError(
            f"unknown hyper-parameter {unknown[0]!r} for algorithm {owner!r}; its hyper-parameters: {sorted(spec)}"
        )
    return {key: param.check(key, given.get(key, param.default)) for key, param in spec.items()}
