"""CORAL — Deep CORAL, correlation alignment (Sun & Saenko, ECCV 2016 workshops), as DomainBed's ``CORAL``.

Update: :mod:`workbench.algorithms.feature_matching` (one featurizer pass per domain; mean risk plus
``mmd_gamma`` times the mean over domain pairs of d), with d DomainBed's mean-and-covariance distance

    d(a, b) = mean_j (μ_a − μ_b)_j² + mean_{j,l} (C_a − C_b)_{jl}²

where μ is a feature set's mean and C its unbiased covariance (division by n − 1). Unlike the paper's
loss (‖C_a − C_b‖²_F / 4D²), DomainBed also matches the means and averages over entries.
No difference from DomainBed in the update.
"""

from __future__ import annotations

import torch

from workbench.algorithms.feature_matching import FeatureMatching
from workbench.algorithms.registry import register_algorithm


def mean_and_covariance(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean ``[1, D]`` and the unbiased covariance ``[D, D]`` of a feature set ``[n, D]``."""
    mean = features.mean(0, keepdim=True)
    centred = features - mean
    return mean, centred.T @ centred / (len(features) - 1)


def coral_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the means plus that of the covariances (0 when ``a`` equals ``b``)."""
    mean_a, cov_a = mean_and_covariance(a)
    mean_b, cov_b = mean_and_covariance(b)
    return (mean_a - mean_b).pow(2).mean() + (cov_a - cov_b).pow(2).mean()


@register_algorithm("coral")
class CORAL(FeatureMatching):
    """Mean per-domain risk plus the mean pairwise mean-and-covariance distance of the domains' features."""

    @staticmethod
    def discrepancy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return coral_distance(a, b)
