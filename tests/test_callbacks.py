"""The gradient-alignment training callback, and its overhead on training time.

Run this file as a script to measure the overhead reported in docs/analysis.md:
``HF_HUB_OFFLINE=1 .venv/bin/python tests/test_callbacks.py [model] [steps] [threads]``.
Timings use one intra-op thread by default: on a shared 2-core machine two OpenMP threads stall
whenever another process holds a core, which makes step times swing by an order of magnitude.
"""

from __future__ import annotations

import copy
import statistics
import sys
import time

import pytest
import torch
from tiny_models import cnn_with_bn

from workbench.algorithms import build_algorithm
from workbench.analysis.callbacks import DEFAULT_ALIGNMENT_EVERY, AlignmentCallback
from workbench.analysis.gradients import alignment_summary
from workbench.models import create_model


def domain_batches(k: int, n: int, size: int, dtype=torch.float64, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn((n, 3, size, size), generator=gen, dtype=dtype) + 0.3 * i,
            torch.randint(0, 2, (n,), generator=gen),
        )
        for i in range(k)
    ]


def test_callback_returns_the_train_mode_alignment_summary_and_restores():
    model = cnn_with_bn().train()
    batches = domain_batches(3, 6, 8)
    callback = AlignmentCallback(every=10, rho=0.1, alpha=0.01, name="align", domain_names=["a", "b", "c"])
    assert (callback.every, callback.name) == (10, "align")
    expected = alignment_summary(copy.deepcopy(model), batches, 0.1, 0.01, mode="train", domain_names=["a", "b", "c"])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    result = callback(model, batches, step=10)
    assert result == expected
    assert "cos_perturbed/b" in result and all(isinstance(v, float) for v in result.values())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(m.training for m in model.modules())


def test_callback_defaults_and_validation():
    callback = AlignmentCallback()
    assert (callback.every, callback.rho, callback.alpha, callback.name) == (
        DEFAULT_ALIGNMENT_EVERY,
        0.05,
        0.001,
        "alignment",
    )
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="every"):
            AlignmentCallback(every=bad)
    with pytest.raises(ValueError, match="mode"):
        AlignmentCallback(mode="test")


CALL_REPEATS = 3


def _timed(callback: AlignmentCallback, model: torch.nn.Module, batches, step: int) -> float:
    start = time.perf_counter()
    callback(model, batches, step)
    return time.perf_counter() - start


def measure_overhead(
    algorithm: str, model_name: str, steps: int, every: int, size: int = 64, k: int = 4, per_domain: int = 16
) -> dict[str, float]:
    """Time ``steps`` updates without, then with, the callback at ``every`` (called after update()).

    ``overhead`` = callback time / update time within the run with the callback (robust to other
    load on the machine); ``overhead_wall`` = (wall time with − wall time without) / without;
    ``call_in_steps`` = the cost of one callback call in update steps. Each due call is timed as the
    median of ``CALL_REPEATS`` calls (the callback leaves the model unchanged), so one scheduler
    hiccup does not count as the callback's cost.
    """
    torch.manual_seed(0)
    model = create_model(model_name).train()
    algo = build_algorithm(algorithm, model, {"precision": "fp32"})
    callback = AlignmentCallback(every=every)
    batches = domain_batches(k, per_domain, size, dtype=torch.float32)
    algo.update(batches)  # warm-up
    callback(model, batches, 0)
    start = time.perf_counter()
    for _ in range(steps):
        algo.update(batches)
    without_s = time.perf_counter() - start
    update_s = callback_s = 0.0
    calls = 0
    for step in range(1, steps + 1):
        start = time.perf_counter()
        algo.update(batches)
        update_s += time.perf_counter() - start
        if step % callback.every == 0:
            callback_s += statistics.median(_timed(callback, model, batches, step) for _ in range(CALL_REPEATS))
            calls += 1
    return {
        "step_s": update_s / steps,
        "call_s": callback_s / calls,
        "calls": calls,
        "call_in_steps": (callback_s / calls) / (update_s / steps),
        "overhead": callback_s / update_s,
        "overhead_wall": (update_s + callback_s - without_s) / without_s,
    }


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["erm", "roga"])
def test_overhead_at_the_default_interval_is_at_most_five_percent(algorithm, one_thread):
    result = measure_overhead(
        algorithm, "test_resnet", steps=DEFAULT_ALIGNMENT_EVERY, every=DEFAULT_ALIGNMENT_EVERY, size=32, per_domain=8
    )
    assert result["calls"] == 1
    assert result["overhead"] <= 0.05, result


if __name__ == "__main__":
    model_name = sys.argv[1] if len(sys.argv) > 1 else "resnet10t"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_ALIGNMENT_EVERY
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    for name in ("erm", "roga"):
        print(name, model_name, measure_overhead(name, model_name, steps, DEFAULT_ALIGNMENT_EVERY))
