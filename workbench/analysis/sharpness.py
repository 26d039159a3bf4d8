"""ε-sharpness: how much the loss rises within a ρ-ball around θ (Foret et al., 2021; Keskar et al., 2017).

``epsilon_sharpness`` = L(θ + ε*) − L(θ) with ε* the (approximate) maximiser of the loss over
‖ε‖ ≤ ρ. One step tries SAM's first-order ascent ε = ρ g/‖g‖; more steps run projected,
normalised gradient ascent. The highest loss seen is kept, θ itself (ε = 0) included, so the estimate
is never negative and never decreases with the number of steps. Losses are evaluated in eval mode;
weights and modes are restored exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn

from workbench.algorithms.param_vector import ParamVector, unit
from workbench.analysis.gradients import (
    DomainBatches,
    Mode,
    batch_loss,
    check_batches,
    domain_names_for,
    preserved_state,
)


def _project(epsilon: torch.Tensor, rho: float) -> torch.Tensor:
    norm = float(torch.linalg.vector_norm(epsilon))
    return epsilon if norm <= rho else epsilon * (rho / norm)


def _ascent_losses(
    model: nn.Module, vector: ParamVector, batch: tuple[torch.Tensor, torch.Tensor], rhos: Sequence[float], steps: int
) -> tuple[float, list[float]]:
    """L(θ) and, for every ρ, the highest loss at θ and the iterates of ``steps`` projected ascent steps."""
    x, y = batch
    theta = vector.snapshot()
    with torch.enable_grad():
        loss = batch_loss(model, x, y)
        g0 = vector.grad(loss)
    clean = float(loss.detach())
    highest = []
    for rho in rhos:
        epsilon = torch.zeros_like(theta)
        g, best = g0, clean
        for step in range(steps):
            epsilon = _project(epsilon + rho * unit(g), rho)
            vector.copy_(theta + epsilon)
            with torch.enable_grad():
                loss = batch_loss(model, x, y)
                if step + 1 < steps:
                    g = vector.grad(loss)
            best = max(best, float(loss.detach()))
        vector.copy_(theta)
        highest.append(best)
    return clean, highest


def _check_rhos(rhos: Sequence[float], steps: int) -> None:
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    for rho in rhos:
        if rho < 0:
            raise ValueError(f"rho={rho} must be non-negative")


def epsilon_sharpness(
    model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], rho: float, steps: int = 1, mode: Mode = "eval"
) -> float:
    """max_{‖ε‖≤ρ} L(θ + ε) − L(θ), estimated by ``steps`` normalised ascent steps of size ρ.

    ``steps=1`` gives max(L(θ + ρ g/‖g‖), L(θ)) − L(θ): SAM's ascent point, or 0 where that point
    lowers the loss (ε = 0 is in the ball; at small ρ the ascent point wins). For ``steps > 1`` each
    step adds ρ ĝ at the current point and projects back onto the ρ-ball; the highest loss over θ and
    the iterates is used.
    """
    _check_rhos([rho], steps)
    check_batches([batch])
    with preserved_state(model, mode):
        clean, (highest,) = _ascent_losses(model, ParamVector(model), batch, [rho], steps)
    return highest - clean


def sharpness_per_domain(
    model: nn.Module,
    domain_batches: DomainBatches,
    rhos: Sequence[float],
    steps: int = 1,
    mode: Mode = "eval",
    domain_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """ε-sharpness of every domain's loss on a ρ grid.

    Columns: ``domain``, ``rho``, ``sharpness``, ``loss`` (L_k(θ)) and ``loss_perturbed`` (the
    highest L_k found in the ρ-ball, = ``loss`` + ``sharpness``); the clean gradient is computed once per
    domain and reused for all ρ.
    """
    _check_rhos(rhos, steps)
    check_batches(domain_batches)
    names = domain_names_for(domain_batches, domain_names)
    rows = []
    with preserved_state(model, mode):
        vector = ParamVector(model)
        for name, batch in zip(names, domain_batches):
            clean, highest = _ascent_losses(model, vector, batch, rhos, steps)
            rows += [
                {"domain": name, "rho": float(rho), "sharpness": top - clean, "loss": clean, "loss_perturbed": top}
                for rho, top in zip(rhos, highest)
            ]
    return pd.DataFrame(rows, columns=["domain", "rho", "sharpness", "loss", "loss_perturbed"])
