"""DomainBed's invariance baselines (IRM, V-REx, GroupDRO, CORAL, MMD, Mixup) beyond the generic algorithm tests:
hand-computed penalties and weights, the annealing schedule and its optimizer reset, Mixup's running statistics,
uneven domain batches, and which updates can be captured in a CUDA graph."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from method_cards import CARDS
from method_cards.mixup import mixed_pairs
from tiny_models import cnn_with_bn, mlp
from torch import nn

from workbench.algorithms import ALGORITHMS, build_algorithm, resolve_hparams
from workbench.algorithms.coral import coral_distance
from workbench.algorithms.irm import irm_penalty
from workbench.algorithms.mmd import BANDWIDTHS, mmd_distance

INVARIANCE = ("irm", "vrex", "groupdro", "coral", "mmd", "mixup")
FROZEN = {"optimizer": "sgd", "lr": 0.0, "momentum": 0.0, "weight_decay": 0.0}
UNIT_SGD = {**FROZEN, "lr": 1.0}
LN3 = math.log(3.0)


def identity_model() -> nn.Module:
    """Logits (and penultimate features) equal the 2-d inputs: ``Identity`` then a 2 × 2 identity ``Linear``."""
    linear = nn.Linear(2, 2).double()
    with torch.no_grad():
        linear.weight.copy_(torch.eye(2))
        linear.bias.zero_()
    return nn.Sequential(nn.Identity(), linear)


def batch(rows, labels):
    return torch.tensor(rows, dtype=torch.float64), torch.tensor(labels)


def uneven_batches(seed: int, sizes=(5, 8, 3)):
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, 6, generator=gen, dtype=torch.float64) + k, torch.tensor([1, 0] * n)[:n])
        for k, n in enumerate(sizes)
    ]


def test_the_invariance_baselines_are_registered_with_domainbeds_names_and_defaults():
    defaults = {
        "irm": {"irm_lambda": 1e2, "irm_penalty_anneal_iters": 500},
        "vrex": {"vrex_lambda": 1e1, "vrex_penalty_anneal_iters": 500},
        "groupdro": {"groupdro_eta": 1e-2},
        "coral": {"mmd_gamma": 1.0},
        "mmd": {"mmd_gamma": 1.0},
        "mixup": {"mixup_alpha": 0.2},
    }
    for name, own in defaults.items():
        assert ALGORITHMS[name].family == "invariance"
        assert set(ALGORITHMS[name].HPARAMS) == set(own)
        assert {key: resolve_hparams(name)[key] for key in own} == own
    with pytest.raises(ValueError, match="irm_penalty_anneal_iters"):
        resolve_hparams("irm", {"irm_penalty_anneal_iters": 2.5})


@pytest.mark.parametrize("name", INVARIANCE)
def test_uneven_domain_batches_follow_the_method_card(name):
    """Domain batches of 5, 8 and 3 rows: IRM's odd/even halves, Mixup's truncation, per-domain splits."""
    model = mlp()
    reference = copy.deepcopy(model)
    hparams = {**UNIT_SGD, **CARDS[name].hparams}
    algorithm = build_algorithm(name, model, hparams, num_domains=3)
    params = {key: value.detach().clone() for key, value in reference.named_parameters()}
    state: dict = {}
    for step in range(3):
        batches = uneven_batches(seed=20 + step)
        torch.manual_seed(step)
        params = CARDS[name].step(reference, params, batches, resolve_hparams(name, hparams), state)
        torch.manual_seed(step)
        algorithm.update(batches)
        for key, value in model.named_parameters():
            torch.testing.assert_close(value, params[key], rtol=1e-9, atol=1e-11, msg=f"step {step}, {key}")


# --- IRM and V-REx: hand-computed penalties, annealing, optimizer reset ---------------------------------


def irm_example():
    """Three domains with logits (0, ln 3) or (0, 0): every CE and every ∂_w CE(w z, y) is known in closed form.

    With p = softmax(0, ln 3) = (1/4, 3/4): ∂_w CE = (3/4) ln 3 for y = 0 and −(1/4) ln 3 for y = 1; zero
    logits give 0. Domain A: even × odd = −(3/16) ln²3; B: 0; C (three rows; even half = rows 0 and 2):
    (3/4 ln 3)² = (9/16) ln²3.
    """
    a = batch([[0, LN3], [0, LN3]], [0, 1])
    b = batch([[0, 0], [0, 0]], [0, 1])
    c = batch([[0, LN3], [0, LN3], [0, LN3]], [0, 0, 0])
    risks = [(math.log(4) + math.log(4 / 3)) / 2, math.log(2), math.log(4)]
    penalties = [-3 / 16 * LN3**2, 0.0, 9 / 16 * LN3**2]
    return [a, b, c], risks, penalties


def test_irm_penalty_equals_the_hand_computed_value():
    batches, risks, penalties = irm_example()
    for (x, y), expected in zip(batches, penalties):
        assert irm_penalty(x, y).item() == pytest.approx(expected, abs=1e-14)
    hp = {**FROZEN, "irm_lambda": 7.0, "irm_penalty_anneal_iters": 1}
    algorithm = build_algorithm("irm", identity_model(), hp, num_domains=3)
    nll, penalty = sum(risks) / 3, sum(penalties) / 3
    first, second = algorithm.update(batches), algorithm.update(batches)
    # statistics come back as float32 values (as_floats)
    assert first == pytest.approx({"loss": nll + penalty, "nll": nll, "penalty": penalty}, rel=1e-6)
    assert second == pytest.approx({"loss": nll + 7.0 * penalty, "nll": nll, "penalty": penalty}, rel=1e-6)


def test_vrex_reports_the_mean_risk_and_the_population_variance():
    batches, risks, _ = irm_example()
    hp = {**FROZEN, "vrex_lambda": 3.0, "vrex_penalty_anneal_iters": 1}
    algorithm = build_algorithm("vrex", identity_model(), hp, num_domains=3)
    mean = sum(risks) / 3
    variance = sum((r - mean) ** 2 for r in risks) / 3
    first, second = algorithm.update(batches), algorithm.update(batches)
    assert first == pytest.approx({"loss": mean + variance, "nll": mean, "penalty": variance}, rel=1e-6)
    assert second == pytest.approx({"loss": mean + 3.0 * variance, "nll": mean, "penalty": variance}, rel=1e-6)


class RecordingReducer:
    graph_safe = False

    def __init__(self):
        self.calls = 0

    def all_reduce_mean_(self, tensor):
        self.calls += 1
        return tensor


@pytest.mark.parametrize("name", ["irm", "vrex"])
@pytest.mark.parametrize("anneal", [0, 2])
def test_the_optimizer_is_reset_exactly_at_the_anneal_update(name, anneal):
    """Adam's per-parameter step counter restarts at update ``anneal`` (and nowhere else); the fresh optimizer
    still averages gradients once per step in distributed training."""
    hp = {"optimizer": "adam", "lr": 1e-2, f"{name}_lambda": 5.0, f"{name}_penalty_anneal_iters": anneal}
    algorithm = build_algorithm(name, mlp(), hp, num_domains=3)
    algorithm.distributed = reducer = RecordingReducer()
    first = algorithm.vector.params[0]
    counters, optimizers = [], []
    for step in range(4):
        algorithm.update(uneven_batches(seed=step))
        counters.append(int(algorithm.optimizer.state[first]["step"]))
        optimizers.append(algorithm.optimizer)
    expected = [step + 1 if step < anneal else step - anneal + 1 for step in range(4)]
    assert counters == expected
    assert [optimizers[i] is not optimizers[i - 1] for i in range(1, 4)] == [i == anneal for i in range(1, 4)]
    assert reducer.calls == 4
    assert algorithm.extra_state() == {"update_count": 4}


@pytest.mark.parametrize("name", ["irm", "vrex"])
def test_a_checkpoint_taken_before_the_anneal_update_resumes_through_it(name):
    """Saved after one update, restored, then the reset at update 2 happens on the restored algorithm too."""
    hp = {"optimizer": "adam", "lr": 1e-2, f"{name}_lambda": 5.0, f"{name}_penalty_anneal_iters": 2}
    algorithm = build_algorithm(name, mlp(), hp, num_domains=3)
    algorithm.update(uneven_batches(seed=0))
    restored = build_algorithm(name, mlp(), hp, num_domains=3)
    restored.load_state_dict(copy.deepcopy(algorithm.state_dict()))
    assert restored.update_count == 1
    for step in range(1, 4):
        stats = [target.update(uneven_batches(seed=step)) for target in (algorithm, restored)]
        assert stats[0] == stats[1]
    for a, b in zip(algorithm.model.parameters(), restored.model.parameters()):
        assert torch.equal(a, b)


# --- GroupDRO ------------------------------------------------------------------------------------------


def test_groupdro_weights_after_two_updates_equal_the_hand_computed_ones():
    """Risks ln 2, ln 4, ln 4/3 with η = 1 and a frozen model: q ∝ exp(2 R) = (4, 16, 16/9) → (9, 36, 4)/49."""
    batches = [
        batch([[0, 0], [0, 0]], [0, 1]),
        batch([[0, LN3], [0, LN3]], [0, 0]),
        batch([[0, LN3], [0, LN3]], [1, 1]),
    ]
    risks = torch.tensor([math.log(2), math.log(4), math.log(4 / 3)], dtype=torch.float64)
    algorithm = build_algorithm("groupdro", identity_model(), {**FROZEN, "groupdro_eta": 1.0}, num_domains=3)
    assert torch.equal(algorithm.q, torch.ones(3, dtype=torch.float64))
    first = algorithm.update(batches)
    torch.testing.assert_close(algorithm.q, torch.tensor([3, 6, 2], dtype=torch.float64) / 11, rtol=1e-14, atol=0)
    second = algorithm.update(batches)
    q = torch.tensor([9, 36, 4], dtype=torch.float64) / 49
    torch.testing.assert_close(algorithm.q, q, rtol=1e-14, atol=0)
    assert first["loss"] == pytest.approx(float(risks @ torch.tensor([3, 6, 2.0], dtype=torch.float64)) / 11, rel=1e-6)
    assert second["loss"] == pytest.approx(float(risks @ q), rel=1e-6)
    assert torch.equal(algorithm.state_dict()["q"], algorithm.q)


def test_groupdro_needs_the_number_of_domains():
    with pytest.raises(ValueError, match="num_domains"):
        build_algorithm("groupdro", mlp())


@pytest.mark.parametrize(
    "dtype,expected", [(torch.float32, torch.float32), (torch.bfloat16, torch.float32), (torch.float64, torch.float64)]
)
def test_groupdro_keeps_q_in_the_precision_of_its_risks(dtype, expected):
    """q has the dtype of the (full-precision) risks it multiplies: the parameters', at least float32."""
    model = cnn_with_bn(dtype=torch.float32).to(dtype)
    algorithm = build_algorithm("groupdro", model, {"lr": 1e-3}, num_domains=2)
    assert algorithm.q.dtype == expected
    batches = [(torch.randn(4, 3, 8, 8, dtype=dtype), torch.tensor([0, 1, 0, 1])) for _ in range(2)]
    assert math.isfinite(algorithm.update(batches)["loss"])


# --- CORAL and MMD -------------------------------------------------------------------------------------

A = [[0.0, 0.0], [2.0, 0.0]]
B = [[1.0, 1.0], [1.0, 1.0]]


def kernel_sum(d2: float) -> float:
    return sum(math.exp(-gamma * d2) for gamma in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0))


# Means (1, 0) and (1, 1): mean squared difference 1/2; covariances [[2, 0], [0, 0]] and 0: mean squared
# difference 4/4. Squared distances: within A 0 and 4, within B 0, between A and B all 2.
CORAL_AB = 0.5 + 1.0
MMD_AB = (kernel_sum(0) + kernel_sum(4)) / 2 + kernel_sum(0) - 2 * kernel_sum(2)


@pytest.mark.parametrize("distance", [coral_distance, mmd_distance])
def test_discrepancy_of_identical_feature_sets_is_zero(distance):
    features = torch.randn(7, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert distance(features, features).item() == 0.0
    assert distance(features, features.clone()).item() == 0.0


@pytest.mark.parametrize("distance,expected", [(coral_distance, CORAL_AB), (mmd_distance, MMD_AB)])
def test_discrepancy_equals_the_hand_computed_value(distance, expected):
    a, b = torch.tensor(A, dtype=torch.float64), torch.tensor(B, dtype=torch.float64)
    assert distance(a, b).item() == pytest.approx(expected, rel=1e-13)
    assert distance(b, a).item() == pytest.approx(expected, rel=1e-13)


def test_mmd_uses_domainbeds_seven_bandwidths():
    assert BANDWIDTHS == (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)


@pytest.mark.parametrize("name,distance,expected", [("coral", coral_distance, CORAL_AB), ("mmd", mmd_distance, MMD_AB)])
def test_feature_matching_penalty_is_the_mean_over_domain_pairs(name, distance, expected):
    """With identity features: two domains give d(A, B); three give the mean of the three pairs; one gives 0."""
    hp = {**FROZEN, "mmd_gamma": 3.0}
    a, b = batch(A, [0, 1]), batch(B, [1, 0])
    c = batch([[0.5, -1.0], [0.0, 3.0]], [1, 1])
    stats = build_algorithm(name, identity_model(), hp, num_domains=2).update([a, b])
    assert stats["penalty"] == pytest.approx(expected, rel=1e-6)  # float32 statistics
    risks = [torch.nn.functional.cross_entropy(x, y).item() for x, y in (a, b)]
    assert stats["loss"] == pytest.approx(sum(risks) / 2, rel=1e-6)
    pairs = [distance(u[0], v[0]).item() for u, v in ((a, b), (a, c), (b, c))]
    stats = build_algorithm(name, identity_model(), hp, num_domains=3).update([a, b, c])
    assert stats["penalty"] == pytest.approx(sum(pairs) / 3, rel=1e-6)
    assert build_algorithm(name, identity_model(), hp, num_domains=1).update([a])["penalty"] == 0.0


# --- Mixup ---------------------------------------------------------------------------------------------


def test_mixup_running_stats_come_from_the_mixed_pairs_in_pair_order():
    """Replaying the global generator gives the pairs; BN must have seen exactly their mixed images."""
    model = cnn_with_bn(dtype=torch.float32)
    gen = torch.Generator().manual_seed(3)
    batches = [
        (torch.randn(n, 3, 8, 8, generator=gen) + k, torch.tensor([1, 0] * n)[:n]) for k, n in enumerate((6, 4, 6))
    ]
    reference = copy.deepcopy(model).train()
    torch.manual_seed(11)
    build_algorithm("mixup", model.train(), {"mixup_alpha": 0.4, "lr": 1e-3}, num_domains=3).update(batches)
    torch.manual_seed(11)
    with torch.no_grad():
        for _, x, _, _ in mixed_pairs(batches, 0.4):
            reference(x)
    bn, ref = model[1], reference[1]
    torch.testing.assert_close(bn.running_mean, ref.running_mean, rtol=0, atol=0)
    torch.testing.assert_close(bn.running_var, ref.running_var, rtol=0, atol=0)
    assert int(bn.num_batches_tracked) == int(ref.num_batches_tracked) == 3


def test_mixup_draws_everything_before_its_forward_passes():
    """With dropout in the passes (which also draws from the global generator) the update still equals the
    card's, which draws the permutation and all weights first: the draws do not depend on the network."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Tanh(), nn.Linear(8, 2)).double()
    reference = copy.deepcopy(model)
    hp = {**UNIT_SGD, "mixup_alpha": 1.0}
    batches = uneven_batches(seed=0)
    torch.manual_seed(5)
    params = {key: value.detach().clone() for key, value in reference.named_parameters()}
    expected = CARDS["mixup"].step(reference, params, batches, resolve_hparams("mixup", hp), {})
    torch.manual_seed(5)
    build_algorithm("mixup", model, hp, num_domains=3).update(batches)
    for key, value in model.named_parameters():
        torch.testing.assert_close(value, expected[key], rtol=1e-9, atol=1e-11, msg=key)


def test_mixup_refuses_a_non_positive_alpha():
    with pytest.raises(ValueError, match="mixup_alpha=0.0 must be > 0"):
        build_algorithm("mixup", mlp(), {"mixup_alpha": 0.0})


# --- CUDA-graph eligibility ----------------------------------------------------------------------------


def test_only_updates_without_host_decisions_are_capturable():
    assert {name for name in INVARIANCE if ALGORITHMS[name].capturable} == {"groupdro", "coral", "mmd"}


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("name", ["erm", "groupdro", "coral", "mmd"])
def test_capturable_updates_never_read_a_device_value(name, optimizer):
    """On the ``meta`` device tensors have no values, so any ``.item()``, ``.tolist()`` or branch on a tensor
    fails: a capturable update must run there end to end (ERM is the control)."""
    model = cnn_with_bn(dtype=torch.float32).to("meta")
    algorithm = build_algorithm(name, model, {"optimizer": optimizer}, num_domains=3)
    batches = [
        (torch.randn(4, 3, 8, 8, device="meta"), torch.zeros(4, dtype=torch.long, device="meta")) for _ in range(3)
    ]
    stats = algorithm.launch(batches)
    assert stats and all(value.device.type == "meta" and value.dim() == 0 for value in stats.values())


def test_the_meta_device_check_is_not_vacuous():
    """Reading a ``meta`` tensor's value, or branching on it, fails."""
    value = torch.ones((), device="meta")
    for read in (float, bool, torch.Tensor.item, torch.Tensor.tolist):
        with pytest.raises((RuntimeError, NotImplementedError)):
            read(value)
