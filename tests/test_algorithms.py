"""Every registered algorithm against its method card (tests/method_cards), plus what all of them share:
hyper-parameter validation, state that survives a checkpoint, BN statistics, distributed reduction,
and the fast paths (functional/concurrent passes, channels-last, CUDA graphs)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from method_cards import CARDS, flat_grad, logits_at, shifted
from method_cards.roga import ascent_epsilons, roga_direction
from timm.layers.evo_norm import EvoNorm2dB0
from tiny_models import cnn_with_bn, mlp
from torch import nn

from workbench.algorithms import ALGORITHMS, build_algorithm, default_hparams, hparam_spec, resolve_hparams
from workbench.algorithms.cuda_graph import GraphedStep

RHO, ALPHA = 0.3, 0.05
K = 3
UNIT_SGD = {"optimizer": "sgd", "lr": 1.0, "momentum": 0.0, "weight_decay": 0.0}


def domain_batches(k: int = K, n: int = 6, dtype=torch.float64, image: bool = False, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    shape = (n, 3, 8, 8) if image else (n, 6)
    return [(torch.randn(shape, generator=gen, dtype=dtype) + i, torch.tensor([1, 0] * n)[:n]) for i in range(k)]


def card_hparams(name: str, **extra) -> dict:
    """The unit SGD step with the card's hyper-parameters (and ``extra``) for algorithm ``name``."""
    return {**UNIT_SGD, **CARDS[name].hparams, **extra}


def flat(model: nn.Module) -> torch.Tensor:
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()


def only_known(name: str, hparams: dict) -> dict:
    """``hparams`` without the keys algorithm ``name`` does not take."""
    spec = hparam_spec(name)
    return {key: value for key, value in hparams.items() if key in spec}


def test_every_registered_algorithm_has_a_method_card():
    assert sorted(CARDS) == sorted(ALGORITHMS)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_updates_follow_the_method_card(name):
    """Three updates on fresh batches move the weights exactly as the card says (state carried along)."""
    card = CARDS[name]
    model = mlp()
    reference = copy.deepcopy(model)
    hparams = card_hparams(name)
    algorithm = build_algorithm(name, model, hparams, num_domains=K)
    resolved = resolve_hparams(name, hparams)
    params = {key: value.detach().clone() for key, value in reference.named_parameters()}
    state: dict = {}
    for step in range(3):
        batches = domain_batches(seed=10 + step)
        torch.manual_seed(step)
        expected = card.step(reference, params, batches, resolved, state)
        torch.manual_seed(step)
        algorithm.update(batches)
        for key, value in model.named_parameters():
            torch.testing.assert_close(value, expected[key], rtol=1e-9, atol=1e-11, msg=f"step {step}, {key}")
        params = {key: value.detach().clone() for key, value in expected.items()}


@pytest.mark.parametrize(
    "switches", [{"ascent": a, "combine": c} for a in ("per_domain", "shared") for c in ("with_erm", "perturbed_only")]
)
def test_every_roga_switch_follows_the_method_card(switches):
    model = mlp()
    batches = domain_batches()
    G = roga_direction(copy.deepcopy(model), dict(model.named_parameters()), batches, RHO, ALPHA, **switches)
    before = flat(model)
    build_algorithm("roga", model, card_hparams("roga", **switches)).update(batches)
    torch.testing.assert_close(flat(model) - before, -G, rtol=1e-10, atol=1e-12)


def test_roga_differs_from_sagm_and_erm():
    """The per-domain ascent is not a relabelled pooled method."""
    batches = domain_batches()
    moves = {}
    for name in ("erm", "sagm", "roga"):
        model = mlp()
        before = flat(model)
        build_algorithm(name, model, only_known(name, {**UNIT_SGD, "rho": RHO, "alpha": ALPHA})).update(batches)
        moves[name] = flat(model) - before
    assert not torch.allclose(moves["roga"], moves["sagm"])
    assert not torch.allclose(moves["roga"], moves["erm"])


@pytest.mark.parametrize("passes", ["sequential", "concurrent"])
def test_roga_logs_the_losses_gradient_norm_and_cosines_of_its_passes(passes):
    """The logged statistics equal the card's passes: mean clean and perturbed losses, ‖g‖, and the mean
    cosine of each clean g_k and each perturbed g_k^p with g (torch's cosine_similarity, not ours)."""
    model = mlp()
    batches = domain_batches()
    params = {key: value.detach().clone() for key, value in model.named_parameters()}
    reference = copy.deepcopy(model)
    clean = [flat_grad(reference, params, x, y) for x, y in batches]
    g = sum(clean) / len(clean)
    points = [shifted(params, e) for e in ascent_epsilons(clean, RHO, ALPHA, "per_domain")]
    perturbed = [flat_grad(reference, p, x, y) for p, (x, y) in zip(points, batches)]

    def mean_loss(points_of_domains):
        losses = [F.cross_entropy(logits_at(reference, p, x), y) for p, (x, y) in zip(points_of_domains, batches)]
        return float(torch.stack(losses).mean())

    def mean_cosine(grads):
        return float(torch.stack([F.cosine_similarity(grad, g, dim=0) for grad in grads]).mean())

    stats = build_algorithm("roga", model, card_hparams("roga", domain_passes=passes)).update(batches)
    expected = {
        "loss": mean_loss([params] * len(batches)),
        "loss_perturbed": mean_loss(points),
        "grad_norm": float(torch.linalg.vector_norm(g)),
        "cos_clean_mean": mean_cosine(clean),
        "cos_perturbed_mean": mean_cosine(perturbed),
    }
    assert set(expected) <= set(stats)
    for key, value in expected.items():
        assert stats[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key  # statistics come back as float32


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_running_stats_change_only_from_the_cards_clean_passes(name):
    card = CARDS[name]
    if card.stat_inputs is None:
        pytest.skip(f"{name}'s running statistics are checked by its own test")
    model = cnn_with_bn(dtype=torch.float32)
    batches = domain_batches(dtype=torch.float32, image=True)
    reference = copy.deepcopy(model).train()
    with torch.no_grad():
        for x in card.stat_inputs(batches):
            reference(x)
    hparams = {**CARDS[name].hparams, "lr": 1e-3}
    build_algorithm(name, model.train(), hparams, num_domains=K).update(batches)
    for mine, ref in zip(model.modules(), reference.modules()):
        if isinstance(mine, nn.BatchNorm2d):
            torch.testing.assert_close(mine.running_mean, ref.running_mean, rtol=0, atol=0)
            torch.testing.assert_close(mine.running_var, ref.running_var, rtol=0, atol=0)
            assert int(mine.num_batches_tracked) == int(ref.num_batches_tracked)


def cnn_with_other_running_stats(evonorm: bool = True) -> nn.Module:
    """Conv → InstanceNorm with running statistics (→ timm's EvoNorm2dB0, whose ``running_var`` has its own rule)."""
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 4, 3, padding=1), nn.InstanceNorm2d(4, affine=True, track_running_stats=True)]
    layers += [EvoNorm2dB0(4)] if evonorm else []
    return nn.Sequential(*layers, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def running_stats(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: b.clone() for n, b in model.named_buffers() if n.rsplit(".", 1)[-1].startswith("running_")}


@pytest.mark.parametrize("name", ["erm", "sam", "sagm", "asam", "gsam", "roga"])
def test_non_batchnorm_running_stats_change_only_from_clean_passes(name):
    """InstanceNorm(track_running_stats) and EvoNorm buffers are frozen in the ascent passes, like BN's."""
    model = cnn_with_other_running_stats()
    batches = domain_batches(dtype=torch.float32, image=True)
    reference = copy.deepcopy(model).train()
    with torch.no_grad():
        for x in CARDS[name].stat_inputs(batches):
            reference(x)
    build_algorithm(name, model.train(), {**CARDS[name].hparams, "lr": 1e-3}).update(batches)
    expected, got = running_stats(reference), running_stats(model)
    assert set(got) == {"1.running_mean", "1.running_var", "2.running_var"}
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=0, msg=key)


def test_concurrent_passes_merge_instancenorm_stats_and_refuse_unknown_running_buffers():
    batches = domain_batches(dtype=torch.float32, image=True)
    sequential, concurrent = cnn_with_other_running_stats(evonorm=False), cnn_with_other_running_stats(evonorm=False)
    build_algorithm("roga", sequential, {}).update(batches)
    build_algorithm("roga", concurrent, {"domain_passes": "concurrent"}).update(batches)
    for key, value in running_stats(sequential).items():
        torch.testing.assert_close(running_stats(concurrent)[key], value, rtol=1e-6, atol=1e-7, msg=key)
    algo = build_algorithm("roga", cnn_with_other_running_stats(), {"domain_passes": "concurrent"})
    with pytest.raises(ValueError, match=r"'2\.running_var'"):
        algo.update(batches)


SHARPNESS_AWARE = ["sam", "sagm", "asam", "gsam", "roga"]


@pytest.mark.parametrize("name", SHARPNESS_AWARE)
def test_weights_restored_exactly_after_ascent(name):
    """With a zero learning rate the update must leave every weight bit-identical."""
    model = cnn_with_bn(dtype=torch.float32)
    before = copy.deepcopy(model.state_dict())
    hp = {**UNIT_SGD, "lr": 0.0, **only_known(name, {"rho": 0.7, "alpha": 0.3, "eta": 0.1})}
    build_algorithm(name, model, hp).update(domain_batches(dtype=torch.float32, image=True))
    for key, value in model.named_parameters():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_each_algorithm_lowers_the_loss_on_an_easy_problem(name):
    """With the defaults, except where the card says a default is degenerate here (``learns_with``)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(6, generator=gen)
    batches = []
    for k in range(K):
        x = torch.randn(32, 6, generator=gen) + 0.2 * k
        batches.append((x, (x @ w > 0).long()))
    algo = build_algorithm(name, model, {**CARDS[name].learns_with, "lr": 1e-2, "weight_decay": 0.0}, num_domains=K)
    x_all = torch.cat([b[0] for b in batches])
    y_all = torch.cat([b[1] for b in batches])
    start = F.cross_entropy(algo.predict(x_all), y_all).item()
    for _ in range(60):
        stats = algo.update(batches)
    end = F.cross_entropy(algo.predict(x_all), y_all).item()
    assert end < 0.5 * start
    assert stats and all(isinstance(v, float) for v in stats.values())


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_state_dict_holds_everything_the_next_update_needs(name):
    """Two updates, a checkpoint, then a fresh algorithm loaded from it takes the same third step bit for bit."""
    hparams = {"lr": 1e-2, **CARDS[name].hparams}
    algo = build_algorithm(name, cnn_with_bn(), hparams, num_domains=K)
    for step in range(2):
        torch.manual_seed(step)
        algo.update(domain_batches(image=True, seed=step))
    saved = copy.deepcopy(algo.state_dict())
    restored = build_algorithm(name, cnn_with_bn(seed=5), hparams, num_domains=K)
    restored.load_state_dict(saved)
    for target in (algo, restored):
        torch.manual_seed(2)
        target.update(domain_batches(image=True, seed=2))
    for (key, a), b in zip(algo.state_dict().items(), restored.state_dict().values()):
        if torch.is_tensor(a):
            assert torch.equal(a, b), key


def test_hparams_are_validated_per_algorithm():
    assert resolve_hparams("roga", None) == default_hparams("roga")
    assert "rho" not in default_hparams("erm")
    with pytest.raises(KeyError, match=r"'rho' for algorithm 'erm'.*\['channels_last', 'cuda_graph', 'lr'"):
        build_algorithm("erm", mlp(), {"rho": 0.1})
    with pytest.raises(KeyError, match="rh0"):
        resolve_hparams("roga", {"rh0": 0.1})
    with pytest.raises(ValueError, match="ascent"):
        resolve_hparams("roga", {"ascent": "sideways"})
    with pytest.raises(ValueError, match="rho"):
        resolve_hparams("sam", {"rho": -1})
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lr=.*finite"):
            resolve_hparams("erm", {"lr": bad})
    with pytest.raises(KeyError, match="unknown algorithm 'nope'"):
        build_algorithm("nope", mlp())


def test_num_domains_is_checked_by_every_update():
    algo = build_algorithm("erm", mlp(), num_domains=2)
    with pytest.raises(ValueError, match="got 3 domain batches.*num_domains=2"):
        algo.update(domain_batches(k=3))


class UnusedHead(nn.Module):
    """``mlp()`` beside a trainable head that the forward pass never uses (split into features and classifier
    the way timm models are)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = mlp()
        self.unused = nn.Linear(8, 2).double()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body[:-1](x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return features if pre_logits else self.body[-1](features)

    def get_classifier(self) -> nn.Module:
        return self.body[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@pytest.mark.parametrize(
    "name,extra", [(n, {}) for n in sorted(ALGORITHMS)] + [("roga", {"domain_passes": "concurrent"})]
)
def test_parameters_no_pass_reaches_are_skipped_as_after_backward(name, extra):
    """Adam with weight decay leaves an unused head alone (``.grad`` None) and steps the rest as without it."""
    hparams = {"optimizer": "adam", "lr": 1e-2, "weight_decay": 5e-2, **CARDS[name].hparams, **extra}
    model = UnusedHead()
    alone = copy.deepcopy(model.body)
    unused_before = copy.deepcopy(model.unused.state_dict())
    with_head = build_algorithm(name, model, hparams, num_domains=K)
    reference = build_algorithm(name, alone, hparams, num_domains=K)
    for step in range(3):
        for algorithm in (with_head, reference):
            torch.manual_seed(step)
            algorithm.update(domain_batches(seed=step))
    for key, value in model.unused.state_dict().items():
        assert torch.equal(value, unused_before[key]), key
    assert all(p.grad is None for p in model.parameters())
    for a, b in zip(model.body.parameters(), alone.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0)


# --- fast paths: functional/concurrent domain passes, channels-last layout, CUDA graphs -------------

ROGA_SWITCHES = [{"ascent": a, "combine": c} for a in ("per_domain", "shared") for c in ("with_erm", "perturbed_only")]


@pytest.mark.parametrize("switches", ROGA_SWITCHES)
def test_concurrent_domain_passes_give_the_method_card_update(switches):
    model = mlp()
    batches = domain_batches()
    G = roga_direction(copy.deepcopy(model), dict(model.named_parameters()), batches, RHO, ALPHA, **switches)
    before = flat(model)
    build_algorithm("roga", model, card_hparams("roga", domain_passes="concurrent", **switches)).update(batches)
    torch.testing.assert_close(flat(model) - before, -G, rtol=1e-10, atol=1e-12)


def test_concurrent_domain_passes_merge_running_stats_in_domain_order():
    """Private BN buffers merged afterwards equal the sequential clean passes' running statistics."""
    model = cnn_with_bn(dtype=torch.float32).double()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.3
    batches = domain_batches(image=True)
    reference = copy.deepcopy(model).train()
    with torch.no_grad():
        for x, _ in batches:
            reference(x)
    build_algorithm("roga", model.train(), {"rho": 0.5, "alpha": 0.1, "domain_passes": "concurrent"}).update(batches)
    bn, ref = model[1], reference[1]
    torch.testing.assert_close(bn.running_mean, ref.running_mean, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(bn.running_var, ref.running_var, rtol=1e-12, atol=1e-14)
    assert int(bn.num_batches_tracked) == int(ref.num_batches_tracked) == len(batches)


def test_concurrent_domain_passes_refuse_cumulative_bn_average():
    model = cnn_with_bn(dtype=torch.float32)
    model[1].momentum = None
    algo = build_algorithm("roga", model, {"domain_passes": "concurrent"})
    with pytest.raises(ValueError, match="momentum"):
        algo.update(domain_batches(dtype=torch.float32, image=True))


def test_concurrent_weights_bit_identical_with_zero_lr():
    model = cnn_with_bn(dtype=torch.float32)
    before = copy.deepcopy(model.state_dict())
    hp = {**UNIT_SGD, "lr": 0.0, "rho": 0.7, "alpha": 0.3, "domain_passes": "concurrent"}
    build_algorithm("roga", model, hp).update(domain_batches(dtype=torch.float32, image=True))
    for key, value in model.named_parameters():
        assert torch.equal(value, before[key]), key


def test_perturbed_parameters_are_separate_allocations():
    """Views into one flat vector would start at unaligned offsets, which cuDNN rejects as weights."""
    from workbench.algorithms.domain_passes import perturbed_parameters
    from workbench.algorithms.param_vector import ParamVector

    model = cnn_with_bn(dtype=torch.float32).to(memory_format=torch.channels_last)
    vector = ParamVector(model)
    epsilon = torch.randn(sum(vector.numels))
    point = perturbed_parameters(vector, epsilon)
    assert len({t.untyped_storage().data_ptr() for t in point}) == len(point)
    for t, p, e in zip(point, vector.params, vector.views(epsilon)):
        assert t.is_leaf and t.requires_grad and t.stride() == p.stride()
        torch.testing.assert_close(t, p + e, rtol=0, atol=0)


def test_concurrent_passes_match_sequential_on_a_timm_efficientnet():
    """timm's BatchNormAct2d, squeeze-excitation and depthwise convs under functional_call."""
    from workbench.models import create_model

    torch.manual_seed(0)
    base = create_model("test_efficientnet").double()
    batches = domain_batches(k=2, n=3, image=True)
    models = {mode: copy.deepcopy(base) for mode in ("sequential", "concurrent")}
    for mode, model in models.items():
        build_algorithm("roga", model, card_hparams("roga", domain_passes=mode, rho=0.05, alpha=0.01)).update(batches)
    for a, b in zip(models["sequential"].state_dict().values(), models["concurrent"].state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "name,passes", [("erm", "sequential"), ("sagm", "sequential"), ("roga", "sequential"), ("roga", "concurrent")]
)
def test_channels_last_changes_layout_not_update(name, passes):
    batches = domain_batches(image=True)
    plain, nhwc = cnn_with_bn(dtype=torch.float32).double(), cnn_with_bn(dtype=torch.float32).double()
    hp = card_hparams(name, **({"domain_passes": passes} if name == "roga" else {}))
    build_algorithm(name, plain, hp).update(batches)
    algo = build_algorithm(name, nhwc, {**hp, "channels_last": True})
    assert nhwc[0].weight.is_contiguous(memory_format=torch.channels_last)
    algo.update(batches)
    assert nhwc[0].weight.is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(plain.parameters(), nhwc.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_param_vector_views_follow_parameter_memory_layout():
    from workbench.algorithms.param_vector import ParamVector

    model = cnn_with_bn(dtype=torch.float32).to(memory_format=torch.channels_last)
    vector = ParamVector(model)
    flat = torch.randn(sum(vector.numels))
    views = vector.views(flat)
    for view, p in zip(views, vector.params):
        assert view.shape == p.shape and view.stride() == p.stride()
    torch.testing.assert_close(vector.flatten(views), flat, rtol=0, atol=0)
    logical = torch.cat([v.reshape(-1) for v in views])
    torch.testing.assert_close(logical.sort().values, flat.sort().values, rtol=0, atol=0)
    assert not torch.equal(logical, flat)


def test_row_cosines_equal_each_rows_cosine_with_zero_rows_at_zero():
    from workbench.algorithms.param_vector import row_cosines

    rows = torch.randn(4, 50, dtype=torch.float64)
    rows[2] = 0
    v = torch.randn(50, dtype=torch.float64)
    expected = torch.stack([F.cosine_similarity(row, v, dim=0) for row in rows])
    torch.testing.assert_close(row_cosines(rows, v), expected, rtol=1e-12, atol=1e-15)
    given = row_cosines(rows, v, torch.linalg.vector_norm(v), torch.linalg.vector_norm(rows, dim=1))
    torch.testing.assert_close(given, expected, rtol=1e-12, atol=1e-15)


def test_execution_switches_are_validated():
    assert resolve_hparams("erm", {"precision": "tf32"})["precision"] == "tf32"
    with pytest.raises(ValueError, match="cuda_graph"):
        resolve_hparams("sam", {"cuda_graph": "yes"})
    with pytest.raises(ValueError, match="domain_passes"):
        resolve_hparams("roga", {"domain_passes": "parallel"})


def test_tf32_math_restores_global_flags():
    from workbench.algorithms.execution import tf32_math

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with tf32_math(True):
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 is False
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_algorithm_deep_copies_after_an_update():
    algo = build_algorithm("roga", cnn_with_bn(dtype=torch.float32), {"domain_passes": "concurrent"})
    algo.update(domain_batches(dtype=torch.float32, image=True))
    clone = copy.deepcopy(algo)
    assert clone._graphed is None
    for a, b in zip(algo.model.parameters(), clone.model.parameters()):
        assert torch.equal(a, b) and a is not b


class RecordingReducer:
    """Stands in for a distributed context: records what the algorithm asks to average."""

    graph_safe = False

    def __init__(self):
        self.calls = []

    def all_reduce_mean_(self, tensor):
        self.calls.append(tensor.clone())
        return tensor


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_gradients_are_averaged_once_per_optimizer_step(name):
    """Each optimizer step averages the gradients it is about to apply, in one collective; for the SAM family
    and RoGA that is the final direction G, once per update."""
    model = mlp()
    reference = copy.deepcopy(model)
    batches = domain_batches()
    algo = build_algorithm(name, model, card_hparams(name), num_domains=K)
    algo.distributed = reducer = RecordingReducer()
    torch.manual_seed(0)
    algo.update(batches)
    assert len(reducer.calls) == CARDS[name].optimizer_steps(K)
    if len(reducer.calls) == 1:
        params = {key: value.detach().clone() for key, value in reference.named_parameters()}
        torch.manual_seed(0)
        expected = CARDS[name].step(reference, params, batches, resolve_hparams(name, card_hparams(name)), {})
        G = torch.cat([(params[k] - expected[k]).reshape(-1) for k in params])
        torch.testing.assert_close(reducer.calls[0], G, rtol=1e-9, atol=1e-11)


# --- CUDA graphs (need a GPU) -----------------------------------------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def gpu_cnn() -> nn.Module:
    """Odd channel counts (6-element biases) put later parameters at unaligned flat offsets, and a
    depthwise convolution is the cuDNN case that failed with unaligned weights on EfficientNet-B4."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1, groups=6),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 16, 1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 2),
    ).cuda()


def gpu_batches(step: int, k: int = 3, n: int = 6):
    gen = torch.Generator().manual_seed(100 + step)
    return [
        (torch.randn(n, 3, 12, 12, generator=gen).cuda() + 0.3 * i, torch.randint(0, 2, (n,), generator=gen).cuda())
        for i in range(k)
    ]


CAPTURABLE = sorted(name for name, cls in ALGORITHMS.items() if cls.capturable)
GRAPH_CASES = [(name, {}, "sgd") for name in CAPTURABLE] + [
    ("roga", {"domain_passes": "concurrent"}, "sgd"),
    ("roga", {"domain_passes": "concurrent", "channels_last": True}, "sgd"),
    ("erm", {}, "adam"),
    ("roga", {}, "adam"),
]


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("name,extra,optimizer", GRAPH_CASES)
def test_cuda_graph_replays_follow_the_eager_trajectory(name, extra, optimizer):
    """Five steps (2 eager warm-up, 1 capture, 2 replays) with fresh batches match eager fp32 steps.

    Adam is compared only where the kernels are the same (its sign-like first steps amplify
    rounding-level gradient differences); SGD with momentum covers every fast path.
    """
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        hp = {**CARDS[name].hparams, "optimizer": optimizer, "lr": 1e-2, "precision": "fp32"}
        fast = build_algorithm(name, gpu_cnn(), {**hp, **extra, "cuda_graph": True}, num_domains=K)
        slow = build_algorithm(name, gpu_cnn(), {**hp, "cuda_graph": False}, num_domains=K)
        for step in range(5):
            stats_fast = fast.update(gpu_batches(step))
            stats_slow = slow.update(gpu_batches(step))
            assert stats_fast.keys() == stats_slow.keys()
            for key in stats_fast:
                assert stats_fast[key] == pytest.approx(stats_slow[key], rel=1e-4, abs=1e-5), (step, key)
        assert fast.graphed_step.replays == 3 and fast.graphed_step.failure is None
        for a, b in zip(fast.model.state_dict().values(), slow.model.state_dict().values()):
            torch.testing.assert_close(a.float(), b.float(), rtol=1e-4, atol=1e-5)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_cuda_graph_key_follows_the_hyper_parameters(monkeypatch):
    """A changed ρ must not replay a graph captured with the old one: the step's key holds the hparams."""
    keys = []

    class KeyRecorder(GraphedStep):
        def __call__(self, minibatches, extra=None):
            keys.append(self.key(minibatches, extra))
            return {}

    algo = build_algorithm("roga", mlp(), {})
    algo._graphed = KeyRecorder(algo.step, algo.model, algo.optimizer)
    monkeypatch.setattr(algo.execution, "graphs", lambda batches, reducer: True)
    for rho in (0.05, 0.05, 0.2):
        algo.hparams["rho"] = rho
        algo.launch(domain_batches())
    assert keys[0] == keys[1] != keys[2]


@pytest.mark.gpu
@cuda
def test_cuda_graph_falls_back_to_eager_for_a_smaller_batch():
    algo = build_algorithm("roga", gpu_cnn(), {"precision": "fp32"})
    for step in range(4):
        algo.update(gpu_batches(step))
    replays = algo.graphed_step.replays
    stats = algo.update(gpu_batches(9, n=4))
    assert algo.graphed_step.replays == replays and all(isinstance(v, float) for v in stats.values())
    algo.update(gpu_batches(10))
    assert algo.graphed_step.replays == replays + 1
