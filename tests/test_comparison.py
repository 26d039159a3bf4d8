"""Tests for workbench.training.comparison: differences to a baseline with paired video-bootstrap intervals."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from workbench.cli import report as report_cli
from workbench.cli import run_command
from workbench.data.manifest import video_keys
from workbench.metrics import compute_metrics, percentile_interval, video_bootstrap_statistics
from workbench.training.cells import ReportError
from workbench.training.collect import collect
from workbench.training.comparison import baseline_differences, differences_markdown, format_difference

GROUPS = ("source_test", "target/A", "target/B")


def scores(seed: int, group: str, fake_boost: float = 0.0) -> pd.DataFrame:
    """Predictions of one group: 8 real and 8 fake videos of 2 frames; ``fake_boost`` raises every fake's score."""
    rng = np.random.default_rng([seed, GROUPS.index(group)])
    labels = np.repeat([0] * 8 + [1] * 8, 2)
    probs = np.clip(rng.normal(0.4, 0.2, 32) + 0.15 * labels + fake_boost * labels, 0, 1)
    return pd.DataFrame(
        {
            "group": group,
            "path": [f"{group}/{i}.png" for i in range(32)],
            "dataset": "SYN",
            "domain": group,
            "split": "test",
            "video": np.repeat([f"v{i}" for i in range(16)], 2),
            "label": labels,
            "prob_fake": probs,
            "step": 200,
            "model": "source_val",
        }
    )


def make_run(
    root,
    algorithm: str,
    seed: int,
    fake_boost: float = 0.0,
    predictions: bool = True,
    variant=None,
    score_seed: int | None = None,
):
    """A run with one evaluation (step 200) whose records are computed from its predictions of every group."""
    run_dir = root / f"{algorithm}{variant or ''}-seed{seed}"
    run_dir.mkdir(parents=True)
    config = {
        "algorithm": {"name": algorithm, "hparams": {"lr": variant or 0.05}},
        "model": {"name": "r"},
        "train": {"seed": seed},
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    table = pd.concat([scores(seed if score_seed is None else score_seed, g, fake_boost) for g in GROUPS])
    evaluation = {"source_val": {"auc": 0.9}}
    for group, rows in table.groupby("group"):
        evaluation[group] = compute_metrics(rows["label"], rows["prob_fake"], video_keys(rows))
    (run_dir / "records.jsonl").write_text(json.dumps({"step": 200, "eval": evaluation}) + "\n")
    if predictions:
        table.to_csv(run_dir / "predictions.csv", index=False)
    (run_dir / "done").write_text("")
    return run_dir


def samples(run_dirs, group):
    out = []
    for run_dir in run_dirs:
        rows = pd.read_csv(run_dir / "predictions.csv", dtype={"video": str})
        rows = rows[rows["group"] == group]
        out.append((rows["label"].to_numpy(), rows["prob_fake"].to_numpy(), video_keys(rows).to_numpy()))
    return out


def test_differences_are_seed_means_minus_the_baselines_with_a_paired_interval(tmp_path):
    erm = [make_run(tmp_path, "erm", s) for s in range(2)]
    roga = [make_run(tmp_path, "roga", s, fake_boost=0.05) for s in range(2)]
    differences = baseline_differences(collect(erm + roga), "erm", GROUPS, n_boot=200, seed=3).set_index("group")
    assert list(differences.index) == [*GROUPS, "held_out_mean", "gap"]
    auc = {
        (name, g): np.mean([compute_metrics(*s)["auc"] for s in samples(runs, g)])
        for name, runs in (("erm", erm), ("roga", roga))
        for g in GROUPS
    }
    for group in GROUPS:
        assert differences.loc[group, "difference"] == pytest.approx(auc[("roga", group)] - auc[("erm", group)])
    held_out = np.mean([auc[("roga", g)] - auc[("erm", g)] for g in GROUPS[1:]])
    assert differences.loc["held_out_mean", "difference"] == pytest.approx(held_out)
    assert differences.loc["gap", "difference"] == pytest.approx(
        auc[("roga", "source_test")] - auc[("erm", "source_test")] - held_out
    )
    # the interval of target/A (group index 1: bootstrap seed 3 + 1) is that of the paired draws' difference
    paired = video_bootstrap_statistics([samples(erm, "target/A"), samples(roga, "target/A")], n_boot=200, seed=4)
    row = differences.loc["target/A"]
    assert (row["ci_low"], row["ci_high"]) == percentile_interval(paired[1] - paired[0], 0.95)
    assert row["ci_method"] == "paired video bootstrap" and (row["n_seeds"], row["n_baseline_seeds"]) == (2, 2)


def test_a_copy_of_the_baseline_differs_by_exactly_zero_in_every_resample(tmp_path):
    # paired draws: identical predictions give a zero-width interval at 0 (unpaired draws would not)
    runs = [make_run(tmp_path, "erm", 0), make_run(tmp_path, "sam", 0)]  # sam's predictions: a copy of erm's
    differences = baseline_differences(collect(runs), "erm", GROUPS, n_boot=100)
    assert (differences[["difference", "ci_low", "ci_high"]] == 0).all().all()
    assert not differences["excludes_zero"].any()


def test_a_uniformly_better_detector_is_marked_and_a_noisy_one_is_not(tmp_path):
    erm = make_run(tmp_path, "erm", 0)
    better = make_run(tmp_path, "sagm", 0, fake_boost=0.6)  # erm's scores, every fake higher: AUC >= erm's
    noisy = make_run(tmp_path, "asam", 0, score_seed=1)  # independent scores of the same quality
    differences = baseline_differences(collect([erm, better, noisy]), "erm", ["target/A"], n_boot=300)
    by_algorithm = differences[differences["group"] == "target/A"].set_index("algorithm")
    assert by_algorithm.loc["sagm", "excludes_zero"] and by_algorithm.loc["sagm", "ci_low"] > 0
    assert not by_algorithm.loc["asam", "excludes_zero"]
    markdown = differences_markdown(differences)
    assert markdown.splitlines()[0] == "| algorithm | backbone | Δ target/A | Δ held_out_mean |"
    assert "| sagm | r | **+" in markdown and "**Bold**: the interval excludes 0." in markdown


def test_cells_without_predictions_get_the_difference_without_an_interval(tmp_path):
    runs = [make_run(tmp_path, "erm", 0), make_run(tmp_path, "roga", 0, predictions=False)]
    differences = baseline_differences(collect(runs), "erm", GROUPS, n_boot=50)
    assert differences["difference"].notna().all() and differences["ci_low"].isna().all()
    assert set(differences["ci_method"]) == {"none: no predictions of the selected step"}
    assert "Cells without an interval: no predictions of the selected step." in differences_markdown(differences)


def test_unusable_baselines_and_unpaired_test_sets_are_refused(tmp_path):
    runs = [make_run(tmp_path, "erm", 0), make_run(tmp_path, "roga", 0)]
    with pytest.raises(ReportError, match=r"no runs of the baseline 'sam' under source_val .*\['erm', 'roga'\]"):
        baseline_differences(collect(runs), "sam", GROUPS)
    with pytest.warns(UserWarning, match="separate variants"):
        variants = collect(runs + [make_run(tmp_path, "erm", 1, variant=0.1)])
    with pytest.raises(ReportError, match="the baseline 'erm' has 2 config variants"):
        baseline_differences(variants, "erm", GROUPS)
    other = make_run(tmp_path / "other", "sam", 0)
    predictions = pd.read_csv(other / "predictions.csv")
    predictions["video"] = predictions["video"] + "x"
    predictions.to_csv(other / "predictions.csv", index=False)
    with pytest.raises(ReportError, match="sam vs erm .* target/A: cannot pair .* no predictions for video"):
        baseline_differences(collect(runs + [other]), "erm", ["target/A"], n_boot=10)


def test_format_difference_is_signed_rounded_outward_and_bold_when_it_excludes_zero():
    assert format_difference(0.0521, 0.0149, 0.0951, True) == "**+0.052 [+0.01, +0.10]**"
    assert format_difference(-0.004, -0.0301, 0.0201, False) == "-0.004 [-0.04, +0.03]"
    assert format_difference(0.01, math.nan, math.nan, False) == "+0.010"
    assert format_difference(math.nan, math.nan, math.nan, False) == "n/a"


def test_cli_baseline_prints_and_writes_the_differences(tmp_path, capsys):
    runs = [make_run(tmp_path, "erm", 0), make_run(tmp_path, "roga", 0, fake_boost=0.05)]
    parser = argparse.ArgumentParser()
    report_cli.register(parser.add_subparsers())
    args = parser.parse_args(
        ["report", *map(str, runs), "--baseline", "erm", "--n-boot", "50", "--out", str(tmp_path / "out")]
    )
    assert run_command(args) == 0
    printed = capsys.readouterr().out
    assert "Differences to erm:" in printed and "| algorithm | backbone | Δ source_test | Δ target/A |" in printed
    assert (tmp_path / "out" / "report.md").read_text() == printed
    written = pd.read_csv(tmp_path / "out" / "differences.csv")
    assert list(written["group"]) == [*GROUPS, "held_out_mean", "gap"] and set(written["algorithm"]) == {"roga"}
    args = parser.parse_args(["report", *map(str, runs), "--baseline", "sam", "--out", str(tmp_path / "out2")])
    assert run_command(args) == 1 and "no runs of the baseline 'sam'" in capsys.readouterr().err


def test_a_record_value_that_is_not_a_number_is_refused_as_the_results_table_refuses_it(tmp_path):
    runs = collect([make_run(tmp_path, "erm", 0), make_run(tmp_path, "roga", 0)])
    runs["target/A:auc"] = runs["target/A:auc"].astype(object)  # as read from a record that holds text
    runs.loc[runs["algorithm"] == "roga", "target/A:auc"] = "0.9x"
    with pytest.raises(ReportError, match=r"roga.*: target/A:auc = '0.9x' is not a number"):
        baseline_differences(runs, "erm", GROUPS, n_boot=10)
