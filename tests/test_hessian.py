"""Power iteration and Hutchinson's trace against the exact Hessian of a small float64 MLP."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from workbench.analysis.hessian import hessian_top_eigenvalue, hutchinson_trace


def small_mlp() -> nn.Module:
    """3 → 4 → 2 with tanh: 26 parameters, smooth so the Hessian is well defined."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def batch(n: int = 12):
    gen = torch.Generator().manual_seed(1)
    return torch.randn((n, 3), generator=gen, dtype=torch.float64), torch.randint(0, 2, (n,), generator=gen)


def exact_hessian(model: nn.Module, x, y) -> torch.Tensor:
    """∂²L/∂θ² over the flat parameter vector, from torch.autograd.functional.hessian."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(flat: torch.Tensor) -> torch.Tensor:
        params, offset = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = flat[offset : offset + shape.numel()].view(shape)
            offset += shape.numel()
        return F.cross_entropy(functional_call(model, params, (x,)), y)

    return torch.autograd.functional.hessian(loss, theta)


def test_top_eigenvalue_is_the_largest_magnitude_eigenvalue():
    model = small_mlp()
    x, y = batch()
    eigenvalues = torch.linalg.eigvalsh(exact_hessian(model, x, y))
    dominant = float(eigenvalues[eigenvalues.abs().argmax()])
    estimate = hessian_top_eigenvalue(model, (x, y), iters=1000, tol=1e-12)
    assert estimate == pytest.approx(dominant, rel=1e-6)


def test_top_eigenvalue_with_default_settings_is_close():
    model = small_mlp()
    x, y = batch()
    eigenvalues = torch.linalg.eigvalsh(exact_hessian(model, x, y))
    top = float(eigenvalues[eigenvalues.abs().argmax()])
    assert hessian_top_eigenvalue(model, (x, y), iters=200) == pytest.approx(top, rel=1e-2)


def test_hutchinson_trace_within_its_standard_error():
    """Rademacher probes: Var(vᵀHv) = 2 Σ_{i≠j} H_ij², so with 200 samples the error is below 4 SE."""
    model = small_mlp()
    x, y = batch()
    hessian = exact_hessian(model, x, y)
    samples = 200
    off_diagonal = hessian - torch.diag(torch.diagonal(hessian))
    standard_error = math.sqrt(2 * float((off_diagonal**2).sum()) / samples)
    estimate = hutchinson_trace(model, (x, y), samples=samples, seed=0)
    assert abs(estimate - float(torch.trace(hessian))) < 4 * standard_error
    assert hutchinson_trace(model, (x, y), samples=samples, seed=0) == estimate


def test_hessian_functions_restore_the_model_and_validate_arguments():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2)).double().train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    hessian_top_eigenvalue(model, batch(), iters=5)
    hutchinson_trace(model, batch(), samples=3)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="iters"):
        hessian_top_eigenvalue(model, batch(), iters=0)
    with pytest.raises(ValueError, match="samples"):
        hutchinson_trace(model, batch(), samples=0)


def test_vit_attention_runs_unfused_for_double_backward_and_is_switched_back():
    import timm

    torch.manual_seed(0)
    model = timm.create_model("test_vit", num_classes=2)
    fused = [m for m in model.modules() if getattr(m, "fused_attn", False) is True]
    assert fused  # timm's default on this torch: fused attention, which has no double backward
    x = torch.randn((2, 3, *model.default_cfg["input_size"][1:]), generator=torch.Generator().manual_seed(0))
    value = hessian_top_eigenvalue(model, (x, torch.tensor([0, 1])), iters=3)
    assert math.isfinite(value)
    assert all(m.fused_attn is True for m in fused)
