"""The throughput benchmark's CLI on a tiny CPU configuration: one well-formed JSON line per algorithm."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import timm
import torch

import benchmarks.throughput as throughput
from benchmarks.reference_loops import REFERENCE_LOOPS, reference_loop
from benchmarks.throughput import ALGORITHMS, BenchConfig, cpu_model, main, median_run, parse_args, run

TINY = [
    "--device",
    "cpu",
    "--backbone",
    "test_resnet",
    "--size",
    "32",
    "--batch",
    "8",
    "--domains",
    "4",
    "--steps",
    "2",
    "--warmup",
    "0",
    "--precision",
    "fp32",
]


@pytest.mark.slow
def test_cli_prints_one_json_line_per_algorithm(capsys):
    assert main(TINY) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["algorithm"] for r in lines) == sorted(ALGORITHMS)
    assert lines[0]["algorithm"] == "erm"
    for r in lines:
        assert isinstance(r["img_s"], float) and r["img_s"] > 0
        assert isinstance(r["ms_per_step"], float) and r["ms_per_step"] > 0
        assert r["img_s"] == pytest.approx(8 * 1000.0 / r["ms_per_step"])
        assert isinstance(r["peak_mem_gib"], float) and r["peak_mem_gib"] > 0
        assert isinstance(r["ratio_to_erm"], float)
        assert r["ratio_to_erm"] == pytest.approx(r["img_s"] / lines[0]["img_s"])
        assert (r["backbone"], r["batch"], r["domains"], r["device"]) == ("test_resnet", 8, 4, "cpu")


def test_repeats_alternate_and_report_themedian_run(capsys):
    assert main(TINY + ["--algorithms", "bare,erm", "--steps", "1", "--repeats", "3", "--threads", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["algorithm"] for r in lines] == ["erm", "bare"]
    for r in lines:
        assert len(r["img_s_runs"]) == 3 and r["repeats"] == 3 and r["threads"] == 1
        assert r["img_s"] == sorted(r["img_s_runs"])[1]
    assert lines[1]["ratio_to_erm"] == pytest.approx(lines[1]["img_s"] / lines[0]["img_s"])


def test_themedian_run_of_an_even_count_is_the_lower_middle_one():
    runs = [{"img_s": v, "tag": i} for i, v in enumerate([5.0, 1.0, 3.0, 4.0])]
    assert median_run(runs) == {"img_s": 3.0, "tag": 2}


def test_ratio_is_null_without_erm(capsys):
    assert main(TINY + ["--algorithms", "bare", "--steps", "1"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["ratio_to_erm"] is None


def test_bad_arguments_are_refused_with_the_value_at_fault(capsys):
    with pytest.raises(SystemExit):
        parse_args(TINY + ["--algorithms", "erm,nonesuch"])
    assert "nonesuch" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(TINY + ["--batch", "10"])
    assert "--batch 10" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(TINY + ["--repeats", "0"])
    assert "--repeats must be >= 1 (got 0)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--domains 3"):
        BenchConfig(batch=8, domains=3)


def fake_measure(calls: list, failing: str | None = None):
    """A stand-in for ``measure``: records each call, raises for ``failing``, times nothing."""
    speeds = {"erm": 100.0, "bare": 120.0, "sam": 50.0, "sagm": 48.0, "roga": 40.0, "plain-roga": 50.0}

    def measure(config: BenchConfig, name: str) -> dict:
        calls.append(("measure", name))
        if name == failing:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return {
            "algorithm": name,
            "img_s": speeds[name],
            "ms_per_step": 1.0,
            "peak_mem_gib": 0.1,
            "ratio_to_erm": None,
            **asdict(config),
        }

    return measure


def test_each_line_is_emitted_as_soon_as_it_is_final(monkeypatch):
    calls = []
    monkeypatch.setattr(throughput, "measure", fake_measure(calls))
    run(
        BenchConfig(device="cpu", batch=8),
        ["bare", "erm", "roga"],
        repeats=2,
        emit=lambda line: calls.append(("emit", line["algorithm"])),
    )
    # ERM's line waits for its reference loop (bare) in the last round; roga has none measured
    assert calls == [
        ("measure", "erm"),
        ("measure", "bare"),
        ("measure", "roga"),
        ("measure", "erm"),
        ("measure", "bare"),
        ("emit", "erm"),
        ("emit", "bare"),
        ("measure", "roga"),
        ("emit", "roga"),
    ]


def test_a_failed_measurement_is_an_error_line_and_the_others_are_kept(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(throughput, "measure", fake_measure(calls, failing="roga"))
    assert main(TINY + ["--algorithms", "erm,roga,bare", "--repeats", "2"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["algorithm"] for r in lines] == ["roga", "erm", "bare"]
    failed = lines[0]
    assert failed["error_type"] == "OutOfMemoryError" and "Tried to allocate 2.00 GiB" in failed["error"]
    assert (failed["backbone"], failed["batch"], failed["device"]) == ("test_resnet", 8, "cpu")
    assert "img_s" not in failed
    assert calls.count(("measure", "roga")) == 1, "a failed algorithm is not run again"
    assert lines[2]["ratio_to_erm"] == pytest.approx(1.2) and len(lines[2]["img_s_runs"]) == 2


def test_repeated_algorithms_are_measured_once_per_round(capsys):
    assert main(TINY + ["--algorithms", "erm,erm,bare,erm", "--steps", "1", "--repeats", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["algorithm"] for r in lines] == ["erm", "bare"]
    assert [len(r["img_s_runs"]) for r in lines] == [2, 2]


def test_every_line_carries_the_environment(capsys):
    assert main(TINY + ["--algorithms", "bare", "--steps", "1"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    env = json.loads(line)["environment"]
    assert env["device"] == cpu_model() and env["device"]
    assert (env["torch"], env["timm"], env["cuda"]) == (torch.__version__, timm.__version__, torch.version.cuda)
    assert env["date"][:4].isdigit() and env["date"].endswith("+00:00")


# Settings under which a wrong formula changes the first update: at τ = 1 (the default) a mask keeps only the
# entries whose K signs all agree, or none (SAND-mask), τ = 0.5 keeps a mixture; annealed penalties weigh 1
# until their anneal step, so it is 0 here and λ counts.
FIRST_UPDATE_HPARAMS = {
    "andmask": {"tau": 0.5},
    "sandmask": {"tau": 0.5},
    "irm": {"irm_penalty_anneal_iters": 0},
    "vrex": {"vrex_penalty_anneal_iters": 0},
    "fishr": {"penalty_anneal_iters": 0},
}


@pytest.mark.parametrize("name", sorted(REFERENCE_LOOPS))
def test_each_reference_loop_takes_the_library_update(name):
    """The plain loops time the same update: one step of each equals the library's on a float64 network with BN."""
    from tiny_models import cnn_with_bn

    from workbench.algorithms import build_algorithm, build_optimizer, default_hparams

    hparams = {
        **default_hparams(name),
        **FIRST_UPDATE_HPARAMS.get(name, {}),
        "optimizer": "sgd",
        "lr": 1.0,
        "momentum": 0.0,
        "weight_decay": 0.0,
    }
    gen = torch.Generator().manual_seed(3)
    batches = [
        (torch.randn(6, 3, 8, 8, generator=gen, dtype=torch.float64) + k, torch.tensor([1, 0] * 3)) for k in range(3)
    ]
    library, plain = cnn_with_bn(), cnn_with_bn()
    torch.manual_seed(0)  # Mixup's and MLDG's draws
    build_algorithm(name, library, hparams, num_domains=len(batches)).update(batches)
    torch.manual_seed(0)
    reference_loop(name, plain, build_optimizer(list(plain.parameters()), hparams), hparams)(batches)
    for (key, a), b in zip(library.state_dict().items(), plain.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=key)


def test_an_algorithm_with_a_plain_loop_reports_its_ratio_to_it(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(throughput, "measure", fake_measure(calls))
    assert main(TINY + ["--algorithms", "roga,plain-roga,erm,sam,bare"]) == 0
    lines = {r["algorithm"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert [c[1] for c in calls] == ["erm", "plain-roga", "bare", "roga", "sam"]
    assert lines["roga"]["ratio_to_plain"] == pytest.approx(40.0 / 50.0)
    assert lines["erm"]["ratio_to_plain"] == pytest.approx(100.0 / 120.0)
    assert lines["sam"]["ratio_to_plain"] is None and lines["bare"]["ratio_to_plain"] is None
