"""MLDG — meta-learning for domain generalisation (Li, Yang, Song & Hospedales, AAAI 2018), first order, as
DomainBed's ``MLDG``.

Update. The K domains are split at random (``torch.randperm`` from the global generator, DomainBed's
``split_meta_train_test``): the last ``n_meta_test`` of the permutation are meta-test domains, the others
meta-train; the meta-train domains are paired in turn with the meta-test domains, cycling through them
(K − n_meta_test pairs), and both batches of a pair are cut to the smaller one. For each pair (i, j):

- G_i = ∇L_i(θ)                                   (meta-train pass on the module at θ);
- θ' = one step from θ with G_i of a *fresh* base optimizer (same type, lr, momentum, weight decay;
  DomainBed uses a fresh Adam, which the default ``optimizer="adam"`` reproduces exactly);
- G_j = ∇L_j(θ')                                  (meta-test pass, evaluated functionally at θ').

The base optimizer then steps once with Σ_pairs (G_i + β G_j) / K — divided by the number of domains K,
not by the number of pairs, as DomainBed does. First order: G_j is not differentiated through θ'.
``loss`` is DomainBed's reported objective Σ_pairs (L_i + β L_j) / K.

θ' lives in separate tensors (the module's weights are never changed, no copy of the network is made).

Running statistics: the meta-train passes at θ are this method's clean passes and the only ones that
move normalisation running statistics (in pair order, on the cut batches); the meta-test passes at θ'
run with them frozen. (DomainBed runs both passes on a deep copy of the network, so its live running
statistics never move; moot there, as its ResNet keeps BatchNorm frozen.)

Distributed training: the inner steps are local to each rank (the fresh inner optimizer does not
communicate); the final direction is averaged once, by the base optimizer's step. Every rank draws
the same permutation, since the trainer seeds the global generator alike on every rank.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from workbench.algorithms.base import Algorithm, DomainBatches, build_optimizer
from workbench.algorithms.batchnorm import frozen_running_stats
from workbench.algorithms.hparams import integer, number
from workbench.algorithms.registry import register_algorithm

Batch = tuple[torch.Tensor, torch.Tensor]


def meta_pairs(minibatches: DomainBatches, n_meta_test: int) -> list[tuple[Batch, Batch]]:
    """(meta-train, meta-test) batch pairs of one update, drawn as DomainBed's ``split_meta_train_test``.

    One ``torch.randperm(K)`` from the global generator; meta-train = its first K − ``n_meta_test``
    entries, meta-test = its last ``n_meta_test``, zipped with the meta-test list repeated; both batches
    of a pair are cut to the smaller one's length.
    """
    k = len(minibatches)
    order = torch.randperm(k).tolist()
    meta_train, meta_test = order[: k - n_meta_test], order[k - n_meta_test :]
    pairs = []
    for i, j in zip(meta_train, itertools.cycle(meta_test)):
        (xi, yi), (xj, yj) = minibatches[i], minibatches[j]
        n = min(len(xi), len(xj))
        pairs.append(((xi[:n], yi[:n]), (xj[:n], yj[:n])))
    return pairs


@register_algorithm("mldg")
class MLDG(Algorithm):
    """First-order MLDG: step with Σ_pairs (∇L_i(θ) + β ∇L_j(θ')) / K, θ' one inner step on domain i."""

    family = "gradient matching"
    HPARAMS = {
        "mldg_beta": number(1.0, "weight β of the meta-test gradient"),
        "n_meta_test": integer(2, "meta-test domains per update (fewer than the source domains)", low=1),
    }

    def __init__(
        self, model: nn.Module, hparams: Mapping[str, Any] | None = None, num_domains: int | None = None
    ) -> None:
        super().__init__(model, hparams, num_domains)
        if num_domains is not None:
            self.check_split(num_domains)

    def check_split(self, num_domains: int) -> None:
        """Refuse a split that leaves no meta-train domain (``n_meta_test`` must be below K)."""
        n_meta_test = self.hparams["n_meta_test"]
        if n_meta_test >= num_domains:
            raise ValueError(
                f"mldg: n_meta_test={n_meta_test} leaves no meta-train domain among {num_domains} "
                "source domains; n_meta_test must be smaller than the number of source domains"
            )

    def inner_point(self, grads: list[torch.Tensor | None]) -> list[torch.Tensor]:
        """θ': one step of a fresh base optimizer from θ with ``grads``, in new leaf tensors (θ untouched).

        A parameter whose gradient is None (the pass did not reach it) is skipped, as after ``backward()``.
        """
        point = [p.detach().clone() for p in self.vector.params]
        for tensor, grad in zip(point, grads):
            tensor.grad = grad
        build_optimizer(point, self.hparams).step()
        return [tensor.detach().requires_grad_(True) for tensor in point]

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        self.check_split(len(minibatches))
        beta = self.hparams["mldg_beta"]
        total, objective = self.vector.buffer("direction").zero_(), None
        for (xi, yi), (xj, yj) in meta_pairs(minibatches, self.hparams["n_meta_test"]):
            loss_i = self.loss(xi, yi)
            grads_i = torch.autograd.grad(loss_i, self.vector.params, allow_unused=True)
            self.vector.accumulate_(total, grads_i)
            point = self.inner_point(list(grads_i))
            overrides = dict(zip(self.vector.names, point))
            with frozen_running_stats(self.model):
                loss_j = self.loss(
                    xj, yj, lambda inputs, weights=overrides: functional_call(self.model, weights, (inputs,))
                )
                self.vector.accumulate_(total, torch.autograd.grad(loss_j, point, allow_unused=True), alpha=beta)
            pair_objective = loss_i.detach() + beta * loss_j.detach()
            objective = pair_objective if objective is None else objective + pair_objective
        k = len(minibatches)
        self.step_with(total.div_(k))
        return {"loss": objective / k}
