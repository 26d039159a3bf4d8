"""Data-parallel semantics with two gloo processes on the CPU (float64 MLP, SGD with unit step).

A distributed ERM step must equal the single-process step on the union batch; a distributed
SAM/SAGM/RoGA step must equal the average of the per-rank single-process directions (each rank
ascends with its own shard's gradients); a distributed Fish update, whose K inner steps each average
their gradients, must equal the single-process update on the union batches; every rank must end with
the same weights. GroupDRO is the stateful case: over two updates every step applies the average of
the per-rank directions, while each rank's domain weights q follow its own shard's risks. Spawning the
two processes takes ~20 s on a small CPU machine, so those tests are marked slow.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from tiny_models import mlp
from torch import nn

from workbench.algorithms import build_algorithm, hparam_spec
from workbench.training.distributed import DistContext, init_distributed

WORLD = 2
NAMES = ("erm", "sam", "sagm", "roga", "fish")
HP = {
    "optimizer": "sgd",
    "lr": 1.0,
    "momentum": 0.0,
    "weight_decay": 0.0,
    "rho": 0.3,
    "alpha": 0.05,
    "meta_lr": 0.3,
    "groupdro_eta": 1.0,
}
DOMAINS = 3
GROUPDRO_SEEDS = (7, 8)  # the global batches of GroupDRO's two updates


def hparams_for(name: str) -> dict:
    """:data:`HP` without the keys algorithm ``name`` does not take."""
    return {key: value for key, value in HP.items() if key in hparam_spec(name)}


def global_batches(k: int = DOMAINS, n: int = 4, seed: int = 7):
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, 6, generator=gen, dtype=torch.float64) + i, torch.randint(0, 2, (n,), generator=gen))
        for i in range(k)
    ]


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def single_process_direction(name: str, batches) -> torch.Tensor:
    """G of one update without any distribution (θ_before − θ_after with a unit SGD step)."""
    model = mlp()
    before = flat(model)
    build_algorithm(name, model, hparams_for(name)).update(batches)
    return before - flat(model)


def _worker(rank: int, port: int, out: Path) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    ctx = init_distributed(backend="gloo")
    results = {}
    for name in NAMES:
        model = mlp()
        if rank:
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(1.0)  # prepare_model must replace this with rank 0's weights
        model = ctx.prepare_model(model)
        algorithm = build_algorithm(name, model, hparams_for(name))
        ctx.attach(algorithm)
        before = flat(model)
        algorithm.update(ctx.shard(global_batches()))
        results[name] = before - flat(model)
    model = ctx.prepare_model(mlp())
    groupdro = build_algorithm("groupdro", model, hparams_for("groupdro"), num_domains=DOMAINS)
    ctx.attach(groupdro)
    for seed in GROUPDRO_SEEDS:
        groupdro.update(ctx.shard(global_batches(seed=seed)))
    results["groupdro"] = {"weights": flat(model), "q": groupdro.q.clone()}
    results["stats"] = ctx.mean_stats({"rank": float(rank), "one": 1.0})
    torch.save(results, out / f"rank{rank}.pt")
    ctx.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(free_port(), out), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


def shards(batches, rank: int):
    """Rank ``rank``'s interleaved rows of every domain batch, as ``DistContext.shard`` takes them."""
    return [(x[rank::WORLD], y[rank::WORLD]) for x, y in batches]


@pytest.mark.slow
def test_distributed_erm_equals_the_union_batch_step(rank_results):
    expected = single_process_direction("erm", global_batches())
    for result in rank_results:
        torch.testing.assert_close(result["erm"], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sam", "sagm", "roga"])
def test_distributed_sharpness_step_averages_per_rank_directions(name, rank_results):
    batches = global_batches()
    per_rank = [single_process_direction(name, shards(batches, r)) for r in range(WORLD)]
    expected = torch.stack(per_rank).mean(0)
    for result in rank_results:
        torch.testing.assert_close(result[name], expected, rtol=1e-10, atol=1e-12)
    union = single_process_direction(name, batches)
    assert not torch.allclose(expected, union), "the test batches must tell per-rank ascent from union ascent"


def lockstep_groupdro(steps, per_rank: bool = True) -> list[dict]:
    """GroupDRO as documented for data-parallel training, simulated in one process: one copy per rank, each
    updating its own q from its own shard, every step moving the weights by the mean of the copies' directions
    (unit SGD). ``per_rank=False``: one copy on the union batches instead."""
    copies = [
        build_algorithm("groupdro", mlp(), hparams_for("groupdro"), num_domains=DOMAINS)
        for _ in range(WORLD if per_rank else 1)
    ]
    for batches in steps:
        before = flat(copies[0].model)
        directions = []
        for rank, algorithm in enumerate(copies):
            algorithm.update(shards(batches, rank) if per_rank else batches)
            directions.append(before - flat(algorithm.model))
        after = before - torch.stack(directions).mean(0)
        for algorithm in copies:
            torch.nn.utils.vector_to_parameters(after.clone(), algorithm.model.parameters())
    return [{"weights": flat(a.model), "q": a.q.clone()} for a in copies]


@pytest.mark.slow
def test_distributed_groupdro_averages_gradients_and_keeps_q_per_rank(rank_results):
    steps = [global_batches(seed=seed) for seed in GROUPDRO_SEEDS]
    expected = lockstep_groupdro(steps)
    for rank, result in enumerate(rank_results):
        torch.testing.assert_close(result["groupdro"]["weights"], expected[rank]["weights"], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(result["groupdro"]["q"], expected[rank]["q"], rtol=1e-12, atol=0)
    assert not torch.allclose(expected[0]["q"], expected[1]["q"]), "the ranks' shards must give different q"
    (union,) = lockstep_groupdro(steps, per_rank=False)
    assert not torch.allclose(expected[0]["weights"], union["weights"]), "per-rank q must differ from union q"


@pytest.mark.slow
def test_distributed_fish_averages_every_inner_step(rank_results):
    """Each inner step uses the mean of the ranks' shard gradients, i.e. the union batch's gradient, so
    every rank follows the single-process inner trajectory on the union batches; averaging per-rank
    updates instead would differ."""
    batches = global_batches()
    expected = single_process_direction("fish", batches)
    assert torch.equal(rank_results[0]["fish"], rank_results[1]["fish"])
    for result in rank_results:
        torch.testing.assert_close(result["fish"], expected, rtol=1e-10, atol=1e-12)
    per_rank = torch.stack([single_process_direction("fish", shards(batches, r)) for r in range(WORLD)]).mean(0)
    assert not torch.allclose(expected, per_rank), "the test batches must tell averaged steps from averaged updates"


@pytest.mark.slow
def test_statistics_are_averaged_across_ranks(rank_results):
    for result in rank_results:
        assert result["stats"] == {"rank": 0.5, "one": 1.0}


def test_without_torchrun_the_context_is_a_single_process_no_op(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = init_distributed()
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.is_distributed) == (0, 1, True, False)
    algorithm = build_algorithm("erm", mlp(), hparams_for("erm"))
    ctx.attach(algorithm)
    assert algorithm.distributed is None
    batches = global_batches()
    assert ctx.shard(batches) == batches
    tensor = torch.ones(3)
    assert torch.equal(ctx.all_reduce_mean_(tensor), torch.ones(3))


def test_shard_interleaves_each_domain_and_rejects_uneven_batches():
    batches = global_batches(n=4)
    second = DistContext(rank=1, world_size=2).shard(batches)
    for (x, y), (xs, ys) in zip(batches, second):
        assert torch.equal(xs, x[1::2]) and torch.equal(ys, y[1::2])
    with pytest.raises(ValueError, match="domain batch 0 has 3 images.*world size 2"):
        DistContext(rank=0, world_size=2).shard(global_batches(n=3))


@pytest.mark.parametrize("world", [2, 4])
def test_shards_of_a_fakes_then_reals_batch_hold_both_classes_and_cover_the_batch(world):
    """Domain batches come fakes first, then reals (the sampler's order): every rank must get both."""
    n = 8
    batches = [
        (torch.arange(n * k, n * (k + 1), dtype=torch.float64).reshape(n, 1), torch.tensor([1] * 4 + [0] * 4))
        for k in range(3)
    ]
    per_rank = [DistContext(rank=r, world_size=world).shard(batches) for r in range(world)]
    for shards_of_rank in per_rank:
        for _, y in shards_of_rank:
            assert set(y.tolist()) == {0, 1} and y.sum().item() * 2 == len(y)
    for k, (x, y) in enumerate(batches):
        rows = torch.cat([shards_of_rank[k][0] for shards_of_rank in per_rank]).reshape(-1)
        labels = torch.cat([shards_of_rank[k][1] for shards_of_rank in per_rank])
        order = rows.argsort()
        assert torch.equal(rows[order], x.reshape(-1)) and torch.equal(labels[order], y)


def test_torchrun_variables_must_be_complete(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(RuntimeError, match="MASTER_ADDR"):
        init_distributed()


def test_graph_capture_of_the_all_reduce_only_with_nccl():
    assert DistContext(world_size=2, backend="nccl").graph_safe
    assert not DistContext(world_size=2, backend="gloo").graph_safe
    assert not DistContext(world_size=2, backend="nccl", sync_batchnorm=True).graph_safe
