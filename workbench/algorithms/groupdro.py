"""GroupDRO — group distributionally robust optimisation (Sagawa, Koh, Hashimoto & Liang, ICLR 2020,
Algorithm 1), with the source domains as groups, as DomainBed's ``GroupDRO``.

Update (DomainBed's): one forward pass per domain, R_k = CE(f(x_k), y_k); the domain weights q (one per
domain, ones at the start, a registered buffer so checkpoints carry it) take an exponentiated-gradient
ascent step q_k ← q_k · exp(η R_k) with the risks detached, then q ← q / Σ_k q_k; the model descends
loss = Σ_k q_k R_k with the new q. The weights shift towards the domains with the highest risk.

Hyper-parameters (DomainBed's default): ``groupdro_eta`` [1e-2] (η). Statistics: ``loss`` (Σ_k q_k R_k).
The number of domains must be known when the algorithm is built (``num_domains``); DomainBed sizes q
at the first update instead. q is kept in the parameters' precision (at least float32).

BatchNorm: DomainBed's ResNet freezes BN; here BN trains, and each domain's pass normalises with that
domain's batch statistics and updates the running statistics, in domain order.
Distributed training: nothing is reduced beyond the gradients (averaged once per optimizer step): each
process updates its own q from the risks of its own shard, so q stays per process.
Capturable: the update is tensor operations only (q is updated in place on the device).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from workbench.algorithms.base import Algorithm, DomainBatches
from workbench.algorithms.hparams import number
from workbench.algorithms.registry import register_algorithm


@register_algorithm("groupdro")
class GroupDRO(Algorithm):
    """Descend the q-weighted domain risks after an exponentiated-gradient step on q."""

    family = "invariance"
    capturable = True
    HPARAMS = {"groupdro_eta": number(1e-2, "step size η of the exponentiated-gradient ascent on the domain weights")}

    def __init__(
        self, model: nn.Module, hparams: Mapping[str, Any] | None = None, num_domains: int | None = None
    ) -> None:
        if num_domains is None:
            raise ValueError("groupdro keeps one weight per source domain: build it with num_domains=K")
        super().__init__(model, hparams, num_domains)
        reference = self.vector.params[0]
        dtype = torch.promote_types(reference.dtype, torch.float32)
        self.register_buffer("q", torch.ones(num_domains, dtype=dtype, device=reference.device))

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        losses = torch.stack([self.loss(x, y) for x, y in minibatches])
        with torch.no_grad():
            self.q.mul_(torch.exp(self.hparams["groupdro_eta"] * losses))
            self.q.div_(self.q.sum())
        loss = torch.dot(losses, self.q)
        self.descend(loss)
        return {"loss": loss.detach()}
