"""ERM — empirical risk minimisation on the pooled source-domain batch (Vapnik, 1998; DomainBed's ``ERM``).

Update: concatenate the K batches, one forward/backward, step with g = ∇L(θ) on the pooled batch.
"""

from __future__ import annotations

import torch

from workbench.algorithms.base import Algorithm, DomainBatches
from workbench.algorithms.registry import register_algorithm


@register_algorithm("erm")
class ERM(Algorithm):
    """Concatenate the K batches; one forward/backward; step with g."""

    family = "baseline"
    capturable = True

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        x, y = self.pooled(minibatches)
        loss = self.loss(x, y)
        self.descend(loss)
        return {"loss": loss.detach()}
