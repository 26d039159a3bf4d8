"""Fishr — invariant gradient variances for out-of-distribution generalisation (Rame, Dancette & Cord,
ICML 2022), as DomainBed's ``Fishr``.

Update on the pooled batch, one forward pass: z = features(x), logits = classifier(z), nll = CE(logits, y).

1. Per-sample gradients g_i of the sum-reduced cross-entropy with respect to the *classifier's*
   parameters only (flattened into one vector per sample), computed with ``torch.func`` (vmap of grad
   over the classifier) and kept differentiable in z and in the classifier, as DomainBed's BackPACK
   ``BatchGrad`` with ``create_graph``.
2. For each domain d, the centred variance v_d = mean_{i ∈ d} (g_i − ḡ_d)² (elementwise).
3. A moving average per domain, DomainBed's ``MovingAverage`` with ``oneminusema_correction``:
   m_d ← ema·m_d + (1 − ema)·v_d, starting from m_d = 0; the stored m_d is detached; the penalty sees
   m̃_d = m_d/(1 − ema), through which the current v_d is differentiated.
4. penalty = (1/K) Σ_d mean((m̃_d − m̄)²), m̄ = (1/K) Σ_d m̃_d (DomainBed's ``l2_between_dicts``: the mean
   over all classifier entries).
5. objective = nll + w·penalty, w = 0 before update ``penalty_anneal_iters`` and λ from it on. At that
   update (unless it is update 0) the base optimizer is rebuilt, dropping its state, before the step —
   as DomainBed resets Adam there. The penalty and the moving averages are computed at every update.

The classifier head runs in float32 outside autocast: the penalty compares variances of per-sample
gradients, which bf16 rounding would swamp. The update counter and the moving averages are the
algorithm's extra state (checkpointed); the moving averages need ``num_domains``.

Distributed training: each rank computes its penalty from its own shard (per-rank variances and moving
averages); the gradient of the objective is averaged once, by the base optimizer's step. Rank 0's
moving averages are the ones a checkpoint keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from workbench.algorithms.base import Algorithm, DomainBatches
from workbench.algorithms.hparams import integer, number
from workbench.algorithms.registry import register_algorithm


def per_sample_grads(head: nn.Module, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``[N, D]``: row i is ∇ of sample i's cross-entropy w.r.t. ``head``'s trainable parameters, flattened.

    Differentiable with respect to ``z`` and to the parameters (the outer autograd graph is kept).
    """
    named = [(name, p) for name, p in head.named_parameters() if p.requires_grad]
    names = [name for name, _ in named]

    def sample_loss(weights: tuple[torch.Tensor, ...], z_i: torch.Tensor, y_i: torch.Tensor) -> torch.Tensor:
        logits = functional_call(head, dict(zip(names, weights)), (z_i.unsqueeze(0),))
        return F.cross_entropy(logits, y_i.unsqueeze(0), reduction="sum")

    grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))(tuple(p for _, p in named), z, y)
    return torch.cat([g.reshape(len(z), -1) for g in grads], dim=1)


def centred_variance(grads: torch.Tensor) -> torch.Tensor:
    """Mean over the rows of the squared deviation from their mean (the biased variance), per column."""
    return (grads - grads.mean(dim=0, keepdim=True)).pow(2).mean(dim=0)


def variance_penalty(variances: torch.Tensor) -> torch.Tensor:
    """(1/K) Σ_d mean((v_d − v̄)²) for the ``[K, D]`` per-domain variances, v̄ their mean over domains."""
    return (variances - variances.mean(dim=0, keepdim=True)).pow(2).mean(dim=1).mean()


@register_algorithm("fishr")
class Fishr(Algorithm):
    """ERM on the pooled batch plus λ × the spread of the domains' classifier-gradient variances."""

    family = "gradient matching"
    HPARAMS = {
        "lambda": number(1000.0, "weight λ of the gradient-variance penalty (from penalty_anneal_iters on)"),
        "penalty_anneal_iters": integer(1500, "updates before the penalty is switched on (optimizer reset there)"),
        "ema": number(0.95, "decay of each domain's moving average of gradient variances", high=1.0, high_open=True),
    }

    def __init__(
        self, model: nn.Module, hparams: Mapping[str, Any] | None = None, num_domains: int | None = None
    ) -> None:
        if num_domains is None:
            raise ValueError("fishr keeps a moving average per source domain: build it with num_domains=K")
        super().__init__(model, hparams, num_domains)
        if not any(p.requires_grad for p in self.classifier.parameters()):
            raise ValueError("fishr needs a classifier (the model's last layer) with trainable parameters")
        self.update_count = 0
        self.moving_average: torch.Tensor | None = None

    def averaged_variances(self, variances: torch.Tensor) -> torch.Tensor:
        """Update the per-domain moving averages with ``variances`` ``[K, D]``; return them / (1 − ema)."""
        ema = self.hparams["ema"]
        previous = torch.zeros_like(variances) if self.moving_average is None else self.moving_average
        current = ema * previous + (1 - ema) * variances
        self.moving_average = current.detach().clone()
        return current / (1 - ema)

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        x, y = self.pooled(minibatches)
        z = self.features(x)
        logits = self.classifier(z)
        nll = F.cross_entropy(logits, y)
        grads = per_sample_grads(self.classifier, z, y)
        variances = torch.stack([centred_variance(g) for g in grads.split([len(xk) for xk, _ in minibatches])])
        penalty = variance_penalty(self.averaged_variances(variances))
        weight = 0.0
        if self.update_count >= self.hparams["penalty_anneal_iters"]:
            weight = self.hparams["lambda"]
            if self.update_count == self.hparams["penalty_anneal_iters"] != 0:
                self.optimizer = self.make_optimizer(self.vector.params)
        self.update_count += 1
        objective = nll + weight * penalty
        self.descend(objective)
        return {"loss": objective.detach(), "nll": nll.detach(), "penalty": penalty.detach()}

    def extra_state(self) -> dict[str, Any]:
        return {"update_count": self.update_count, "moving_average": self.moving_average}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        if set(state) != {"update_count", "moving_average"}:
            raise ValueError(f"fishr: expected update_count and moving_average in the extra state, got {sorted(state)}")
        self.update_count = int(state["update_count"])
        self.moving_average = state["moving_average"]
