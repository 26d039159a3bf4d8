"""SAND-mask — smoothed AND-mask (Shahtalebi, Gagnon-Audet, Laleh, Faramarzi, Ahuja & Rish, 2021,
arXiv:2106.02266), as DomainBed's ``SANDMask``.

Update: as AND-mask (one pass per domain, g_k = ∇L_k(θ), per parameter tensor), with a continuous mask:
σ² = unbiased variance of g_k over the K domains (NaN, i.e. K = 1, → 1e-17), λ = 1/σ²,
mask = max(tanh(k·λ·(|(1/K) Σ_k sign(g_k)| − τ)), 0) with NaN (0·∞ where σ² = 0) → 1e-17; the base
optimizer steps with mask·ḡ / (1e-10 + mean(mask)).

Note: the mask is positive only where the sign agreement exceeds τ, so with DomainBed's default τ = 1 it
is 0 everywhere (1e-17 where σ² = 0) and the update is (numerically) zero; DomainBed's sweeps draw τ
from [0, 1). DomainBed keeps an ``update_count`` buffer that nothing reads; it is left out here.
"""

from __future__ import annotations

import torch

from workbench.algorithms.andmask import ANDMask, sign_agreement
from workbench.algorithms.hparams import number
from workbench.algorithms.registry import register_algorithm


def domain_variance(grads: torch.Tensor) -> torch.Tensor:
    """The unbiased variance over the domains of stacked gradients ``[K, D]`` (NaN for K = 1), as
    ``grads.var(dim=0)``, accumulated row by row: torch's reduction over a short leading dimension is far
    slower on a CPU than these contiguous elementwise passes."""
    k = grads.shape[0]
    if k == 1:
        return torch.full_like(grads[0], float("nan"))
    mean = grads.mean(dim=0)
    total, centred = torch.zeros_like(mean), torch.empty_like(mean)
    for row in grads:
        torch.sub(row, mean, out=centred)
        total.addcmul_(centred, centred)
    return total.div_(k - 1)


def sand_mask(grads: torch.Tensor, tau: float, k: float) -> torch.Tensor:
    """The SAND-mask of stacked per-domain gradients ``[K, D]`` (see the module docstring)."""
    variance = domain_variance(grads)
    variance = torch.where(torch.isnan(variance), 1e-17, variance)
    raw = torch.tanh(k * variance.reciprocal() * (sign_agreement(grads) - tau))
    return torch.where(torch.isnan(raw), 1e-17, raw.clamp_min(0.0))


@register_algorithm("sandmask")
class SANDMask(ANDMask):
    """AND-mask with a smooth mask: tanh of the sign agreement above τ, scaled by k / gradient variance."""

    HPARAMS = {
        "tau": number(1.0, "sign agreement τ above which entries are kept", high=1.0),
        "k": number(10.0, "steepness k of the mask's tanh"),
    }

    def mask(self, grads: torch.Tensor) -> torch.Tensor:
        return sand_mask(grads, self.hparams["tau"], self.hparams["k"])
