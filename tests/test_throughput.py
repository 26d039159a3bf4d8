"""The throughput benchmark's CLI on a tiny CPU configuration: one well-formed JSON line per algorithm."""

from __future__ import annotations

import json

import pytest

from benchmarks.throughput import ALGORITHMS, BenchConfig, median_run, main, parse_args

TINY = ["--device", "cpu", "--backbone", "test_resnet", "--size", "32", "--batch", "8", "--domains", "4",
        "--steps", "2", "--warmup", "0", "--precision", "fp32"]


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
        parse_args(TINY + ["--algorithms", "erm,mixup"])
    assert "mixup" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(TINY + ["--batch", "10"])
    assert "--batch 10" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(TINY + ["--repeats", "0"])
    assert "--repeats must be >= 1 (got 0)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--domains 3"):
        BenchConfig(batch=8, domains=3)
