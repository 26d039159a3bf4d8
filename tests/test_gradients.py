"""Per-domain gradients and alignment measures against independent functional computations."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from method_cards.roga import ascent_epsilons
from tiny_models import cnn_with_bn, mlp
from torch import nn
from torch.func import functional_call

from workbench.algorithms import build_algorithm
from workbench.analysis.gradients import (
    alignment_summary,
    ascent_point_gradients,
    conflict_rate,
    cosine_matrix,
    domain_gradients,
    layerwise_cosine,
    parameter_groups,
    per_domain_perturbed_loss,
)
from workbench.models import create_model

RHO, ALPHA = 0.3, 0.05


def domain_batches(k: int = 3, n: int = 6, image: bool = False):
    gen = torch.Generator().manual_seed(1)
    shape = (n, 3, 8, 8) if image else (n, 6)
    return [
        (torch.randn(shape, generator=gen, dtype=torch.float64) + 0.5 * i, torch.randint(0, 2, (n,), generator=gen))
        for i in range(k)
    ]


def functional_grad(model: nn.Module, flat: torch.Tensor, x, y) -> torch.Tensor:
    """∇ of cross-entropy at flat parameter values, model in whatever mode it is (no analysis code)."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    leaf = flat.detach().clone().requires_grad_(True)
    params, offset = {}, 0
    for name, shape in zip(names, shapes):
        params[name] = leaf[offset : offset + shape.numel()].view(shape)
        offset += shape.numel()
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    loss = F.cross_entropy(functional_call(model, {**params, **buffers}, (x,)), y)
    return torch.autograd.grad(loss, leaf)[0]


def functional_loss(model: nn.Module, flat: torch.Tensor, x, y) -> float:
    params, offset = {}, 0
    for name, p in model.named_parameters():
        params[name] = flat[offset : offset + p.numel()].view(p.shape)
        offset += p.numel()
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    with torch.no_grad():
        return float(F.cross_entropy(functional_call(model, {**params, **buffers}, (x,)), y))


def flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def expected_perturbed(model: nn.Module, batches, ascent: str):
    """(g_k, g, g_k^p, L_k(θ+ε_k)) from the method card, computed functionally in eval mode."""
    model = copy.deepcopy(model).eval()
    theta = flat_params(model)
    grads = [functional_grad(model, theta, x, y) for x, y in batches]
    g = sum(grads) / len(grads)
    eps = ascent_epsilons(grads, RHO, ALPHA, ascent)
    perturbed = [functional_grad(model, theta + e, x, y) for e, (x, y) in zip(eps, batches)]
    losses = [functional_loss(model, theta + e, x, y) for e, (x, y) in zip(eps, batches)]
    return grads, g, perturbed, losses


def state_and_flags(model: nn.Module):
    return {k: v.clone() for k, v in model.state_dict().items()}, [m.training for m in model.modules()]


def assert_restored(model: nn.Module, before) -> None:
    state, flags = before
    after = model.state_dict()
    assert state.keys() == after.keys()
    for key in state:
        assert torch.equal(state[key], after[key]), key
    assert [m.training for m in model.modules()] == flags
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("make, image", [(mlp, False), (cnn_with_bn, True)])
def test_domain_gradients_match_functional_gradients_in_eval_mode(make, image):
    model = make()
    batches = domain_batches(image=image)
    expected = [functional_grad(copy.deepcopy(model).eval(), flat_params(model), x, y) for x, y in batches]
    got = domain_gradients(model, batches)
    assert len(got) == len(batches)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def test_train_mode_gradients_use_batch_statistics():
    model = cnn_with_bn()
    batches = domain_batches(image=True)
    reference = copy.deepcopy(model).train()
    expected = [functional_grad(reference, flat_params(model), x, y) for x, y in batches]
    for g, e in zip(domain_gradients(model, batches, mode="train"), expected):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def test_every_function_restores_weights_buffers_modes_and_grads():
    model = cnn_with_bn().train()
    model[1].eval()  # a mixed state must come back as it was
    batches = domain_batches(image=True)
    before = state_and_flags(model)
    for mode in ("eval", "train"):
        domain_gradients(model, batches, mode=mode)
        ascent_point_gradients(model, batches, RHO, ALPHA, mode=mode)
        alignment_summary(model, batches, RHO, ALPHA, mode=mode)
        per_domain_perturbed_loss(model, batches, RHO, ALPHA, mode=mode)
        layerwise_cosine(model, batches, mode=mode)
        assert_restored(model, before)


def test_cosine_matrix_and_conflict_rate_by_hand():
    vectors = [torch.tensor([1.0, 0.0]), torch.tensor([-2.0, 0.0]), torch.tensor([1.0, 1.0])]
    s = 2**-0.5
    expected = torch.tensor([[1.0, -1.0, s], [-1.0, 1.0, -s], [s, -s, 1.0]])
    torch.testing.assert_close(cosine_matrix(vectors), expected)
    assert conflict_rate(vectors) == pytest.approx(2 / 3)
    assert conflict_rate(vectors[::2]) == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        conflict_rate(vectors[:1])


@pytest.mark.parametrize("ascent", ["per_domain", "shared"])
def test_ascent_point_gradients_and_losses_follow_the_method_card(ascent):
    model = cnn_with_bn()
    batches = domain_batches(image=True)
    _, _, perturbed, losses = expected_perturbed(model, batches, ascent)
    got = ascent_point_gradients(model, batches, RHO, ALPHA, ascent=ascent)
    for g, e in zip(got, perturbed):
        torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-12)
    got_losses = per_domain_perturbed_loss(model, batches, RHO, ALPHA, ascent=ascent)
    assert got_losses == pytest.approx(losses, rel=1e-10)


def test_alignment_summary_values_and_keys():
    model = mlp()
    batches = domain_batches()
    grads, g, perturbed, losses = expected_perturbed(model, batches, "per_domain")
    names = ["DF", "F2F", "FS"]
    summary = alignment_summary(model, batches, RHO, ALPHA, domain_names=names)
    for name, gk, gp, loss in zip(names, grads, perturbed, losses):
        assert summary[f"cos_clean/{name}"] == pytest.approx(cos(gk, g), rel=1e-9)
        assert summary[f"cos_perturbed/{name}"] == pytest.approx(cos(gp, g), rel=1e-9)
        assert summary[f"loss_perturbed/{name}"] == pytest.approx(loss, rel=1e-10)
    assert summary["cos_clean_mean"] == pytest.approx(sum(cos(gk, g) for gk in grads) / 3, rel=1e-9)
    assert summary["cos_perturbed_mean"] == pytest.approx(sum(cos(gp, g) for gp in perturbed) / 3, rel=1e-9)
    assert summary["grad_norm"] == pytest.approx(float(g.norm()), rel=1e-10)
    pairs = [(0, 1), (0, 2), (1, 2)]
    assert summary["conflict_rate"] == pytest.approx(sum(cos(grads[i], grads[j]) < 0 for i, j in pairs) / 3)
    assert summary["conflict_rate_perturbed"] == pytest.approx(
        sum(cos(perturbed[i], perturbed[j]) < 0 for i, j in pairs) / 3
    )
    with pytest.raises(ValueError, match="at least 2"):
        alignment_summary(model, batches[:1], RHO, ALPHA)
    with pytest.raises(ValueError, match="2 domain names for 3"):
        alignment_summary(model, batches, RHO, ALPHA, domain_names=names[:2])


def test_train_mode_summary_reproduces_roga_statistics():
    """With the same ρ, α and train-mode BN, the analysis sees exactly what RoGA's update optimises."""
    model = cnn_with_bn().train()
    batches = domain_batches(image=True)
    summary = alignment_summary(model, batches, RHO, ALPHA, mode="train")
    stats = build_algorithm("roga", model, {"rho": RHO, "alpha": ALPHA, "precision": "fp32"}).update(batches)
    for key in ("cos_clean_mean", "cos_perturbed_mean", "grad_norm"):
        assert summary[key] == pytest.approx(stats[key], rel=1e-6), key
    assert summary["loss_mean"] == pytest.approx(stats["loss"], rel=1e-6)
    assert summary["loss_perturbed_mean"] == pytest.approx(stats["loss_perturbed"], rel=1e-6)


def test_bad_batches_are_rejected_with_the_domain_named():
    model = mlp()
    batches = domain_batches()
    with pytest.raises(ValueError, match="at least 1"):
        domain_gradients(model, [])
    broken = batches[:1] + [(batches[1][0], batches[1][1][:2])]
    with pytest.raises(ValueError, match="domain batch 1"):
        domain_gradients(model, broken)


def test_parameter_groups_follow_timm_stages():
    model = create_model("test_resnet")
    groups = parameter_groups(model)
    assert list(groups) == ["act1", "layer1", "layer2", "layer3", "layer4", "head"]
    sizes = {
        name: sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefix))
        for name, prefix in [("layer1", "layer1."), ("head", "fc.")]
    }
    stem = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("conv1.", "bn1.")))
    assert len(groups["act1"]) == stem
    assert len(groups["layer1"]) == sizes["layer1"] and len(groups["head"]) == sizes["head"]
    everything = torch.sort(torch.cat(list(groups.values()))).values
    assert torch.equal(everything, torch.arange(sum(p.numel() for p in model.parameters())))
    deeper = parameter_groups(model, depth=2)
    assert {"layer1.0", "layer2.0", "fc"} <= set(deeper)
    assert all(name.count(".") <= 1 for name in deeper)


def test_parameter_groups_fall_back_to_children_and_skip_frozen():
    model = mlp()
    model[0].bias.requires_grad_(False)
    groups = parameter_groups(model)
    assert list(groups) == ["0", "2"]
    assert groups["0"].tolist() == list(range(48)) and groups["2"].tolist() == list(range(48, 66))


def test_layerwise_cosine_matches_per_layer_hand_computation():
    model = mlp()
    batches = domain_batches()
    grads, g, _, _ = expected_perturbed(model, batches, "per_domain")
    frame = layerwise_cosine(model, batches, domain_names=["a", "b", "c"])
    assert list(frame.columns) == ["a", "b", "c"] and list(frame.index) == ["0", "2", "all"]
    first, second = slice(0, 6 * 8 + 8), slice(6 * 8 + 8, None)
    for col, gk in zip(frame.columns, grads):
        assert frame.loc["0", col] == pytest.approx(cos(gk[first], g[first]), rel=1e-9)
        assert frame.loc["2", col] == pytest.approx(cos(gk[second], g[second]), rel=1e-9)
        assert frame.loc["all", col] == pytest.approx(cos(gk, g), rel=1e-9)
