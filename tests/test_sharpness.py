"""ε-sharpness against hand computations, including a model whose exact maximiser is known."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from tiny_models import cnn_with_bn
from torch import nn

from workbench.analysis.sharpness import epsilon_sharpness, sharpness_per_domain


def domain_batches(k: int = 2, n: int = 6):
    gen = torch.Generator().manual_seed(1)
    return [
        (torch.randn((n, 3, 8, 8), generator=gen, dtype=torch.float64) + i, torch.randint(0, 2, (n,), generator=gen))
        for i in range(k)
    ]


def hand_sharpness(model: nn.Module, x, y, rho: float) -> float:
    """L(θ + ρ g/‖g‖) − L(θ) with plain autograd on an eval-mode copy."""
    model = copy.deepcopy(model).eval()
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads):
            p.add_(rho * g / (norm + 1e-12))
        return float(F.cross_entropy(model(x), y) - loss)


def test_one_step_sharpness_matches_hand_computation():
    model = cnn_with_bn()
    x, y = domain_batches()[0]
    assert epsilon_sharpness(model, (x, y), 0.2) == pytest.approx(hand_sharpness(model, x, y, 0.2), rel=1e-10)
    assert epsilon_sharpness(model, (x, y), 0.0) == 0.0


def test_multi_step_stays_in_the_ball_and_finds_the_exact_maximum_of_a_linear_model():
    """One sample, linear logits: the loss is softplus(−margin) with the margin linear in θ, so the
    maximum over ‖ε‖ ≤ ρ is softplus(−(m − ρ‖∇m‖)). Stepping outside the ball would exceed it."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2).double()
    x = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    y = torch.tensor([1])
    rho = 0.3
    with torch.no_grad():
        logits = model(x)[0]
        margin = float(logits[1] - logits[0])
    grad_margin_norm = math.sqrt(2 * (float((x**2).sum()) + 1))  # d margin / d(W, b): ±x and ±1
    clean = math.log1p(math.exp(-margin))
    exact = math.log1p(math.exp(-(margin - rho * grad_margin_norm))) - clean
    assert epsilon_sharpness(model, (x, y), rho) == pytest.approx(exact, rel=1e-9)
    assert epsilon_sharpness(model, (x, y), rho, steps=5) == pytest.approx(exact, rel=1e-9)


def test_more_steps_never_lower_the_estimate():
    model = cnn_with_bn()
    batch = domain_batches()[0]
    one = epsilon_sharpness(model, batch, 0.5)
    assert epsilon_sharpness(model, batch, 0.5, steps=4) >= one


def test_sharpness_per_domain_frame():
    model = cnn_with_bn()
    batches = domain_batches()
    frame = sharpness_per_domain(model, batches, [0.05, 0.2], domain_names=["A", "B"])
    assert list(frame.columns) == ["domain", "rho", "sharpness", "loss", "loss_perturbed"]
    assert frame[["domain", "rho"]].values.tolist() == [["A", 0.05], ["A", 0.2], ["B", 0.05], ["B", 0.2]]
    for row in frame.itertuples():
        x, y = batches["AB".index(row.domain)]
        assert row.sharpness == pytest.approx(hand_sharpness(model, x, y, row.rho), rel=1e-9)
        assert row.loss_perturbed - row.loss == pytest.approx(row.sharpness, abs=1e-12)


def test_sharpness_restores_the_model_and_rejects_bad_arguments():
    model = cnn_with_bn().train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    batches = domain_batches()
    epsilon_sharpness(model, batches[0], 0.3, steps=3)
    sharpness_per_domain(model, batches, [0.1], steps=2)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="steps"):
        epsilon_sharpness(model, batches[0], 0.1, steps=0)
    with pytest.raises(ValueError, match="rho=-0.1"):
        sharpness_per_domain(model, batches, [-0.1])


class Periodic(nn.Module):
    """Fake-logit 3 sin(w): a ρ-step that overshoots a full period can lower the loss."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([w], dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fake = 3 * torch.sin(self.w).expand(len(x))
        return torch.stack([torch.zeros_like(fake), fake], dim=1)


def test_an_ascent_step_that_lowers_the_loss_counts_as_zero_sharpness():
    """ε = 0 lies in the ball: max_{‖ε‖≤ρ} L(θ + ε) ≥ L(θ), whatever the first-order step finds."""
    model, rho = Periodic(math.pi / 2 + 0.5), 2 * math.pi - 0.5
    batch = (torch.zeros(4, 1, dtype=torch.float64), torch.ones(4, dtype=torch.long))
    assert hand_sharpness(model, *batch, rho) < -0.01  # the ascent point (w + ρ: sin = 1) lowers the loss
    assert epsilon_sharpness(model, batch, rho) == 0.0
    frame = sharpness_per_domain(model, [batch], [rho])
    assert (
        frame.loc[0, "loss_perturbed"]
        == frame.loc[0, "loss"]
        == pytest.approx(math.log1p(math.exp(-3 * math.cos(0.5))))
    )
