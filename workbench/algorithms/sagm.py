"""SAGM — sharpness-aware gradient matching (Wang, Zhang, Lei & Zhang, CVPR 2023).

Update on the pooled batch: g = ∇L(θ); ε = ρ g/(‖g‖ + 1e-12) − α g; G = ½ (g + ∇L(θ + ε)) (BatchNorm
running statistics frozen in the perturbed pass); θ restored exactly; the base optimizer steps with G.
Defaults ρ = 0.05, α = 0.001 are the authors' (``hparams_registry.py`` of their DomainBed fork).
"""

from __future__ import annotations

import torch

from workbench.algorithms.hparams import number
from workbench.algorithms.registry import register_algorithm
from workbench.algorithms.sam import SAM


@register_algorithm("sagm")
class SAGM(SAM):
    """ε = ρ g/‖g‖ − α g on the pooled batch; step with G = ½ (g + ∇L(θ + ε))."""

    HPARAMS = {
        "rho": number(0.05, "radius ρ of the weight perturbation"),
        "alpha": number(0.001, "step α against the clean gradient in the perturbation"),
    }

    def perturbation(self, g: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return super().perturbation(g, theta).add_(g, alpha=-self.hparams["alpha"])

    def combine(self, g: torch.Tensor, g_perturbed: torch.Tensor) -> torch.Tensor:
        return g_perturbed.add_(g).mul_(0.5)
