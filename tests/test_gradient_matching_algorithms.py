"""The gradient-matching baselines beyond their method cards: DomainBed's semantics (pairs and scaling,
inner optimizers, annealing and resets, moving averages, masks) written out by hand, and the running
statistics of MLDG and Fish, whose cards cannot name the inputs of the passes that move them."""

from __future__ import annotations

import copy
import math
from itertools import cycle

import pytest
import torch
import torch.nn.functional as F
from tiny_models import cnn_with_bn, mlp
from torch import nn

from workbench.algorithms import build_algorithm
from workbench.algorithms.andmask import masked_mean_gradient, masked_mean_gradient_per_tensor
from workbench.algorithms.fishr import per_sample_grads, variance_penalty
from workbench.algorithms.mldg import meta_pairs
from workbench.algorithms.sandmask import domain_variance, sand_mask

UNIT_SGD = {"optimizer": "sgd", "lr": 1.0, "momentum": 0.0, "weight_decay": 0.0}


def batches_of(sizes, image=False, dtype=torch.float64, seed=3):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for k, n in enumerate(sizes):
        x = torch.randn((n, 3, 8, 8) if image else (n, 6), generator=gen, dtype=dtype) + k
        out.append((x, torch.randint(0, 2, (n,), generator=gen)))
    return out


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def grad_at(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss = F.cross_entropy(model(x), y)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])


# --- MLDG --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k,n_meta_test", [(3, 1), (3, 2), (4, 1), (4, 2), (4, 3)])
def test_mldg_pairs_follow_split_meta_train_test(k, n_meta_test):
    batches = batches_of([5 + i for i in range(k)])
    torch.manual_seed(11)
    pairs = meta_pairs(batches, n_meta_test)
    torch.manual_seed(11)
    perm = torch.randperm(k).tolist()
    train, test = perm[: k - n_meta_test], perm[-n_meta_test:]
    assert len(pairs) == k - n_meta_test
    for ((xi, yi), (xj, yj)), i, j in zip(pairs, train, cycle(test)):
        n = min(len(batches[i][0]), len(batches[j][0]))
        assert len(xi) == len(yi) == len(xj) == len(yj) == n
        assert torch.equal(xi, batches[i][0][:n]) and torch.equal(yj, batches[j][1][:n])
        assert torch.equal(xj, batches[j][0][:n])


@pytest.mark.parametrize("k,n_meta_test", [(3, 1), (3, 2), (4, 1), (4, 2)])
def test_mldg_sums_the_pairs_and_divides_by_the_number_of_domains(k, n_meta_test):
    """β = 0: the step is Σ over meta-train domains of G_i / K (K, not the K − n_meta_test pairs)."""
    batches = batches_of([6, 4, 5, 6][:k])
    model = mlp()
    reference = copy.deepcopy(model)
    torch.manual_seed(5)
    perm = torch.randperm(k).tolist()
    expected = torch.zeros_like(flat(model))
    objective = 0.0
    for i, j in zip(perm[: k - n_meta_test], cycle(perm[-n_meta_test:])):
        n = min(len(batches[i][0]), len(batches[j][0]))
        expected += grad_at(reference, batches[i][0][:n], batches[i][1][:n])
        objective += F.cross_entropy(reference(batches[i][0][:n]), batches[i][1][:n]).item()
    before = flat(model)
    algo = build_algorithm("mldg", model, {**UNIT_SGD, "mldg_beta": 0.0, "n_meta_test": n_meta_test}, num_domains=k)
    torch.manual_seed(5)
    stats = algo.update(batches)
    torch.testing.assert_close(before - flat(model), expected / k, rtol=1e-10, atol=1e-12)
    assert stats["loss"] == pytest.approx(objective / k, rel=1e-6)


def test_mldg_with_adam_equals_domainbeds_deep_copy_procedure():
    """A fresh Adam per pair on a copy of the network (DomainBed), β-weighted meta-test gradients at its
    one-step point, accumulated / K into the base Adam's gradient."""
    hp = {"optimizer": "adam", "lr": 1e-2, "weight_decay": 1e-3, "mldg_beta": 0.6, "n_meta_test": 1}
    batches = batches_of([6, 4, 5])
    model = mlp()
    network = copy.deepcopy(model)
    outer = torch.optim.Adam(network.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    algo = build_algorithm("mldg", model, hp, num_domains=3)
    for step in range(2):
        torch.manual_seed(step)
        stats = algo.update(batches)
        torch.manual_seed(step)
        perm = torch.randperm(3).tolist()
        outer.zero_grad()
        for p in network.parameters():
            p.grad = torch.zeros_like(p)
        objective = 0.0
        for i, j in zip(perm[:2], cycle(perm[-1:])):
            n = min(len(batches[i][0]), len(batches[j][0]))
            inner = copy.deepcopy(network)
            inner_opt = torch.optim.Adam(inner.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
            loss_i = F.cross_entropy(inner(batches[i][0][:n]), batches[i][1][:n])
            inner_opt.zero_grad()
            loss_i.backward()
            inner_opt.step()
            for p, q in zip(network.parameters(), inner.parameters()):
                p.grad += q.grad / 3
            loss_j = F.cross_entropy(inner(batches[j][0][:n]), batches[j][1][:n])
            for p, g in zip(network.parameters(), torch.autograd.grad(loss_j, list(inner.parameters()))):
                p.grad += hp["mldg_beta"] * g / 3
            objective += loss_i.item() + hp["mldg_beta"] * loss_j.item()
        outer.step()
        torch.testing.assert_close(flat(model), flat(network), rtol=1e-10, atol=1e-12)
        assert stats["loss"] == pytest.approx(objective / 3, rel=1e-6)


def test_mldg_refuses_n_meta_test_of_at_least_the_number_of_domains():
    with pytest.raises(ValueError, match=r"n_meta_test=2 leaves no meta-train domain among 2"):
        build_algorithm("mldg", mlp(), {"n_meta_test": 2}, num_domains=2)
    algo = build_algorithm("mldg", mlp(), {"n_meta_test": 3})
    with pytest.raises(ValueError, match=r"n_meta_test=3 leaves no meta-train domain among 3"):
        algo.update(batches_of([4, 4, 4]))
    with pytest.raises(ValueError, match="n_meta_test"):
        build_algorithm("mldg", mlp(), {"n_meta_test": 0})


def test_mldg_running_stats_move_only_in_the_meta_train_passes():
    """In pair order, on the meta-train batches cut to their pair's size; the meta-test passes at θ' are frozen."""
    batches = batches_of([6, 4, 5], image=True, dtype=torch.float32)
    model = cnn_with_bn(dtype=torch.float32)
    reference = copy.deepcopy(model).train()
    torch.manual_seed(3)
    perm = torch.randperm(3).tolist()
    with torch.no_grad():
        for i, j in zip(perm[:2], cycle(perm[-1:])):
            reference(batches[i][0][: min(len(batches[i][0]), len(batches[j][0]))])
    torch.manual_seed(3)
    build_algorithm("mldg", model.train(), {"lr": 1e-3, "n_meta_test": 1}, num_domains=3).update(batches)
    bn, ref = model[1], reference[1]
    assert torch.equal(bn.running_mean, ref.running_mean) and torch.equal(bn.running_var, ref.running_var)
    assert int(bn.num_batches_tracked) == int(ref.num_batches_tracked) == 2


# --- Fish --------------------------------------------------------------------------------------------


def domainbed_fish_update(network: nn.Module, inner_state, batches, hp):
    """DomainBed's Fish: a copy of the network, an Adam carrying ``inner_state``, K steps, then the
    state-dict interpolation meta + meta_lr (inner − meta) loaded back (integer buffers truncated)."""
    inner = copy.deepcopy(network)
    optimizer = torch.optim.Adam(inner.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    if inner_state is not None:
        optimizer.load_state_dict(inner_state)
    for x, y in batches:
        loss = F.cross_entropy(inner(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    meta, inner_weights = network.state_dict(), inner.state_dict()
    network.load_state_dict({k: v + hp["meta_lr"] * (inner_weights[k] - v) for k, v in meta.items()})
    return optimizer.state_dict()


def test_fish_equals_domainbeds_clone_procedure_buffers_included():
    """Three updates on a BatchNorm network: weights, running statistics and the truncated batch count."""
    hp = {"optimizer": "adam", "lr": 1e-2, "weight_decay": 1e-3, "meta_lr": 0.5}
    model = cnn_with_bn()
    network = copy.deepcopy(model)
    algo = build_algorithm("fish", model, hp, num_domains=3)
    inner_state = None
    for step in range(3):
        batches = batches_of([4, 4, 4], image=True, seed=step)
        algo.update(batches)
        inner_state = domainbed_fish_update(network, inner_state, batches, hp)
        for (key, mine), theirs in zip(model.state_dict().items(), network.state_dict().values()):
            torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-12, msg=f"step {step}, {key}")
    assert [int(model[1].num_batches_tracked)] == [int(network[1].num_batches_tracked)] == [3]  # 1.5→1, 2.5→2, 3.5→3


def test_fish_with_meta_lr_one_is_k_plain_sequential_steps():
    hp = {"optimizer": "adam", "lr": 1e-2, "weight_decay": 1e-3, "meta_lr": 1.0}
    model = mlp()
    plain = copy.deepcopy(model)
    optimizer = torch.optim.Adam(plain.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    algo = build_algorithm("fish", model, hp, num_domains=3)
    for step in range(2):
        batches = batches_of([5, 5, 5], seed=step)
        stats = algo.update(batches)
        losses = []
        for x, y in batches:
            loss = F.cross_entropy(plain(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        torch.testing.assert_close(flat(model), flat(plain), rtol=1e-12, atol=1e-14)
        assert stats["loss"] == pytest.approx(sum(losses) / 3, rel=1e-6)


def test_fish_with_meta_lr_zero_keeps_the_weights_but_advances_the_inner_optimizer():
    model = mlp()
    before = flat(model)
    algo = build_algorithm("fish", model, {"optimizer": "adam", "meta_lr": 0.0}, num_domains=3)
    algo.update(batches_of([5, 5, 5]))
    assert torch.equal(flat(model), before)
    assert all(int(state["step"]) == 3 for state in algo.optimizer.state.values())


# --- Fishr -------------------------------------------------------------------------------------------


def loop_per_sample_grads(head: nn.Module, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    rows = []
    for i in range(len(z)):
        loss = F.cross_entropy(head(z[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, list(head.parameters()), create_graph=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def test_fishr_per_sample_grads_equal_a_per_sample_loop_and_the_penalty_reaches_the_features():
    torch.manual_seed(0)
    head = nn.Linear(5, 2).double()
    z = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 2, (9,))
    vectorised, looped = per_sample_grads(head, z, y), loop_per_sample_grads(head, z, y)
    torch.testing.assert_close(vectorised, looped, rtol=1e-12, atol=1e-14)

    def penalty(grads):
        return variance_penalty(torch.stack([(g - g.mean(0)).pow(2).mean(0) for g in grads.split([4, 5])]))

    targets = [z, *head.parameters()]
    mine = torch.autograd.grad(penalty(vectorised), targets)
    theirs = torch.autograd.grad(penalty(looped), targets)
    assert mine[0].abs().sum() > 0
    for a, b in zip(mine, theirs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)


def adam_steps(algo) -> list[int]:
    return sorted({int(state["step"]) for state in algo.optimizer.state.values()})


@pytest.mark.parametrize("anneal,expected", [(2, [[1], [2], [1], [2]]), (0, [[1], [2], [3], [4]])])
def test_fishr_resets_its_optimizer_exactly_at_penalty_anneal_iters(anneal, expected):
    hp = {"optimizer": "adam", "lr": 1e-3, "lambda": 5.0, "penalty_anneal_iters": anneal}
    algo = build_algorithm("fishr", mlp(), hp, num_domains=3)
    seen = []
    for step in range(4):
        stats = algo.update(batches_of([4, 5, 6], seed=step))
        seen.append(adam_steps(algo))
        weight = 5.0 if step >= anneal else 0.0
        assert stats["loss"] == pytest.approx(stats["nll"] + weight * stats["penalty"], rel=1e-6)
    assert seen == expected


class MovingAverage:
    """DomainBed's ``lib.misc.MovingAverage(ema, oneminusema_correction=True)`` arithmetic, by hand."""

    def __init__(self, ema):
        self.ema, self.data, self.updates = ema, None, 0

    def update(self, value):
        previous = torch.zeros_like(value) if self.updates == 0 else self.data
        current = self.ema * previous + (1 - self.ema) * value
        self.data, self.updates = current.clone().detach(), self.updates + 1
        return current / (1 - self.ema)


def test_fishr_moving_averages_follow_domainbeds_arithmetic_over_three_updates():
    ema = 0.7
    model = mlp()
    algo = build_algorithm(
        "fishr", model, {**UNIT_SGD, "lr": 0.1, "ema": ema, "penalty_anneal_iters": 1, "lambda": 2.0}, num_domains=3
    )
    averages = [MovingAverage(ema) for _ in range(3)]
    for step in range(3):
        batches = batches_of([4, 5, 6], seed=10 + step)
        x = torch.cat([b[0] for b in batches])
        y = torch.cat([b[1] for b in batches])
        grads = loop_per_sample_grads(model[-1], model[:-1](x), y).detach()
        variances = [(g - g.mean(0)).pow(2).mean(0) for g in grads.split([4, 5, 6])]
        corrected = [average.update(v) for average, v in zip(averages, variances)]
        mean = sum(corrected) / 3
        penalty = sum(((c - mean) ** 2).mean() for c in corrected) / 3
        stats = algo.update(batches)
        stored = algo.extra_state()["moving_average"]
        torch.testing.assert_close(stored, torch.stack([a.data for a in averages]), rtol=1e-12, atol=1e-15)
        assert not stored.requires_grad
        assert stats["penalty"] == pytest.approx(penalty.item(), rel=1e-6)
    assert algo.extra_state()["update_count"] == 3


def test_fishr_needs_num_domains():
    with pytest.raises(ValueError, match="num_domains"):
        build_algorithm("fishr", mlp(), {})


# --- AND-mask and SAND-mask --------------------------------------------------------------------------


def test_andmask_with_tau_zero_steps_with_the_mean_gradient():
    batches = batches_of([5, 5, 5])
    model = mlp()
    reference = copy.deepcopy(model)
    expected = sum(grad_at(reference, x, y) for x, y in batches) / 3
    before = flat(model)
    build_algorithm("andmask", model, {**UNIT_SGD, "tau": 0.0}, num_domains=3).update(batches)
    torch.testing.assert_close(before - flat(model), expected, rtol=1e-9, atol=1e-14)


def test_andmask_keeps_exactly_the_entries_whose_signs_agree():
    grads = torch.tensor(
        [[1.0, -2.0, 3.0, 0.5, -1.0], [2.0, 1.0, 1.0, -0.5, -3.0]], dtype=torch.float64
    )  # two tensors: 3 and 2 entries
    algo = build_algorithm("andmask", mlp(), {"tau": 1.0})
    mask = algo.mask(grads)
    assert mask.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    direction = masked_mean_gradient(grads, mask, [3, 2])
    expected = torch.tensor([1.5 / (2 / 3), 0.0, 2.0 / (2 / 3), 0.0, -2.0 / 0.5], dtype=torch.float64)
    torch.testing.assert_close(direction, expected, rtol=1e-9, atol=0)
    three = torch.tensor([[1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)
    assert build_algorithm("andmask", mlp(), {"tau": 0.3}).mask(three).tolist() == [1.0, 1.0]
    assert build_algorithm("andmask", mlp(), {"tau": 0.4}).mask(three).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("name", ["andmask", "sandmask"])
def test_the_per_tensor_masked_gradient_on_the_cpu_equals_the_whole_vector_form(name):
    """The CPU's per-tensor path (the card tests' path) and the whole-vector path other devices take agree."""
    numels = [3, 2, 7, 1]
    grads = torch.randn(3, sum(numels), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    grads[:, 5:7] = grads[:1, 5:7]  # σ² = 0 entries for SAND-mask
    algo = build_algorithm(name, mlp(), {"tau": 0.3, **({"k": 2.0} if name == "sandmask" else {})})
    whole = masked_mean_gradient(grads, algo.mask(grads), numels)
    per_tensor = masked_mean_gradient_per_tensor(grads, numels, algo.mask, torch.empty(sum(numels), dtype=grads.dtype))
    torch.testing.assert_close(per_tensor, whole, rtol=1e-12, atol=0)
    assert whole.abs().sum() > 0


@pytest.mark.parametrize("domains", [1, 2, 5])
def test_domain_variance_is_torchs_unbiased_variance_over_the_domains(domains):
    grads = torch.randn(domains, 37, generator=torch.Generator().manual_seed(domains), dtype=torch.float64) * 3 + 1
    torch.testing.assert_close(domain_variance(grads), grads.var(dim=0), equal_nan=True, rtol=1e-12, atol=0.0)
    assert domain_variance(torch.tensor([[1.0, 4.0], [3.0, 4.0]])).tolist() == [2.0, 0.0]


def test_sandmask_on_a_hand_example():
    grads = torch.tensor([[1.0, 2.0, -1.0], [3.0, -2.0, -1.0]], dtype=torch.float64)
    # agreement |mean sign| = [1, 0, 1]; unbiased variance = [2, 8, 0]; λ = [1/2, 1/8, ∞]
    mask = sand_mask(grads, tau=0.5, k=1.0)
    torch.testing.assert_close(mask, torch.tensor([math.tanh(0.25), 0.0, 1.0], dtype=torch.float64))
    keep = (math.tanh(0.25) + 1.0) / 3
    expected = torch.tensor([2.0 * math.tanh(0.25) / keep, 0.0, -1.0 / keep], dtype=torch.float64)
    torch.testing.assert_close(masked_mean_gradient(grads, mask, [3]), expected, rtol=1e-9, atol=0)
    # τ = 1: agreement − τ ≤ 0 everywhere; 0 · ∞ (σ² = 0, full agreement) is NaN → 1e-17
    assert sand_mask(torch.tensor([[1.0, 1.0, 2.0], [1.0, -1.0, 3.0]]), tau=1.0, k=10.0).tolist() == [
        pytest.approx(1e-17),
        0.0,
        0.0,
    ]
    # one domain: the variance is NaN → 1e-17, so λ = 1e17
    single = sand_mask(torch.tensor([[0.5, -2.0]], dtype=torch.float64), tau=0.5, k=1.0)
    torch.testing.assert_close(single, torch.ones(2, dtype=torch.float64))


def test_sandmask_with_domainbeds_default_tau_does_not_move_the_weights():
    """DomainBed's default τ = 1 leaves nothing above the threshold (see the sandmask module docstring)."""
    model = mlp()
    before = flat(model)
    stats = build_algorithm("sandmask", model, UNIT_SGD, num_domains=3).update(batches_of([5, 5, 5]))
    assert torch.equal(flat(model), before) and stats["loss"] > 0
