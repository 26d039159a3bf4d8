"""The GPU suite's CPU-checkable parts (its plan and order, its records with stand-ins for the measurements,
its trainer setting, its refusal without CUDA), and the device a CUDA graph is captured on."""

from __future__ import annotations

import copy
import json
from contextlib import contextmanager
from dataclasses import asdict

import pytest
import torch
from torch import nn

import benchmarks.gpu_suite as gs
from benchmarks.gpu_suite import BACKBONES, BATCHES, PRECISIONS, TRAINER_SETTING, Suite, main, plan
from benchmarks.trainer_overhead import erm_config
from workbench.algorithms import build_algorithm
from workbench.algorithms.cuda_graph import GraphedStep

ENV = {"device": "stand-in GPU", "torch": torch.__version__}


def test_the_plan_answers_the_main_question_first_and_covers_every_cell():
    cells = plan(None)
    first = [(b, p, n, label) for b, p, n, label, _, _ in cells[:6]]
    assert first == [("efficientnet_b4", p, 32, v) for v in ("erm", "roga", "roga-concurrent") for p in PRECISIONS]
    covered = {(b, n, label, p) for b, p, n, label, _, _ in cells}
    for backbone in BACKBONES:
        for batch in BATCHES:
            for label in ("erm", "roga", "roga-concurrent", "sam", "sagm", "bare", "erm-eager"):
                for precision in PRECISIONS:
                    assert (backbone, batch, label, precision) in covered
    assert len(covered) == len(cells)
    assert {b for b, *_ in plan({"legacy_xception:128"})} == {"legacy_xception"}


def test_the_trainer_setting_is_the_paper_setting():
    config = erm_config("configs/demo.yaml", TRAINER_SETTING, steps=30)
    assert config["algorithm"]["name"] == "erm"
    assert (config["model"]["name"], config["data"]["image_size"], config["data"]["batch_size"]) == (
        "efficientnet_b4",
        256,
        32,
    )
    assert config["algorithm"]["hparams"]["precision"] == "bf16"
    assert config["algorithm"]["hparams"]["channels_last"] is True
    assert (config["train"]["steps"], config["train"]["eval_every"], config["train"]["cpu_threads"]) == (60, 30, None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_refuses_to_run_without_cuda(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 2
    assert "needs a CUDA device" in capsys.readouterr().err


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def speed(config, name: str) -> float:
    """Stand-in img/s of a cell: ERM bf16 1000, ERM TF32 800, RoGA 300/250, eager ERM 500, the rest 100."""
    if name == "erm" and config.cuda_graph:
        return 1000.0 if config.precision == "bf16" else 800.0
    if name == "roga" and config.domain_passes == "sequential":
        return 300.0 if config.precision == "bf16" else 250.0
    return 500.0 if name == "erm" else 100.0


def stand_in_measure(failing: str | None = None, error: str = "CUDA out of memory"):
    def measure(config, name):
        if name == failing:
            raise RuntimeError(error)
        return {
            "algorithm": name,
            "img_s": speed(config, name),
            "ms_per_step": 1.0,
            "peak_mem_gib": 0.5,
            "ratio_to_erm": None,
            **asdict(config),
        }

    return measure


def main_question_cells():
    return gs.cells(plan({"efficientnet_b4:32"}, stop=1), steps=15, cudnn_benchmark=False)


def fake_cuda(monkeypatch, sticky: str | None = None) -> None:
    """CUDA as the suite sees it: available, described by ENV; cleanup raises ``sticky`` if given."""

    def cleanup():
        if sticky:
            raise RuntimeError(sticky)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", cleanup)
    monkeypatch.setattr(torch.cuda, "empty_cache", cleanup)
    monkeypatch.setattr(gs, "environment", lambda device: ENV)


def test_the_sections_answer_the_main_question_first(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        gs,
        "throughput",
        lambda suite, planned, reference: calls.append(
            ("throughput", [(label, c.backbone, c.batch, c.precision) for label, _, c in planned])
        ),
    )
    monkeypatch.setattr(gs, "correctness", lambda suite, cases: calls.append(("correctness", cases)))
    monkeypatch.setattr(gs, "trainer_overhead", lambda suite, steps: calls.append(("trainer", steps)))
    monkeypatch.setattr(gs, "nccl_capture", lambda suite: calls.append(("nccl", None)))
    order = gs.sections(Suite(tmp_path, 1e9), None, steps=15, cudnn_benchmark=False, quick=False)
    for _, run_section in order:
        run_section()
    assert (
        [name for name, _ in order]
        == [name for name, _ in calls]
        == ["throughput", "correctness", "trainer", "correctness", "throughput", "nccl"]
    )
    assert calls[0][1] == [
        (v, "efficientnet_b4", 32, p)
        for v in ("erm", "roga", "roga-concurrent", "bare", "erm-eager")
        for p in PRECISIONS
    ]
    ((backbone, name, precision, fast, *_),) = calls[1][1]
    assert (backbone, name, precision, fast["domain_passes"]) == ("efficientnet_b4", "roga", "fp32", "concurrent")
    assert calls[1][1] + calls[3][1] == gs.correctness_cases()
    timed = calls[0][1] + calls[4][1]
    assert timed == [(label, b, n, p) for b, p, n, label, _, _ in plan(None)]


def test_throughput_lines_carry_the_ratio_to_the_best_erm_and_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gs, "measure", stand_in_measure())
    planned = main_question_cells()
    gs.throughput(Suite(tmp_path, 1e9, ENV), planned, gs.ErmReference(planned))
    lines = records(tmp_path / "throughput.jsonl")
    ratios = {(r["variant"], r["precision"]): r["ratio_to_erm"] for r in lines}
    assert ratios[("erm", "bf16")] is None, "written before the TF32 ERM cell: its reference is not final yet"
    assert ratios[("erm", "tf32")] == pytest.approx(0.8)
    assert ratios[("roga", "bf16")] == pytest.approx(0.3) and ratios[("roga", "tf32")] == pytest.approx(0.25)
    assert ratios[("erm-eager", "bf16")] == pytest.approx(0.5) and ratios[("bare", "tf32")] == pytest.approx(0.1)
    assert all(r["environment"] == ENV for r in lines)
    gs.summary(tmp_path)
    table = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("efficientnet_b4")]
    assert {(row[3], row[2], row[7]) for row in table} >= {
        ("erm", "bf16", "1.00"),
        ("erm", "tf32", "0.80"),
        ("roga", "bf16", "0.30"),
    }


def test_the_ratio_reference_ignores_failed_erm_cells(tmp_path, monkeypatch):
    monkeypatch.setattr(gs, "measure", stand_in_measure(failing="erm"))
    fake_cuda(monkeypatch)
    planned = main_question_cells()
    gs.throughput(Suite(tmp_path, 1e9, ENV), planned, gs.ErmReference(planned))
    assert all(r.get("ratio_to_erm") is None for r in records(tmp_path / "throughput.jsonl"))


def test_a_failed_case_is_recorded_and_the_suite_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(gs, "measure", stand_in_measure(failing="roga"))
    fake_cuda(monkeypatch)
    planned = main_question_cells()
    gs.throughput(Suite(tmp_path, 1e9, ENV), planned, gs.ErmReference(planned))
    lines = records(tmp_path / "throughput.jsonl")
    assert len(lines) == len(planned) and not any("cleanup_error" in r or "skipped" in r for r in lines)
    failed = [r for r in lines if "error" in r]
    assert {r["algorithm"] for r in failed} == {"roga"} and "CUDA out of memory" in failed[0]["error"]
    assert [r["variant"] for r in lines[-4:]] == ["bare", "bare", "erm-eager", "erm-eager"]


def test_a_sticky_cuda_error_is_recorded_and_the_rest_is_skipped_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(gs, "measure", stand_in_measure(failing="erm", error="CUDA error: misaligned address"))
    fake_cuda(monkeypatch, sticky="CUDA error: misaligned address (from cudaDeviceSynchronize)")
    assert main(["--out", str(tmp_path)]) == 0
    first, cleanup, *rest = records(tmp_path / "throughput.jsonl")
    assert first["variant"] == "erm" and "misaligned address" in first["error"] and "Traceback" in first["error"]
    assert "misaligned address" in cleanup["cleanup_error"]
    assert len(rest) == len(plan(None)) - 1 and all("CUDA unusable" in r["reason"] for r in rest)
    for name in ("correctness", "trainer", "nccl"):
        skipped = records(tmp_path / f"{name}.jsonl")
        assert skipped and all("skipped" in r and "CUDA unusable" in r["reason"] for r in skipped)


def test_over_budget_every_section_says_it_was_skipped(tmp_path, monkeypatch):
    fake_cuda(monkeypatch)
    assert main(["--out", str(tmp_path), "--budget-s", "-1", "--quick"]) == 0
    (trainer,) = records(tmp_path / "trainer.jsonl")
    assert (trainer["skipped"], trainer["reason"]) == ("trainer", "over the -1 s budget")
    assert [r["skipped"] for r in records(tmp_path / "nccl.jsonl")] == ["nccl"]
    assert len(records(tmp_path / "correctness.jsonl")) == len(gs.correctness_cases(quick=True))
    assert len(records(tmp_path / "throughput.jsonl")) == len(plan(None))
    assert json.loads((tmp_path / "env.json").read_text()) == ENV


def test_a_cuda_graph_is_captured_with_the_inputs_device_current(monkeypatch):
    """Stand-ins for CUDA: the step must be captured with the inputs' device current and on a stream of
    that device, not on whichever device happens to be current (cuda:0 here)."""
    current = ["cuda:0"]
    seen = {}

    class Stream:
        def __init__(self, device=None):
            self.device = torch.device(device if device is not None else current[0])

    @contextmanager
    def device(which):
        previous, current[0] = current[0], str(torch.device(which))
        try:
            yield
        finally:
            current[0] = previous

    @contextmanager
    def graph(cuda_graph, stream=None):
        seen["stream"] = None if stream is None else str(stream.device)
        yield

    class CUDAGraph:
        def replay(self):
            pass

    for name, value in {"Stream": Stream, "device": device, "graph": graph, "CUDAGraph": CUDAGraph}.items():
        monkeypatch.setattr(torch.cuda, name, value)
    model = nn.Linear(3, 2)

    def step(minibatches):
        seen["device"] = current[0]
        return {"loss": model(minibatches[0][0]).sum()}

    runner = GraphedStep(step, model, torch.optim.SGD(model.parameters(), lr=0.1))
    batches = [(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))]
    assert runner._capture(batches, runner.key(batches))
    assert seen == {"device": "cpu", "stream": "cpu"} and current == ["cuda:0"]


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_graph_replays_on_a_second_device_train_like_eager_steps():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2)).to("cuda:1")
    hp = {"optimizer": "sgd", "lr": 0.1, "precision": "fp32"}
    slow = build_algorithm("erm", copy.deepcopy(base), {**hp, "cuda_graph": False})
    fast = build_algorithm("erm", base, hp)
    for step in range(5):
        gen = torch.Generator().manual_seed(step)
        batches = [
            (torch.randn(4, 6, generator=gen).to("cuda:1"), torch.randint(0, 2, (4,), generator=gen).to("cuda:1"))
        ]
        fast.update(batches)
        slow.update(batches)
    assert fast.graphed_step.replays == 3 and fast.graphed_step.failure is None
    for a, b in zip(fast.model.parameters(), slow.model.parameters()):
        torch.testing.assert_close(a, b)
