"""SAM — sharpness-aware minimisation (Foret, Kleiner, Mobahi & Neyshabur, ICLR 2021).

Update on the pooled batch: g = ∇L(θ); ε = ρ g/(‖g‖ + 1e-12); G = ∇L(θ + ε) (BatchNorm running
statistics frozen in the perturbed pass); θ restored exactly by copy; the base optimizer steps with G.
"""

from __future__ import annotations

import torch

from workbench.algorithms.base import Algorithm, DomainBatches
from workbench.algorithms.batchnorm import frozen_running_stats
from workbench.algorithms.hparams import number
from workbench.algorithms.registry import register_algorithm


@register_algorithm("sam")
class SAM(Algorithm):
    """ε = ρ g/‖g‖ on the pooled batch; step with G = ∇L(θ + ε)."""

    family = "flatness"
    capturable = True
    HPARAMS = {"rho": number(0.05, "radius ρ of the weight perturbation")}

    def perturbation(self, g: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """ε from the clean pooled gradient g at the flat weights θ (may be written into a buffer; g and θ
        are read only)."""
        return torch.mul(g, self.hparams["rho"] / (torch.linalg.vector_norm(g) + 1e-12), out=self.vector.buffer("eps"))

    def combine(self, g: torch.Tensor, g_perturbed: torch.Tensor) -> torch.Tensor:
        """The update direction G from the clean and the perturbed gradient (either may be overwritten)."""
        return g_perturbed

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        vector = self.vector
        x, y = self.pooled(minibatches)
        loss = self.loss(x, y)
        g = vector.grad_into(loss, vector.buffer("g"))
        grad_norm = torch.linalg.vector_norm(g)
        theta = vector.snapshot(vector.buffer("theta"))
        vector.add_(self.perturbation(g, theta))
        with frozen_running_stats(self.model):
            loss_perturbed = self.loss(x, y)
            g_perturbed = vector.grad_into(loss_perturbed, vector.buffer("g_perturbed"))
        vector.copy_(theta)
        self.step_with(self.combine(g, g_perturbed))
        return {"loss": loss.detach(), "loss_perturbed": loss_perturbed.detach(), "grad_norm": grad_norm}
