"""Pairwise matching of the domains' feature distributions, the update DomainBed's CORAL and MMD share.

One featurizer pass per domain gives penultimate features φ_k = features(x_k) (what the classifier
sees, :meth:`Algorithm.features`); the classifier on each gives the logits. With a discrepancy d
between two feature sets (subclasses: :meth:`FeatureMatching.discrepancy`),

    objective = (1/K) Σ_k CE(classifier(φ_k), y_k)
    penalty   = Σ_{i<j} d(φ_i, φ_j) / (K(K−1)/2)        (0 for K = 1)
    loss      = objective + mmd_gamma · penalty

Hyper-parameter (DomainBed's name and default, shared by CORAL and MMD): ``mmd_gamma`` [1.0], the
penalty's weight. Statistics: ``loss`` (the objective without the penalty) and ``penalty``.

BatchNorm: DomainBed's ResNet freezes BN; here BN trains, and each domain's featurizer pass normalises
with that domain's batch statistics and updates the running statistics, in domain order.
Distributed training: nothing is reduced beyond the gradients (averaged once per optimizer step): each
process matches the features of its own shards.
Capturable: the update is tensor operations only.
"""

from __future__ import annotations

import itertools

import torch

from workbench.algorithms.base import Algorithm, DomainBatches
from workbench.algorithms.hparams import number


class FeatureMatching(Algorithm):
    """Mean per-domain risk plus ``mmd_gamma`` times the mean pairwise feature discrepancy (module docstring)."""

    family = "invariance"
    capturable = True
    HPARAMS = {"mmd_gamma": number(1.0, "weight of the pairwise feature-discrepancy penalty")}

    @staticmethod
    def discrepancy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """d(a, b) between two feature sets ``[n_a, D]`` and ``[n_b, D]`` (differentiable)."""
        raise NotImplementedError

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        features = [self.features(x) for x, _ in minibatches]
        classifier = self.classifier
        objective = torch.stack(
            [self.loss(phi, y, forward=classifier) for phi, (_, y) in zip(features, minibatches)]
        ).mean()
        pairs = [self.discrepancy(a, b) for a, b in itertools.combinations(features, 2)]
        penalty = torch.stack(pairs).mean() if pairs else torch.zeros_like(objective)
        self.descend(objective + self.hparams["mmd_gamma"] * penalty)
        return {"loss": objective.detach(), "penalty": penalty.detach()}
