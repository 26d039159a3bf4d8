"""Curvature of the loss at θ from Hessian-vector products (double backward, eval mode).

The Hessian is never formed: the gradient graph of one batch is built once and H v is its
derivative along v, so each product costs about one extra backward pass. Fused attention kernels
have no double backward, so timm attention modules (those with a ``fused_attn`` switch) run their
plain-math path during these computations; the switch is restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from workbench.algorithms.param_vector import ParamVector
from workbench.analysis.gradients import batch_loss, check_batches, preserved_state

HVP = Callable[[torch.Tensor], torch.Tensor]


@contextmanager
def _unfused_attention(model: nn.Module) -> Iterator[None]:
    """Switch timm's fused (scaled-dot-product) attention off, since it has no double backward."""
    switched = [m for m in model.modules() if getattr(m, "fused_attn", False) is True]
    for module in switched:
        module.fused_attn = False
    try:
        yield
    finally:
        for module in switched:
            module.fused_attn = True


def _with_hvp(
    model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], use: Callable[[HVP, torch.Tensor], float]
) -> float:
    """Build the gradient graph of the batch loss at θ and hand ``use`` an H·v function and the flat gradient."""
    check_batches([batch])
    with preserved_state(model, "eval"), _unfused_attention(model), torch.enable_grad():
        vector = ParamVector(model)
        loss = batch_loss(model, *batch)
        grads = vector.flatten(
            list(torch.autograd.grad(loss, vector.params, create_graph=True, materialize_grads=True))
        )

        def hvp(v: torch.Tensor) -> torch.Tensor:
            parts = torch.autograd.grad(grads, vector.params, grad_outputs=v, retain_graph=True, allow_unused=True)
            return vector.flatten([torch.zeros_like(p) if h is None else h for p, h in zip(vector.params, parts)])

        return use(hvp, grads.detach())


def _rademacher(generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """±1 entries drawn on the CPU (device-independent), shaped and typed like ``like``."""
    signs = torch.randint(0, 2, like.shape, generator=generator, dtype=torch.int64) * 2 - 1
    return signs.to(like.device, like.dtype)


def hessian_top_eigenvalue(
    model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], iters: int = 50, tol: float = 1e-4, seed: int = 0
) -> float:
    """The Hessian eigenvalue of largest magnitude (signed), by power iteration.

    Starts from a Gaussian vector drawn from ``seed`` on the CPU; stops after ``iters`` products or
    when the Rayleigh quotient changes by less than ``tol`` relative to its size. At a trained
    network this is the sharpest (largest positive) curvature; power iteration finds the largest
    *magnitude*, so a strongly negative eigenvalue would be returned instead, with its sign.
    """
    if iters < 1:
        raise ValueError(f"iters must be at least 1, got {iters}")

    def power_iteration(hvp: HVP, like: torch.Tensor) -> float:
        generator = torch.Generator().manual_seed(seed)
        v = torch.randn(like.shape, generator=generator, dtype=torch.float64).to(like.device, like.dtype)
        v = v / torch.linalg.vector_norm(v)
        eigenvalue = None
        for _ in range(iters):
            hv = hvp(v)
            estimate = float(torch.dot(v, hv))
            norm = torch.linalg.vector_norm(hv)
            if norm == 0:
                return 0.0
            v = hv / norm
            if eigenvalue is not None and abs(estimate - eigenvalue) <= tol * max(abs(eigenvalue), 1e-12):
                return estimate
            eigenvalue = estimate
        return eigenvalue

    return _with_hvp(model, batch, power_iteration)


def hutchinson_trace(
    model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], samples: int = 100, seed: int = 0
) -> float:
    """Hutchinson's estimate tr(H) ≈ mean_i v_iᵀ H v_i over ``samples`` Rademacher vectors v_i.

    Unbiased, with variance 2 Σ_{i≠j} H_ij² / samples (the diagonal contributes no noise).
    """
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")

    def estimate(hvp: HVP, like: torch.Tensor) -> float:
        generator = torch.Generator().manual_seed(seed)
        total = 0.0
        for _ in range(samples):
            v = _rademacher(generator, like)
            total += float(torch.dot(v, hvp(v)))
        return total / samples

    return _with_hvp(model, batch, estimate)
