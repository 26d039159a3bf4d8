"""Algorithms against the method card: exact update directions, BN statistics, exact restores."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from workbench.algorithms import ALGORITHMS, DEFAULT_HPARAMS, build_algorithm, resolve_hparams

RHO, ALPHA = 0.3, 0.05


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2)).double()


def cnn_with_bn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2),
    )


def domain_batches(k: int = 3, n: int = 5, dtype=torch.float64, image: bool = False):
    gen = torch.Generator().manual_seed(1)
    shape = (n, 3, 8, 8) if image else (n, 6)
    return [
        (torch.randn(shape, generator=gen, dtype=dtype) + i, torch.randint(0, 2, (n,), generator=gen))
        for i in range(k)
    ]


def flat_grad(model: nn.Module, params: dict[str, torch.Tensor], x, y) -> torch.Tensor:
    """∇ of cross-entropy at the given parameter values, computed functionally (no algorithm code)."""
    leaves = {name: value.detach().clone().requires_grad_(True) for name, value in params.items()}
    loss = F.cross_entropy(functional_call(model, leaves, (x,)), y)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return torch.cat([g.reshape(-1) for g in grads])


def shifted(params: dict[str, torch.Tensor], flat: torch.Tensor) -> dict[str, torch.Tensor]:
    out, offset = {}, 0
    for name, value in params.items():
        out[name] = value + flat[offset: offset + value.numel()].view_as(value)
        offset += value.numel()
    return out


def expected_direction(name: str, model: nn.Module, batches, ascent="per_domain", combine="with_erm"):
    """G from the method card, written out independently of workbench.algorithms."""
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    unit = lambda v: v / (v.norm() + 1e-12)  # noqa: E731
    if name == "erm":
        return flat_grad(model, params, x, y)
    if name in ("sam", "sagm"):
        g = flat_grad(model, params, x, y)
        if name == "sam":
            return flat_grad(model, shifted(params, RHO * unit(g)), x, y)
        g_p = flat_grad(model, shifted(params, RHO * unit(g) - ALPHA * g), x, y)
        return 0.5 * (g + g_p)
    grads = [flat_grad(model, params, xk, yk) for xk, yk in batches]
    g = sum(grads) / len(grads)
    if ascent == "shared":
        s = sum(unit(gk) for gk in grads)
        eps = [RHO * unit(s) - ALPHA * g] * len(grads)
    else:
        eps = [RHO * unit(gk) - ALPHA * g for gk in grads]
    perturbed = [flat_grad(model, shifted(params, e), xk, yk) for e, (xk, yk) in zip(eps, batches)]
    mean_p = sum(perturbed) / len(perturbed)
    return 0.5 * (g + mean_p) if combine == "with_erm" else mean_p


def sgd_unit_step(**extra):
    return {"optimizer": "sgd", "lr": 1.0, "momentum": 0.0, "weight_decay": 0.0,
            "rho": RHO, "alpha": ALPHA, **extra}


CASES = [("erm", {}), ("sam", {}), ("sagm", {})] + [
    ("roga", {"ascent": a, "combine": c})
    for a in ("per_domain", "shared") for c in ("with_erm", "perturbed_only")
]


@pytest.mark.parametrize("name,switches", CASES)
def test_update_moves_weights_by_exactly_minus_G(name, switches):
    model = mlp()
    batches = domain_batches()
    G = expected_direction(name, copy.deepcopy(model), batches, **switches)
    before = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    build_algorithm(name, model, sgd_unit_step(**switches)).update(batches)
    after = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    torch.testing.assert_close(after - before, -G, rtol=1e-10, atol=1e-12)


def test_roga_differs_from_sagm_and_erm():
    """The per-domain ascent is not a relabelled pooled method."""
    batches = domain_batches()
    directions = {n: expected_direction(n, mlp(), batches) for n in ("erm", "sagm", "roga")}
    assert not torch.allclose(directions["roga"], directions["sagm"])
    assert not torch.allclose(directions["roga"], directions["erm"])


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_running_stats_change_only_from_clean_passes(name):
    model = cnn_with_bn()
    batches = domain_batches(dtype=torch.float32, image=True)
    reference = copy.deepcopy(model).train()
    with torch.no_grad():
        if name == "roga":
            for x, _ in batches:
                reference(x)
        else:
            reference(torch.cat([b[0] for b in batches]))
    build_algorithm(name, model.train(), {"rho": 0.5, "alpha": 0.1}).update(batches)
    for mine, ref in zip(model.modules(), reference.modules()):
        if isinstance(mine, nn.BatchNorm2d):
            torch.testing.assert_close(mine.running_mean, ref.running_mean, rtol=0, atol=0)
            torch.testing.assert_close(mine.running_var, ref.running_var, rtol=0, atol=0)
            assert int(mine.num_batches_tracked) == int(ref.num_batches_tracked)


@pytest.mark.parametrize("name", ["sam", "sagm", "roga"])
def test_weights_restored_exactly_after_ascent(name):
    """With a zero learning rate the update must leave every weight bit-identical."""
    model = cnn_with_bn()
    before = copy.deepcopy(model.state_dict())
    hp = {"optimizer": "sgd", "lr": 0.0, "momentum": 0.0, "weight_decay": 0.0, "rho": 0.7, "alpha": 0.3}
    build_algorithm(name, model, hp).update(domain_batches(dtype=torch.float32, image=True))
    for key, value in model.named_parameters():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_each_algorithm_lowers_the_loss_on_an_easy_problem(name):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(6, generator=gen)
    batches = []
    for k in range(3):
        x = torch.randn(32, 6, generator=gen) + 0.2 * k
        batches.append((x, (x @ w > 0).long()))
    algo = build_algorithm(name, model, {"lr": 1e-2, "weight_decay": 0.0})
    x_all = torch.cat([b[0] for b in batches])
    y_all = torch.cat([b[1] for b in batches])
    start = F.cross_entropy(algo.predict(x_all), y_all).item()
    for _ in range(60):
        stats = algo.update(batches)
    end = F.cross_entropy(algo.predict(x_all), y_all).item()
    assert end < 0.5 * start
    assert all(isinstance(v, float) for v in stats.values())


def test_roga_reports_alignment_statistics():
    stats = build_algorithm("roga", mlp(), sgd_unit_step()).update(domain_batches())
    assert {"loss", "loss_perturbed", "cos_clean_mean", "cos_perturbed_mean"} <= stats.keys()
    assert -1.0 <= stats["cos_perturbed_mean"] <= 1.0


def test_zero_rho_and_alpha_make_roga_an_erm_step():
    """Ablation sanity: with ρ = α = 0 every ascent point is θ, so G equals the domain-mean gradient."""
    batches = domain_batches()
    a, b = mlp(), mlp()
    hp = sgd_unit_step(rho=0.0, alpha=0.0)
    build_algorithm("roga", a, hp).update(batches)
    build_algorithm("erm", b, hp).update([(torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches]))])
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-10, atol=1e-12)


def test_hparams_are_validated():
    assert resolve_hparams(None) == DEFAULT_HPARAMS
    with pytest.raises(KeyError, match="rh0"):
        resolve_hparams({"rh0": 0.1})
    with pytest.raises(ValueError, match="ascent"):
        resolve_hparams({"ascent": "sideways"})
    with pytest.raises(ValueError, match="rho"):
        resolve_hparams({"rho": -1})
    with pytest.raises(KeyError, match="unknown algorithm"):
        build_algorithm("mixup", mlp())
