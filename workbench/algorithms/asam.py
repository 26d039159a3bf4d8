"""ASAM — adaptive sharpness-aware minimisation (Kwon, Kim, Park & Choi, ICML 2021).

Update on the pooled batch, as the authors' ``asam.py`` computes it: g = ∇L(θ); T = |θ| + η on the
entries of parameters whose name contains ``weight`` and 1 on all others (biases); ε = ρ T² g /
(‖T g‖ + 1e-16); G = ∇L(θ + ε); θ restored exactly by copy (the reference subtracts ε); the base
optimizer steps with G. Defaults ρ = 0.5, η = 0.01 are the reference's. Difference from the
reference: BatchNorm running statistics are frozen in the perturbed pass (its CIFAR example updates
them in both passes), as for every sharpness-aware method here.
"""

from __future__ import annotations

import torch

from workbench.algorithms.hparams import number
from workbench.algorithms.registry import register_algorithm
from workbench.algorithms.sam import SAM


@register_algorithm("asam")
class ASAM(SAM):
    """ε = ρ T²g/‖Tg‖ with T = |w| + η (weights only); step with G = ∇L(θ + ε)."""

    HPARAMS = {
        "rho": number(0.5, "radius ρ of the adaptive (scale-invariant) perturbation"),
        "eta": number(0.01, "η added to |w| in the normalisation operator T_w"),
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        unscaled = [
            torch.full((p.numel(),), "weight" not in name) for name, p in zip(self.vector.names, self.vector.params)
        ]
        self.register_buffer("_unscaled", torch.cat(unscaled).to(self.vector.params[0].device), persistent=False)

    def perturbation(self, g: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        t = torch.abs(theta, out=self.vector.buffer("t")).add_(self.hparams["eta"]).masked_fill_(self._unscaled, 1.0)
        eps = torch.mul(t, g, out=self.vector.buffer("eps"))  # T g
        scale = self.hparams["rho"] / (torch.linalg.vector_norm(eps) + 1e-16)
        return eps.mul_(t).mul_(scale)  # ρ T² g / (‖T g‖ + 1e-16)
