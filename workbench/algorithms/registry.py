"""The algorithm registry: names → classes, filled by ``@register_algorithm`` in each algorithm's module.

Everything that lists algorithms (config validation, CLI choices, notebooks, figures, benchmarks)
reads :data:`ALGORITHMS`; adding an algorithm is adding its module to this package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from torch import nn

from workbench.algorithms.hparams import COMMON_HPARAMS, HParam, resolve

if TYPE_CHECKING:
    from workbench.algorithms.base import Algorithm

ALGORITHMS: dict[str, type[Algorithm]] = {}

A = TypeVar("A", bound="type[Algorithm]")


def register_algorithm(name: str) -> Callable[[A], A]:
    """Class decorator: register an :class:`~workbench.algorithms.base.Algorithm` under ``name`` (lower case)."""
    if name != name.lower() or not name.isidentifier():
        raise ValueError(f"algorithm name {name!r} must be a lower-case identifier")

    def decorate(cls: A) -> A:
        if name in ALGORITHMS and ALGORITHMS[name] is not cls:
            raise ValueError(
                f"algorithm {name!r} is registered twice ({ALGORITHMS[name].__module__}, {cls.__module__})"
            )
        clashes = sorted(set(cls.HPARAMS) & set(COMMON_HPARAMS))
        if clashes:
            raise ValueError(f"algorithm {name!r} redefines the shared hyper-parameter(s) {clashes}")
        cls.name = name
        ALGORITHMS[name] = cls
        return cls

    return decorate


def algorithm_class(name: str) -> type[Algorithm]:
    """The registered algorithm called ``name`` (any case); ``KeyError`` naming the known ones otherwise."""
    key = str(name).lower()
    if key not in ALGORITHMS:
        raise KeyError(f"unknown algorithm {name!r}; known: {sorted(ALGORITHMS)}")
    return ALGORITHMS[key]


def hparam_spec(name: str) -> dict[str, HParam]:
    """Every hyper-parameter algorithm ``name`` accepts: the shared ones, then its own."""
    return {**COMMON_HPARAMS, **algorithm_class(name).HPARAMS}


def default_hparams(name: str) -> dict[str, Any]:
    """The defaults of every hyper-parameter of algorithm ``name``."""
    return {key: param.default for key, param in hparam_spec(name).items()}


def resolve_hparams(name: str, hparams: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``hparams`` of algorithm ``name`` with defaults filled in; unknown keys and bad values are refused.

    An unknown key raises ``KeyError`` naming it and listing the algorithm's keys; a bad value raises
    ``ValueError`` naming the key.
    """
    return resolve(hparam_spec(name), hparams, algorithm_class(name).name)


def build_algorithm(
    name: str, model: nn.Module, hparams: Mapping[str, Any] | None = None, num_domains: int | None = None
) -> Algorithm:
    """Instantiate the registered algorithm ``name`` around ``model``.

    Args:
        name: a key of :data:`ALGORITHMS` (any case).
        model: the network; returns logits ``[N, 2]``.
        hparams: the algorithm's hyper-parameters (:func:`resolve_hparams`); missing keys take defaults.
        num_domains: K, the number of per-domain batches every update receives (needed by algorithms
            that keep per-domain state; checked by every update when given).
    """
    return algorithm_class(name)(model, hparams, num_domains=num_domains)
