"""Filter-normalised directions, 1-D/2-D loss grids and checkpoint interpolation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_models import cnn_with_bn
from torch import nn

from workbench.analysis.landscape import (
    filter_normalized_direction,
    interpolate_checkpoints,
    loss_along_direction,
    loss_grid_1d,
    loss_grid_2d,
)


def batch(n: int = 10):
    gen = torch.Generator().manual_seed(1)
    return torch.randn((n, 3, 8, 8), generator=gen, dtype=torch.float64), torch.randint(0, 2, (n,), generator=gen)


def with_stats(model: nn.Module) -> nn.Module:
    """Give BN non-trivial running statistics so eval mode differs from train mode."""
    model.train()
    with torch.no_grad():
        model(batch()[0] * 3 + 1)
    return model


def eval_loss_acc(model: nn.Module, flat: torch.Tensor, x, y) -> tuple[float, float]:
    """Loss/accuracy of an eval-mode copy with its parameters set to ``flat`` (no analysis code)."""
    model = copy.deepcopy(model).eval()
    torch.nn.utils.vector_to_parameters(flat, model.parameters())
    with torch.no_grad():
        logits = model(x)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).double().mean())


def flat(model: nn.Module) -> torch.Tensor:
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach()


def split(model: nn.Module, vector: torch.Tensor) -> dict[str, torch.Tensor]:
    out, offset = {}, 0
    for name, p in model.named_parameters():
        out[name] = vector[offset : offset + p.numel()].view(p.shape)
        offset += p.numel()
    return out


def test_filter_norms_equal_weight_filter_norms_and_bn_bias_are_zero():
    model = cnn_with_bn()
    parts = split(model, filter_normalized_direction(model, seed=3))
    params = dict(model.named_parameters())
    for name in ("0.weight", "5.weight"):
        weight = params[name].detach()
        for i in range(weight.shape[0]):
            assert float(parts[name][i].norm()) == pytest.approx(float(weight[i].norm()), rel=1e-12)
    for name in ("0.bias", "1.weight", "1.bias", "5.bias"):
        assert torch.count_nonzero(parts[name]) == 0, name


def test_including_bn_and_bias_rescales_them_to_their_own_norm():
    model = cnn_with_bn()
    parts = split(model, filter_normalized_direction(model, seed=3, ignore_bn_and_bias=False))
    params = dict(model.named_parameters())
    for name in ("0.bias", "1.weight", "1.bias", "5.bias"):
        assert float(parts[name].norm()) == pytest.approx(float(params[name].detach().norm()), rel=1e-12)


def test_directions_are_reproducible_by_seed():
    model = cnn_with_bn()
    a = filter_normalized_direction(model, seed=7)
    assert torch.equal(a, filter_normalized_direction(model, seed=7))
    assert not torch.equal(a, filter_normalized_direction(model, seed=8))
    assert a.dtype == torch.float64 and a.shape == flat(model).shape


def test_loss_grid_1d_matches_hand_evaluation_and_centre_is_the_loss_at_theta():
    model = with_stats(cnn_with_bn())
    x, y = batch()
    d = filter_normalized_direction(model, seed=0)
    alphas = [-0.5, 0.0, 0.25, 1.0]
    curve = loss_grid_1d(model, (x, y), d, alphas)
    for i, alpha in enumerate(alphas):
        loss, acc = eval_loss_acc(model, flat(model) + alpha * d, x, y)
        assert curve.loss[i] == pytest.approx(loss, rel=1e-12)
        assert curve.acc[i] == pytest.approx(acc)
    assert curve.loss[1] == pytest.approx(eval_loss_acc(model, flat(model), x, y)[0], rel=1e-12)
    np.testing.assert_array_equal(curve.coords, alphas)
    np.testing.assert_array_equal(loss_along_direction(model, (x, y), d, alphas), curve.loss)


def test_loss_grid_2d_points_and_centre():
    model = with_stats(cnn_with_bn())
    x, y = batch()
    d1, d2 = filter_normalized_direction(model, 0), filter_normalized_direction(model, 1)
    alphas, betas = [-1.0, 0.0, 1.0], [-0.5, 0.0, 0.5, 1.0]
    surface = loss_grid_2d(model, (x, y), d1, d2, alphas, betas)
    assert surface.loss.shape == surface.acc.shape == (3, 4)
    assert surface.loss[1, 1] == pytest.approx(eval_loss_acc(model, flat(model), x, y)[0], rel=1e-12)
    loss, acc = eval_loss_acc(model, flat(model) - d1 + 0.5 * d2, x, y)
    assert surface.loss[0, 2] == pytest.approx(loss, rel=1e-12) and surface.acc[0, 2] == pytest.approx(acc)


def test_grids_restore_the_model_and_check_direction_size():
    model = with_stats(cnn_with_bn()).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    d = filter_normalized_direction(model, 0)
    loss_grid_1d(model, batch(), d, [0.3])
    loss_grid_2d(model, batch(), d, d, [0.3], [0.1, 0.2])
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match=r"direction must be a flat vector of 130 values .* got shape \(129,\)"):
        loss_grid_1d(model, batch(), d[:-1], [0.0])


def test_interpolation_end_points_and_midpoint():
    model_a, model_b = with_stats(cnn_with_bn(0)), with_stats(cnn_with_bn(1))
    with torch.no_grad():
        model_b(batch()[0] - 2)  # different running statistics at the two ends
    state_a, state_b = copy.deepcopy(model_a.state_dict()), copy.deepcopy(model_b.state_dict())
    x, y = batch()
    model = cnn_with_bn(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    curve = interpolate_checkpoints(model, state_a, {"model": state_b, "step": 5}, (x, y), [0.0, 0.5, 1.0])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

    def loss_of(state):
        reference = cnn_with_bn().eval()
        reference.load_state_dict(state)
        with torch.no_grad():
            return float(F.cross_entropy(reference(x), y))

    assert curve.loss[0] == loss_of(state_a)
    assert curve.loss[2] == loss_of(state_b)
    mid = {
        k: (0.5 * state_a[k] + 0.5 * state_b[k]) if v.is_floating_point() else state_b[k] for k, v in state_a.items()
    }
    assert curve.loss[1] == pytest.approx(loss_of(mid), rel=1e-12)
    nearest = interpolate_checkpoints(model, state_a, state_b, (x, y), [0.4], buffers="nearest")
    mid_nearest = {
        k: (0.6 * state_a[k] + 0.4 * state_b[k]) if k.endswith(("weight", "bias")) else state_a[k] for k in state_a
    }
    assert nearest.loss[0] == pytest.approx(loss_of(mid_nearest), rel=1e-12)


class TiedHead(nn.Module):
    """Two heads sharing one weight (``b.weight`` is ``a.weight``): the state dict lists it twice."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.a, self.b = nn.Linear(6, 2).double(), nn.Linear(6, 2).double()
        self.b.weight = self.a.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(x)


def test_nearest_buffers_still_interpolate_tied_weights():
    model = TiedHead()
    state_a = {k: v.clone() for k, v in model.state_dict().items()}
    state_b = {k: -2 * v for k, v in state_a.items()}
    x, y = torch.randn(8, 6, dtype=torch.float64), torch.randint(0, 2, (8,))
    reference = TiedHead()
    reference.load_state_dict({k: 0.75 * state_a[k] + 0.25 * state_b[k] for k in state_a})
    with torch.no_grad():
        expected = float(F.cross_entropy(reference(x), y))
    curve = interpolate_checkpoints(model, state_a, state_b, (x, y), [0.25], buffers="nearest")
    assert curve.loss[0] == pytest.approx(expected, rel=1e-12)


def test_interpolation_rejects_mismatched_states():
    model = cnn_with_bn()
    state = model.state_dict()
    broken = {k: v for k, v in state.items() if k != "5.bias"}
    with pytest.raises(ValueError, match=r"state_b does not match the model: missing \['5.bias'\]"):
        interpolate_checkpoints(model, state, broken, batch(), [0.5])
    wrong = dict(state, **{"5.bias": torch.zeros(3, dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"state_a\['5.bias'\] has shape \(3,\)"):
        interpolate_checkpoints(model, wrong, state, batch(), [0.5])


def test_float32_grids_run_channels_last_on_a_copy_and_agree_with_the_default_layout():
    model = with_stats(cnn_with_bn()).float()
    x, y = batch()
    x = x.float()
    strides = {k: v.stride() for k, v in model.state_dict().items()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    d = filter_normalized_direction(model, seed=0)
    curve = loss_grid_1d(model, (x, y), d, [0.0, 0.5])
    for alpha, loss in zip([0.0, 0.5], curve.loss):
        assert loss == pytest.approx(eval_loss_acc(model, flat(model) + alpha * d, x, y)[0], rel=1e-5)
    assert {k: v.stride() for k, v in model.state_dict().items()} == strides
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_channels_last_models_get_the_same_directions_and_losses():
    """ParamVector order follows memory layout; directions and grids must not depend on it."""
    from workbench.algorithms.param_vector import ParamVector

    model = with_stats(cnn_with_bn()).float()
    nhwc = copy.deepcopy(model).to(memory_format=torch.channels_last)
    d, d_nhwc = filter_normalized_direction(model, 4), filter_normalized_direction(nhwc, 4)
    for a, b in zip(ParamVector(model).views(d), ParamVector(nhwc).views(d_nhwc)):
        assert torch.equal(a, b)
    x, y = batch()
    x = x.float()
    np.testing.assert_allclose(
        loss_along_direction(nhwc, (x, y), d_nhwc, [0.5, 1.0]),
        loss_along_direction(model, (x, y), d, [0.5, 1.0]),
        rtol=1e-5,
    )
