"""Risk penalties that are switched on after a warm-up, as DomainBed runs IRM and V-REx.

One forward pass of the concatenated K batches gives every domain's logits (its slice of the pooled
output); a subclass turns them into the mean risk ``nll`` and a ``penalty``. The update minimises
``nll + w · penalty`` with ``w = 1`` for the first ``*_penalty_anneal_iters`` updates and ``w = λ``
from then on. At the update where λ switches on the base optimizer is replaced by a fresh one (made
with :meth:`Algorithm.make_optimizer`, so it still averages gradients in distributed training) before
that update's gradient is applied: DomainBed resets Adam there because its moment estimates do not
suit the sudden jump in gradient magnitude. The fresh optimizer is the configured base optimizer
(with ``optimizer: sgd`` the reset clears the momentum buffers); DomainBed only ever uses Adam.

The update counter is a host-side integer kept in :meth:`extra_state` (so checkpoints carry it); the
schedule and the optimizer replacement make these updates not capturable in a CUDA graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from workbench.algorithms.base import Algorithm, DomainBatches


class AnnealedPenalty(Algorithm):
    """``nll + w · penalty`` from one pooled forward pass, ``w`` annealed from 1 to λ (see the module docstring).

    Subclasses name their two hyper-parameters (``LAMBDA``, ``ANNEAL_ITERS``) and implement :meth:`risks`.
    """

    family = "invariance"
    LAMBDA: ClassVar[str]
    ANNEAL_ITERS: ClassVar[str]

    def __init__(
        self, model: nn.Module, hparams: Mapping[str, Any] | None = None, num_domains: int | None = None
    ) -> None:
        super().__init__(model, hparams, num_domains)
        self.update_count = 0

    def risks(self, logits: list[torch.Tensor], labels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(nll, penalty)`` from every domain's logits and labels (domain order)."""
        raise NotImplementedError

    def penalty_weight(self) -> float:
        """w: 1 during the warm-up, λ from update ``ANNEAL_ITERS`` on (counting from 0)."""
        return self.hparams[self.LAMBDA] if self.update_count >= self.hparams[self.ANNEAL_ITERS] else 1.0

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        x, y = self.pooled(minibatches)
        sizes = [len(x_k) for x_k, _ in minibatches]
        nll, penalty = self.risks(list(self.logits(x).split(sizes)), list(y.split(sizes)))
        loss = nll + self.penalty_weight() * penalty
        if self.update_count == self.hparams[self.ANNEAL_ITERS]:
            self.optimizer = self.make_optimizer(self.vector.params)
        self.descend(loss)
        self.update_count += 1
        return {"loss": loss.detach(), "nll": nll.detach(), "penalty": penalty.detach()}

    def extra_state(self) -> dict[str, Any]:
        return {"update_count": self.update_count}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.update_count = int(state["update_count"])
