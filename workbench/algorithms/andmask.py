"""AND-mask — learning explanations that are hard to vary (Parascandolo, Neitz, Orvieto, Gresele &
Schölkopf, ICLR 2021), as DomainBed's ``ANDMask``.

Update: one forward/backward pass per domain gives g_k = ∇L_k(θ). For every parameter tensor
separately, elementwise: mask = [ |(1/K) Σ_k sign(g_k)| ≥ τ ] (the domains' gradient signs agree
enough), ḡ = (1/K) Σ_k g_k, and the base optimizer steps with mask·ḡ / (1e-10 + mean(mask)), the mean
taken over the tensor's entries (the rescaling keeps the update's size as the mask thins it).

Parameters no pass reaches keep ``.grad`` None and are skipped by the optimizer (DomainBed's
``autograd.grad`` would raise). Running statistics move in the K per-domain passes, in domain order.
Distributed training: each rank masks its own shards' gradients; the masked direction is averaged once,
by the base optimizer's step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from workbench.algorithms.base import Algorithm, DomainBatches
from workbench.algorithms.hparams import number
from workbench.algorithms.registry import register_algorithm


def sign_agreement(grads: torch.Tensor) -> torch.Tensor:
    """|mean over domains of sign(g_k)| for stacked per-domain gradients ``[K, D]``: 1 = all signs agree."""
    return torch.sign(grads).mean(dim=0).abs()


def masked_mean_gradient(
    grads: torch.Tensor, mask: torch.Tensor, numels: list[int] | torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """mask·ḡ / (1e-10 + mean(mask)) for stacked gradients ``[K, D]``, the mask's mean taken per tensor.

    ``numels``: the sizes of the parameter tensors that make up the flat dimension D, in order (a list,
    or a tensor on the gradients' device). The result is written into ``out`` when given.
    """
    lengths = torch.as_tensor(numels, device=grads.device)
    scale = torch.segment_reduce(mask, "mean", lengths=lengths).add_(1e-10).reciprocal_()
    average = torch.mean(grads, dim=0, out=out)
    return average.mul_(mask).mul_(torch.repeat_interleave(scale, lengths, output_size=mask.numel()))


def masked_mean_gradient_per_tensor(
    grads: torch.Tensor, numels: list[int], mask_of: Callable[[torch.Tensor], torch.Tensor], out: torch.Tensor
) -> torch.Tensor:
    """:func:`masked_mean_gradient` with the mask ``mask_of`` makes of each tensor's ``[K, n]`` slice, one
    parameter tensor at a time, written into ``out``. On a CPU each tensor's K rows then stay in cache
    through the chain of elementwise ops, where whole-model ``[K, D]`` ops stream from memory for every op;
    on a GPU the whole-vector form is a few kernels instead of several per tensor."""
    for tensor_grads, tensor_out in zip(grads.split(numels, dim=1), out.split(numels)):
        mask = mask_of(tensor_grads)
        torch.mean(tensor_grads, dim=0, out=tensor_out).mul_(mask).div_(mask.mean().add_(1e-10))
    return out


@register_algorithm("andmask")
class ANDMask(Algorithm):
    """Per-domain gradients; keep the entries whose signs agree (≥ τ), rescaled per parameter tensor."""

    family = "gradient matching"
    capturable = True
    HPARAMS = {"tau": number(1.0, "sign agreement τ an entry needs to be kept", high=1.0)}

    def mask(self, grads: torch.Tensor) -> torch.Tensor:
        """The elementwise mask from stacked per-domain gradients ``[K, D]``."""
        return (sign_agreement(grads) >= self.hparams["tau"]).to(grads.dtype)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        numels = torch.tensor(self.vector.numels, device=self.vector.params[0].device)
        self.register_buffer("_numels", numels, persistent=False)

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        stacked = self.vector.buffer("per_domain", rows=len(minibatches))
        losses = []
        for k, (x, y) in enumerate(minibatches):
            loss = self.loss(x, y)
            self.vector.grad_into(loss, stacked[k])
            losses.append(loss.detach())
        out = self.vector.buffer("direction")
        if stacked.device.type == "cpu":
            direction = masked_mean_gradient_per_tensor(stacked, self.vector.numels, self.mask, out)
        else:
            direction = masked_mean_gradient(stacked, self.mask(stacked), self._numels, out=out)
        self.step_with(direction)
        return {"loss": torch.stack(losses).mean()}
