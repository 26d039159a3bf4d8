"""RoGA — Robust Gradient Alignment (Qiu, Jiang & Tan, ICME 2025), reconstruction R1 of DESIGN.md §3.

Each source domain's weights are perturbed to its ascending point, shifted against the ERM gradient
(ε_k = ρ g_k/‖g_k‖ − α g); the gradients found there are averaged and combined with the ERM gradient.
To first order, descending L_k(θ + ε_k) lowers each domain's worst-case loss and raises the agreement
⟨∇L_k(θ + ρ ĝ_k), g⟩ between every domain's perturbed gradient and the ERM gradient — alignment
without an extra regulariser or module.
"""

from __future__ import annotations

import torch

from workbench.algorithms.base import Algorithm, DomainBatches, as_floats
from workbench.algorithms.batchnorm import frozen_running_stats
from workbench.algorithms.param_vector import cosine, unit


class RoGA(Algorithm):
    """Per-domain ascent towards each domain's ascending point, aligned with the ERM gradient."""

    name = "roga"

    def ascent_directions(self, domain_grads: list[torch.Tensor], g: torch.Tensor) -> list[torch.Tensor]:
        """ε_k for every domain (``ascent="shared"``: one ε from the sum of unit domain gradients)."""
        rho, alpha = self.hparams["rho"], self.hparams["alpha"]
        if self.hparams["ascent"] == "shared":
            shared = torch.stack([unit(g_k) for g_k in domain_grads]).sum(0)
            epsilon = rho * unit(shared) - alpha * g
            return [epsilon] * len(domain_grads)
        return [rho * unit(g_k) - alpha * g for g_k in domain_grads]

    def update(self, minibatches: DomainBatches) -> dict[str, float]:
        if len(minibatches) == 0:
            raise ValueError("update() needs at least one domain batch")
        losses, domain_grads = [], []
        for x, y in minibatches:
            loss = self.loss(x, y)
            losses.append(loss.detach())
            domain_grads.append(self.vector.grad(loss))
        g = torch.stack(domain_grads).mean(0)

        theta = self.vector.snapshot()
        perturbed_sum = torch.zeros_like(g)
        perturbed_losses, perturbed_cos = [], []
        with frozen_running_stats(self.model):
            for (x, y), epsilon in zip(minibatches, self.ascent_directions(domain_grads, g)):
                self.vector.add_(epsilon)
                loss_p = self.loss(x, y)
                g_p = self.vector.grad(loss_p)
                self.vector.copy_(theta)
                perturbed_sum += g_p
                perturbed_losses.append(loss_p.detach())
                perturbed_cos.append(cosine(g_p, g))
        perturbed_mean = perturbed_sum / len(minibatches)
        if self.hparams["combine"] == "with_erm":
            direction = 0.5 * (g + perturbed_mean)
        else:
            direction = perturbed_mean
        self.step_with(direction)
        return as_floats({
            "loss": torch.stack(losses).mean(),
            "loss_perturbed": torch.stack(perturbed_losses).mean(),
            "grad_norm": torch.linalg.vector_norm(g),
            "cos_clean_mean": torch.stack([cosine(g_k, g) for g_k in domain_grads]).mean(),
            "cos_perturbed_mean": torch.stack(perturbed_cos).mean(),
        })
