"""IRM — Invariant Risk Minimization (Arjovsky, Bottou, Gulrajani & Lopez-Paz, 2019), IRMv1 as DomainBed's ``IRM``.

Update (DomainBed's, unchanged): one forward pass of the concatenated batch, logits split per domain.
With a dummy classifier scale w = 1 and R_k(w) = CE(w · logits_k, y_k),

- nll = (1/K) Σ_k R_k(1);
- penalty = (1/K) Σ_k ∂_w CE(w · logits_k[::2], y_k[::2]) · ∂_w CE(w · logits_k[1::2], y_k[1::2]) at w = 1
  (the squared gradient norm of IRMv1, estimated without bias from the even and the odd samples of
  each domain batch; both factors keep their graph, so the penalty is differentiated through);
- loss = nll + w_λ · penalty, with w_λ = 1 before update ``irm_penalty_anneal_iters`` and
  ``irm_lambda`` from then on; at that update the base optimizer is replaced by a fresh one
  (:mod:`workbench.algorithms.annealed_penalty`).

Hyper-parameters (DomainBed's defaults): ``irm_lambda`` [1e2], ``irm_penalty_anneal_iters`` [500].
Statistics: ``loss`` (with the weighted penalty), ``nll``, ``penalty``.

BatchNorm: DomainBed's ResNet freezes BN; here BN trains, and the single pooled pass normalises with the
statistics of the concatenated batch and updates the running statistics once per update.
Distributed training: nothing is reduced beyond the gradients (averaged once per optimizer step);
each process computes nll and penalty on its own shard, and the update counter advances alike everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workbench.algorithms.annealed_penalty import AnnealedPenalty
from workbench.algorithms.hparams import integer, number
from workbench.algorithms.registry import register_algorithm


def irm_penalty(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂_w CE(w · logits[::2], y[::2]) · ∂_w CE(w · logits[1::2], y[1::2]) at the dummy scale w = 1.

    Both derivatives keep their graph, so the product can be differentiated with respect to the logits.
    """
    scale = torch.ones((), dtype=logits.dtype, device=logits.device, requires_grad=True)
    (grad_even,) = torch.autograd.grad(F.cross_entropy(logits[::2] * scale, y[::2]), scale, create_graph=True)
    (grad_odd,) = torch.autograd.grad(F.cross_entropy(logits[1::2] * scale, y[1::2]), scale, create_graph=True)
    return grad_even * grad_odd


@register_algorithm("irm")
class IRM(AnnealedPenalty):
    """Mean per-domain risk plus the IRMv1 penalty of a dummy classifier scale, annealed to ``irm_lambda``."""

    LAMBDA = "irm_lambda"
    ANNEAL_ITERS = "irm_penalty_anneal_iters"
    HPARAMS = {
        "irm_lambda": number(1e2, "weight λ of the IRMv1 penalty once annealing is over"),
        "irm_penalty_anneal_iters": integer(500, "updates with penalty weight 1 before λ (optimizer reset then)"),
    }

    def risks(self, logits: list[torch.Tensor], labels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        nll = torch.stack([F.cross_entropy(z, y) for z, y in zip(logits, labels)]).mean()
        penalty = torch.stack([irm_penalty(z, y) for z, y in zip(logits, labels)]).mean()
        return nll, penalty
