"""Mixup across domains — inter-domain mixup (Xu et al., AAAI 2020; Yan et al., 2020), as DomainBed's ``Mixup``.

Update (DomainBed's): a random permutation π of the K domains pairs domain π(i) with π(i + 1 mod K),
both batches cut to the smaller size n; each pair gets λ_i ~ Beta(α, α) and one forward pass on the
mixed images x̃ = λ_i x_π(i) + (1 − λ_i) x_π(i+1);

    loss = (1/K) Σ_i [λ_i CE(f(x̃), y_π(i)) + (1 − λ_i) CE(f(x̃), y_π(i+1))]

Hyper-parameter (DomainBed's default): ``mixup_alpha`` [0.2] (α > 0). Statistics: ``loss``.

Random draws: π = ``torch.randperm(K)``, then the K mixing weights in one call
``torch.distributions.Beta(α, α).sample((K,))`` (float32), both from torch's global generator before
any forward pass, so that checkpoints (which save that generator) resume bit for bit and dropout in
the passes does not change the draws. DomainBed draws π the same way but each λ from numpy's global
generator (``np.random.beta``, float64); the distribution is the same, the numbers are not.
BatchNorm: DomainBed's ResNet freezes BN; here BN trains, and each pair's pass on the mixed images
normalises with their batch statistics and updates the running statistics, in pair order.
Distributed training: nothing is reduced beyond the gradients (averaged once per optimizer step); each
process draws π and λ from its own global generator (the trainer seeds every rank alike).
Not capturable: the pairing is decided on the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workbench.algorithms.base import Algorithm, DomainBatches
from workbench.algorithms.hparams import number
from workbench.algorithms.registry import register_algorithm


def mixing_draws(num_domains: int, alpha: float) -> tuple[list[int], list[float]]:
    """The domain permutation π and one mixing weight λ ~ Beta(α, α) per pair, from torch's global generator."""
    order = torch.randperm(num_domains).tolist()
    weights = torch.distributions.Beta(alpha, alpha).sample((num_domains,)).tolist()
    return order, weights


@register_algorithm("mixup")
class Mixup(Algorithm):
    """Risk on Beta-weighted mixtures of randomly paired domain batches."""

    family = "invariance"
    HPARAMS = {"mixup_alpha": number(0.2, "concentration α of the Beta(α, α) mixing weight (> 0)")}

    def __init__(
        self, model: nn.Module, hparams: Mapping[str, Any] | None = None, num_domains: int | None = None
    ) -> None:
        super().__init__(model, hparams, num_domains)
        if self.hparams["mixup_alpha"] <= 0:
            raise ValueError(f"hyper-parameter mixup_alpha={self.hparams['mixup_alpha']!r} must be > 0")

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        k = len(minibatches)
        order, weights = mixing_draws(k, self.hparams["mixup_alpha"])
        terms = []
        for i, lam in enumerate(weights):
            (x_i, y_i), (x_j, y_j) = minibatches[order[i]], minibatches[order[(i + 1) % k]]
            n = min(len(x_i), len(x_j))
            logits = self.logits(lam * x_i[:n] + (1 - lam) * x_j[:n])
            terms.append(lam * F.cross_entropy(logits, y_i[:n]) + (1 - lam) * F.cross_entropy(logits, y_j[:n]))
        loss = torch.stack(terms).sum() / k
        self.descend(loss)
        return {"loss": loss.detach()}
