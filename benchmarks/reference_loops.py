"""Plain PyTorch implementations of some updates, written without the workbench's machinery, as the
reference the throughput benchmark holds the library to (``benchmarks/throughput.py``, ``plain-*``).

Each is what a researcher would write directly: per-parameter ``.grad`` tensors, ``torch._foreach_*``
for perturbations and restores, one ``loss.item()`` per step (the trainer's one synchronisation), the
same base optimizer. BatchNorm running statistics are saved and restored around perturbed passes, as
the library's updates leave them. ``tests/test_throughput.py`` checks that each computes the library's
update, so the timings compare like with like.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]
Step = Callable[[Batches], None]


def _running_buffers(model: nn.Module) -> list[torch.Tensor]:
    return [
        b
        for name, b in model.named_buffers()
        if name.rsplit(".", 1)[-1].startswith("running_") or name.endswith("num_batches_tracked")
    ]


def _gradients(model: nn.Module, loss: torch.Tensor, params: list[nn.Parameter]) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))


def plain_sam(model: nn.Module, optimizer: torch.optim.Optimizer, rho: float = 0.05) -> Step:
    """SAM on the pooled batch: ε = ρ g/‖g‖, step with ∇L(θ + ε)."""
    params = [p for p in model.parameters() if p.requires_grad]
    buffers = _running_buffers(model)

    def step(batches: Batches) -> None:
        x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        loss = F.cross_entropy(model(x), y)
        g = _gradients(model, loss, params)
        epsilon = torch._foreach_mul(g, rho / (_norm(g) + 1e-12))
        saved = [b.clone() for b in buffers]
        with torch.no_grad():
            torch._foreach_add_(params, epsilon)
        perturbed = _gradients(model, F.cross_entropy(model(x), y), params)
        with torch.no_grad():
            torch._foreach_sub_(params, epsilon)
            torch._foreach_copy_(buffers, saved)
        for p, grad in zip(params, perturbed):
            p.grad = grad
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()

    return step


def plain_roga(model: nn.Module, optimizer: torch.optim.Optimizer, rho: float = 0.05, alpha: float = 0.001) -> Step:
    """RoGA (docs/method.md): ε_k = ρ g_k/‖g_k‖ − α g per domain; step with ½ (g + mean_k ∇L_k(θ + ε_k))."""
    params = [p for p in model.parameters() if p.requires_grad]
    buffers = _running_buffers(model)

    def step(batches: Batches) -> None:
        k = len(batches)
        losses, clean = [], []
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            losses.append(loss.detach())
            clean.append(_gradients(model, loss, params))
        g = torch._foreach_add(clean[0], clean[1]) if k > 1 else [t.clone() for t in clean[0]]
        for grads in clean[2:]:
            torch._foreach_add_(g, grads)
        torch._foreach_div_(g, k)
        saved = [b.clone() for b in buffers]
        total = [torch.zeros_like(p) for p in params]
        for (x, y), grads in zip(batches, clean):
            epsilon = torch._foreach_mul(grads, rho / (_norm(grads) + 1e-12))
            torch._foreach_add_(epsilon, g, alpha=-alpha)
            with torch.no_grad():
                torch._foreach_add_(params, epsilon)
            torch._foreach_add_(total, _gradients(model, F.cross_entropy(model(x), y), params))
            with torch.no_grad():
                torch._foreach_sub_(params, epsilon)
        with torch.no_grad():
            torch._foreach_copy_(buffers, saved)
        torch._foreach_add_(total, g, alpha=k)
        torch._foreach_mul_(total, 0.5 / k)
        for p, grad in zip(params, total):
            p.grad = grad
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.stack(losses).mean().item()

    return step


def plain_andmask(model: nn.Module, optimizer: torch.optim.Optimizer, tau: float = 1.0) -> Step:
    """AND-mask as DomainBed writes it: per-domain gradients, a per-tensor sign-agreement mask."""
    params = [p for p in model.parameters() if p.requires_grad]

    def step(batches: Batches) -> None:
        per_domain, losses = [], []
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            losses.append(loss.detach())
            per_domain.append(_gradients(model, loss, params))
        for i, p in enumerate(params):
            grads = torch.stack([domain[i] for domain in per_domain])
            mask = (torch.sign(grads).mean(0).abs() >= tau).to(grads.dtype)
            p.grad = mask * grads.mean(0) / (1e-10 + mask.mean())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.stack(losses).mean().item()

    return step


def plain_sandmask(model: nn.Module, optimizer: torch.optim.Optimizer, tau: float = 1.0, k: float = 10.0) -> Step:
    """SAND-mask as DomainBed writes it: AND-mask's passes, a smooth per-tensor mask from the gradient variance."""
    params = [p for p in model.parameters() if p.requires_grad]

    def step(batches: Batches) -> None:
        per_domain, losses = [], []
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            losses.append(loss.detach())
            per_domain.append(_gradients(model, loss, params))
        for i, p in enumerate(params):
            grads = torch.stack([domain[i] for domain in per_domain])
            variance = grads.var(dim=0)
            variance[torch.isnan(variance)] = 1e-17
            mask = torch.tanh(k * variance.reciprocal() * (torch.sign(grads).mean(0).abs() - tau)).clamp_min(0.0)
            mask[torch.isnan(mask)] = 1e-17
            p.grad = mask * grads.mean(0) / (1e-10 + mask.mean())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.stack(losses).mean().item()

    return step


# algorithm → (reference loop, the library hyper-parameters it takes as keyword arguments)
REFERENCE_LOOPS: dict[str, tuple[Callable[..., Step], tuple[str, ...]]] = {
    "sam": (plain_sam, ("rho",)),
    "roga": (plain_roga, ("rho", "alpha")),
    "andmask": (plain_andmask, ("tau",)),
    "sandmask": (plain_sandmask, ("tau", "k")),
}
