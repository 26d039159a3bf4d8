"""Training algorithms behind one interface: ``build_algorithm(name, model, hparams)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from workbench.algorithms.base import Algorithm, DomainBatches, as_floats
from workbench.algorithms.erm import ERM
from workbench.algorithms.hparams import DEFAULT_HPARAMS, resolve_hparams
from workbench.algorithms.roga import RoGA
from workbench.algorithms.sam import SAGM, SAM

ALGORITHMS: dict[str, type[Algorithm]] = {cls.name: cls for cls in (ERM, SAM, SAGM, RoGA)}


def algorithm_class(name: str) -> type[Algorithm]:
    """The registered algorithm called ``name`` (any case); ``KeyError`` naming the known ones otherwise."""
    key = str(name).lower()
    if key not in ALGORITHMS:
        raise KeyError(f"unknown algorithm {name!r}; known: {sorted(ALGORITHMS)}")
    return ALGORITHMS[key]


def build_algorithm(name: str, model: nn.Module, hparams: Mapping[str, Any] | None = None) -> Algorithm:
    """Instantiate a registered algorithm by name (``"erm"``, ``"sam"``, ``"sagm"``, ``"roga"``)."""
    return algorithm_class(name)(model, hparams)


__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "DEFAULT_HPARAMS",
    "DomainBatches",
    "ERM",
    "RoGA",
    "SAGM",
    "SAM",
    "algorithm_class",
    "as_floats",
    "build_algorithm",
    "resolve_hparams",
]
