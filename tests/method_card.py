"""The method card's ascent points (docs/method.md), written out once for the algorithm and analysis tests.

Independent of workbench code: the tests compare the library against these formulas.
"""

from __future__ import annotations

import torch


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / (v.norm() + 1e-12)


def ascent_epsilons(grads: list[torch.Tensor], rho: float, alpha: float, ascent: str) -> list[torch.Tensor]:
    """RoGA's ε_k from the per-domain gradients g_k: ρ ĝ_k − α g, or one shared ρ ĝ_s/‖ĝ_s‖ − α g."""
    g = sum(grads) / len(grads)
    if ascent == "shared":
        return [rho * unit(sum(unit(gk) for gk in grads)) - alpha * g] * len(grads)
    return [rho * unit(gk) - alpha * g for gk in grads]
