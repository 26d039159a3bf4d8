"""Fish — gradient matching for domain generalisation (Shi, Seely, Torr, Siddharth, Hannun, Usunier &
Synnaeve, ICLR 2022; arXiv 2021), as DomainBed's ``Fish``.

Update: starting from θ, the base optimizer takes K sequential steps on the module, one per domain in
domain order (θ_k = θ_{k−1} stepped with ∇L_k(θ_{k−1})); then θ ← θ + meta_lr (θ_K − θ) over the whole
state dict — parameters *and* buffers (BatchNorm running statistics, moved by the K train-mode passes,
are interpolated too; integer buffers such as ``num_batches_tracked`` are truncated toward zero, as
DomainBed's ``load_state_dict`` of the float result does). To first order this ascends the inner
product of the domains' gradients (the paper's gradient-matching objective).

The base optimizer *is* DomainBed's persistent inner optimizer: DomainBed rebuilds the inner network
every update but carries the inner Adam's state from update to update, and never steps its outer
optimizer. Here the inner steps run on the module itself (θ is snapshotted, not deep-copied), so the
inner optimizer's state is the base optimizer's and is checkpointed with it.

``loss``: the mean of the K inner losses (DomainBed reports the last one).

Distributed training: each of the K inner steps averages its gradient across ranks (the base
optimizer's step), so every rank follows the same inner trajectory; buffers stay per rank.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from workbench.algorithms.base import Algorithm, DomainBatches
from workbench.algorithms.hparams import number
from workbench.algorithms.registry import register_algorithm


@torch.no_grad()
def interpolate_(live: Mapping[str, torch.Tensor], start: Mapping[str, torch.Tensor], weight: float) -> None:
    """``live ← start + weight (live − start)`` in place, for every tensor of a state dict.

    Integer tensors are computed in float64 and truncated toward zero when copied back (what loading the
    float result into an integer buffer does).
    """
    for name, value in live.items():
        begin = start[name]
        if value.is_floating_point():
            value.copy_(begin + weight * (value - begin))
        else:
            value.copy_(begin.double() + weight * (value - begin).double())


@register_algorithm("fish")
class Fish(Algorithm):
    """K sequential inner steps (one per domain), then θ ← θ + meta_lr (θ_K − θ), buffers included."""

    family = "gradient matching"
    HPARAMS = {"meta_lr": number(0.5, "meta step: fraction of the way from θ to the inner point θ_K")}

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        live = {name: value for name, value in self.model.state_dict().items() if torch.is_tensor(value)}
        start = {name: value.clone() for name, value in live.items()}
        losses = []
        for x, y in minibatches:
            loss = self.loss(x, y)
            self.descend(loss)
            losses.append(loss.detach())
        interpolate_(live, start, self.hparams["meta_lr"])
        return {"loss": torch.stack(losses).mean()}
