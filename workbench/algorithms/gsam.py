"""GSAM — surrogate-gap guided sharpness-aware minimisation (Zhuang et al., ICLR 2022).

Update on the pooled batch, as the authors' ``gsam.py`` computes it: g = ∇L(θ); ε = ρ g/(‖g‖ + 1e-12);
g_p = ∇L(θ + ε) (BatchNorm running statistics frozen); the part of g orthogonal to g_p,
g_⊥ = g − cos(g, g_p) ‖g‖ g_p/(‖g_p‖ + 1e-12) with cos = ⟨g, g_p⟩/(‖g‖‖g_p‖ + 1e-12); G = g_p − α g_⊥;
θ restored exactly; the base optimizer steps with G. The reference schedules ρ in proportion to the
learning rate; with the constant learning rate used here that is a constant ρ. Defaults ρ = 0.04,
α = 0.01: the paper's ResNet setting (its Table 4).
"""

from __future__ import annotations

import torch

from workbench.algorithms.hparams import number
from workbench.algorithms.registry import register_algorithm
from workbench.algorithms.sam import SAM

EPS = 1e-12


@register_algorithm("gsam")
class GSAM(SAM):
    """ε = ρ g/‖g‖; step with G = ∇L(θ + ε) − α × (the part of g orthogonal to it)."""

    HPARAMS = {
        "rho": number(0.04, "radius ρ of the weight perturbation"),
        "alpha": number(0.01, "weight α of the orthogonal component of the clean gradient that is subtracted"),
    }

    def combine(self, g: torch.Tensor, g_perturbed: torch.Tensor) -> torch.Tensor:
        g_norm, p_norm = torch.linalg.vector_norm(g), torch.linalg.vector_norm(g_perturbed)
        cos = torch.dot(g, g_perturbed) / (g_norm * p_norm + EPS)
        vertical = torch.addcmul(g, g_perturbed, cos * g_norm / (p_norm + EPS), value=-1.0, out=g)
        return g_perturbed.add_(vertical, alpha=-self.hparams["alpha"])
