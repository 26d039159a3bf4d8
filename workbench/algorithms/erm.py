"""Empirical risk minimisation on the pooled source-domain batch."""

from __future__ import annotations

import torch

from workbench.algorithms.base import Algorithm, DomainBatches


class ERM(Algorithm):
    """Concatenate the K batches; one forward/backward; step with g."""

    name = "erm"

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        x, y = self.pooled(minibatches)
        loss = self.loss(x, y)
        g = self.vector.grad(loss)
        self.step_with(g)
        return {"loss": loss.detach()}
