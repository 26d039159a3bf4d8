"""MMD — domain generalisation by matching feature distributions with the maximum mean discrepancy
(Li, Pan, Wang & Kot, CVPR 2018, "MMD-AAE", without its autoencoder and adversary), as DomainBed's ``MMD``.

Update: :mod:`workbench.algorithms.feature_matching` (one featurizer pass per domain; mean risk plus
``mmd_gamma`` times the mean over domain pairs of d), with d the biased estimate of the squared MMD
under DomainBed's multi-bandwidth Gaussian kernel,

    k(u, v) = Σ_{γ ∈ {1e-3, 1e-2, 1e-1, 1, 1e1, 1e2, 1e3}} exp(−γ ‖u − v‖²)
    d(a, b) = mean k(a, a) + mean k(b, b) − 2 mean k(a, b)

where ‖u − v‖² is computed as ‖u‖² + ‖v‖² − 2 u·v and clamped below at 1e-30, as DomainBed does.
The bandwidths γ are fixed; ``mmd_gamma`` (DomainBed's name) is the penalty's weight, not a bandwidth.
No difference from DomainBed in the update.
"""

from __future__ import annotations

import torch

from workbench.algorithms.feature_matching import FeatureMatching
from workbench.algorithms.registry import register_algorithm

BANDWIDTHS = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[n_a, n_b]`` squared Euclidean distances by the norm expansion, clamped below at 1e-30."""
    a_sq = a.pow(2).sum(-1, keepdim=True)
    b_sq = b.pow(2).sum(-1, keepdim=True)
    return (a_sq + b_sq.T - 2 * a @ b.T).clamp_min(1e-30)


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[n_a, n_b]`` sum of Gaussian kernels exp(−γ‖a_i − b_j‖²) over :data:`BANDWIDTHS`."""
    distances = squared_distances(a, b)
    return torch.stack([torch.exp(-gamma * distances) for gamma in BANDWIDTHS]).sum(0)


def mmd_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Biased estimate of the squared MMD between the feature sets ``a`` and ``b`` (0 when they are equal)."""
    return gaussian_kernel(a, a).mean() + gaussian_kernel(b, b).mean() - 2 * gaussian_kernel(a, b).mean()


@register_algorithm("mmd")
class MMD(FeatureMatching):
    """Mean per-domain risk plus the mean pairwise Gaussian-kernel MMD of the domains' features."""

    @staticmethod
    def discrepancy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return mmd_distance(a, b)
