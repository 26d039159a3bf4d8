"""Sharpness-aware minimisation (Foret et al., 2021) and its surrogate-gap variant SAGM (Wang et al., 2023)."""

from __future__ import annotations

import torch

from workbench.algorithms.base import Algorithm, DomainBatches
from workbench.algorithms.batchnorm import frozen_running_stats
from workbench.algorithms.param_vector import unit


class SAM(Algorithm):
    """ε = ρ g/‖g‖ on the pooled batch; step with G = ∇L(θ + ε)."""

    name = "sam"

    def perturbation(self, g: torch.Tensor) -> torch.Tensor:
        return self.hparams["rho"] * unit(g)

    def combine(self, g: torch.Tensor, g_perturbed: torch.Tensor) -> torch.Tensor:
        return g_perturbed

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        x, y = self.pooled(minibatches)
        loss = self.loss(x, y)
        g = self.vector.grad(loss)
        theta = self.vector.snapshot()
        self.vector.add_(self.perturbation(g))
        with frozen_running_stats(self.model):
            loss_perturbed = self.loss(x, y)
            g_perturbed = self.vector.grad(loss_perturbed)
        self.vector.copy_(theta)
        self.step_with(self.combine(g, g_perturbed))
        return {
            "loss": loss.detach(),
            "loss_perturbed": loss_perturbed.detach(),
            "grad_norm": torch.linalg.vector_norm(g),
        }


class SAGM(SAM):
    """ε = ρ g/‖g‖ − α g on the pooled batch; step with G = ½ (g + ∇L(θ + ε))."""

    name = "sagm"

    def perturbation(self, g: torch.Tensor) -> torch.Tensor:
        return self.hparams["rho"] * unit(g) - self.hparams["alpha"] * g

    def combine(self, g: torch.Tensor, g_perturbed: torch.Tensor) -> torch.Tensor:
        return 0.5 * (g + g_perturbed)
