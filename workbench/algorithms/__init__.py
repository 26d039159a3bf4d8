"""Training algorithms behind one interface: ``build_algorithm(name, model, hparams, num_domains=K)``.

Each algorithm is one module of this package holding its class, its hyper-parameters and a docstring
naming its paper and the update as implemented; ``@register_algorithm`` adds it to
:data:`ALGORITHMS`. Every module of the package is imported here, so a new algorithm needs no other
file to be found.
"""

from __future__ import annotations

import importlib
import pkgutil

from workbench.algorithms.base import Algorithm, as_floats, build_optimizer
from workbench.algorithms.batches import DomainBatches, check_domain_batches
from workbench.algorithms.hparams import COMMON_HPARAMS, HParam
from workbench.algorithms.registry import (
    ALGORITHMS,
    algorithm_class,
    build_algorithm,
    default_hparams,
    hparam_spec,
    register_algorithm,
    resolve_hparams,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "COMMON_HPARAMS",
    "DomainBatches",
    "HParam",
    "algorithm_class",
    "as_floats",
    "build_algorithm",
    "build_optimizer",
    "check_domain_batches",
    "default_hparams",
    "hparam_spec",
    "register_algorithm",
    "resolve_hparams",
]
