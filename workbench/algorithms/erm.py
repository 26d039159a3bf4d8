"""Empirical risk minimisation on the pooled source-domain batch."""

from __future__ import annotations

from workbench.algorithms.base import Algorithm, DomainBatches, as_floats


class ERM(Algorithm):
    """Concatenate the K batches; one forward/backward; step with g."""

    name = "erm"

    def update(self, minibatches: DomainBatches) -> dict[str, float]:
        x, y = self.pooled(minibatches)
        loss = self.loss(x, y)
        g = self.vector.grad(loss)
        self.step_with(g)
        return as_floats({"loss": loss})
