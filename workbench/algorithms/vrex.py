"""V-REx — Risk Extrapolation, variance form (Krueger et al., ICML 2021), as DomainBed's ``VREx``.

Update (DomainBed's): one forward pass of the concatenated batch, logits split per domain;
R_k = CE(logits_k, y_k); nll = (1/K) Σ_k R_k; penalty = (1/K) Σ_k (R_k − nll)² (the population variance
of the domain risks); loss = nll + w_λ · penalty, with w_λ = 1 before update
``vrex_penalty_anneal_iters`` and ``vrex_lambda`` from then on; at that update the base optimizer is
replaced by a fresh one (:mod:`workbench.algorithms.annealed_penalty`).

Hyper-parameters (DomainBed's defaults): ``vrex_lambda`` [1e1], ``vrex_penalty_anneal_iters`` [500].
Statistics: ``loss`` (with the weighted penalty), ``nll``, ``penalty``.

Differences from DomainBed, none in the update: the ``nll`` statistic is the mean risk (DomainBed
reports the last domain's risk under that name), and the per-domain risks keep the logits' precision
(DomainBed writes them into a float32 tensor on the CPU).
BatchNorm: DomainBed's ResNet freezes BN; here BN trains, and the single pooled pass normalises with the
statistics of the concatenated batch and updates the running statistics once per update.
Distributed training: nothing is reduced beyond the gradients (averaged once per optimizer step);
each process computes the risks and their variance on its own shard.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workbench.algorithms.annealed_penalty import AnnealedPenalty
from workbench.algorithms.hparams import integer, number
from workbench.algorithms.registry import register_algorithm


@register_algorithm("vrex")
class VREx(AnnealedPenalty):
    """Mean per-domain risk plus the variance of the risks, annealed to ``vrex_lambda``."""

    LAMBDA = "vrex_lambda"
    ANNEAL_ITERS = "vrex_penalty_anneal_iters"
    HPARAMS = {
        "vrex_lambda": number(1e1, "weight λ of the risk-variance penalty once annealing is over"),
        "vrex_penalty_anneal_iters": integer(500, "updates with penalty weight 1 before λ (optimizer reset then)"),
    }

    def risks(self, logits: list[torch.Tensor], labels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        losses = torch.stack([F.cross_entropy(z, y) for z, y in zip(logits, labels)])
        mean = losses.mean()
        return mean, ((losses - mean) ** 2).mean()
