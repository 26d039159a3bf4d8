"""Tests for workbench.training.report (summaries, intervals, tables) and the ``report`` subcommand, on fake run
directories."""

from __future__ import annotations

import argparse
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from report_runs import TARGET, grid, make_run

from workbench.cli import report as report_cli
from workbench.cli import run_command
from workbench.metrics import compute_metrics, video_bootstrap_ci
from workbench.training.cells import ReportError
from workbench.training.collect import collect
from workbench.training.report import figure_summary, held_out_table, report_tables, summarise, write_report
from workbench.training.table_text import format_cell, to_markdown


def test_summarise_mean_std_and_seed_bootstrap(tmp_path):
    summary = summarise(collect(grid(tmp_path)), [TARGET], "auc", n_boot=500, seed=0).set_index("algorithm")
    erm, roga = summary.loc["erm"], summary.loc["roga"]
    assert erm["mean"] == pytest.approx(0.85) and erm["std"] == pytest.approx(0.05)
    assert roga["mean"] == pytest.approx(0.92) and roga["std"] == pytest.approx(math.sqrt(0.0008))
    assert (erm["n_seeds"], roga["n_seeds"]) == (3, 2)
    assert erm["ci_method"] == "seed bootstrap"
    # A bootstrap of seed means stays within the seed values and contains their mean.
    assert 0.80 <= erm["ci_low"] <= 0.85 <= erm["ci_high"] <= 0.90
    again = summarise(collect(grid(tmp_path / "again")), [TARGET], "auc", n_boot=500, seed=0).set_index("algorithm")
    assert (again.loc["erm", "ci_low"], again.loc["erm", "ci_high"]) == (erm["ci_low"], erm["ci_high"])


def test_summarise_one_seed_and_undefined_metric(tmp_path):
    df = collect([make_run(tmp_path, "solo", "erm", 0, 0.9)])
    summary = summarise(df, [TARGET, "target/FAKES-ONLY"], "auc").set_index("group")
    solo = summary.loc[TARGET]
    assert solo["mean"] == pytest.approx(0.9) and math.isnan(solo["std"]) and math.isnan(solo["ci_low"])
    assert solo["ci_method"] == "none: 1 seed and no predictions"
    undefined = summary.loc["target/FAKES-ONLY"]
    assert math.isnan(undefined["mean"]) and undefined["n_seeds"] == 0
    assert undefined["ci_method"] == "none: metric undefined (only one class present (n_real=0, n_fake=3))"
    with pytest.raises(ReportError, match=r"group\(s\) \['target/NOPE'\]"):
        summarise(df, ["target/NOPE"], "auc")


def test_markdown_and_csv_with_known_numbers(tmp_path):
    summary = summarise(collect(grid(tmp_path)), [TARGET], "auc", n_boot=500)
    markdown = to_markdown(summary)
    lines = markdown.splitlines()
    assert lines[0] == f"| algorithm | backbone | seeds | {TARGET} |"
    erm = summary.set_index("algorithm").loc["erm"]
    low, high = math.floor(erm["ci_low"] * 100) / 100, math.ceil(erm["ci_high"] * 100) / 100  # rounded outward
    assert lines[2] == f"| erm | resnet18 | 3 | 0.850 ± 0.050 [{low:.2f}, {high:.2f}] |"
    assert lines[3].startswith("| roga | resnet18 | 2 | 0.920 ± 0.028 [")
    assert "training-domain validation" in markdown
    paths = write_report(summary, tmp_path / "out", runs=collect(grid(tmp_path / "g2")))
    assert paths["markdown"].read_text() == markdown
    csv = pd.read_csv(paths["csv"]).set_index("algorithm")
    assert csv.loc["erm", "mean"] == pytest.approx(0.85) and csv.loc["erm", "std"] == pytest.approx(0.05)
    assert len(pd.read_csv(paths["runs"])) == 5


def test_format_cell_rounds_the_interval_outward():
    assert format_cell(0.9123, 0.0101, 0.891, 0.934) == "0.912 ± 0.010 [0.89, 0.94]"
    # to nearest this would print [0.90, 0.93], narrower than the computed [0.8951, 0.9349]
    assert format_cell(0.9, math.nan, 0.8951, 0.9349) == "0.900 [0.89, 0.94]"
    assert format_cell(0.9, math.nan, 0.89, 0.93) == "0.900 [0.89, 0.93]"  # bounds already at 2 decimals stay
    assert format_cell(0.9, math.nan, math.nan, math.nan) == "0.900"
    assert format_cell(math.nan, math.nan, math.nan, math.nan) == "n/a"


def summary_rows() -> list[dict]:
    """A hand-made summary: erm and roga on two target groups and source_test, plus one oracle row."""
    rows = []
    for algorithm, base in (("erm", 0.7), ("roga", 0.8)):
        for group, shift in (("target/C", -0.2), ("source_test", 0.1), ("target/H", -0.1)):
            mean = base + shift
            rows.append(
                dict(
                    selection="source_val",
                    algorithm=algorithm,
                    backbone="r",
                    variant="",
                    group=group,
                    mean=mean,
                    std=0.01,
                    ci_low=mean - 0.05,
                    ci_high=mean + 0.05,
                )
            )
    rows.append({**rows[0], "selection": "oracle", "mean": 0.99})
    return rows


def test_figure_summary_selects_a_rule_and_labels_variants_and_backbones():
    rows = summary_rows()
    rows[3:6] = [{**row, "variant": "algorithm.hparams.rho=0.1"} for row in rows[3:6]]
    primary = figure_summary(pd.DataFrame(rows))
    assert list(dict.fromkeys(primary["algorithm"])) == ["erm", "roga (algorithm.hparams.rho=0.1)"]
    assert len(primary) == 6 and set(primary["selection"]) == {"source_val"}
    oracle = figure_summary(pd.DataFrame(rows), rule="oracle")
    assert list(oracle["mean"]) == [0.99]
    rows[0:3] = [{**row, "backbone": "vit"} for row in rows[0:3]]
    assert list(dict.fromkeys(figure_summary(pd.DataFrame(rows))["algorithm"])) == [
        "erm · vit",
        "roga (algorithm.hparams.rho=0.1) · r",
    ]
    with pytest.raises(ValueError, match=r"no rows selected by 'lodo'; it has \['oracle', 'source_val'\]"):
        figure_summary(pd.DataFrame(rows), rule="lodo")


def test_held_out_table_arranges_groups_by_kind():
    kinds = {"target/H": "held-out manipulation", "target/C": "cross-dataset"}
    table = held_out_table(pd.DataFrame(summary_rows()), kinds)
    assert list(table.columns) == [
        ("source", "source_test"),
        ("held-out manipulation", "target/H"),
        ("cross-dataset", "target/C"),
    ]
    assert list(table.index) == ["erm", "roga"]
    # the hand-made bound 0.6 + 0.05 is 0.6500000000000001 in floating point, so it rounds up to 0.66
    assert table.loc["roga", ("cross-dataset", "target/C")] == "0.600 ± 0.010 [0.55, 0.66]"
    unmapped = held_out_table(pd.DataFrame(summary_rows()), {"target/H": "held-out manipulation"})
    assert list(unmapped.columns)[-1] == ("target", "target/C")


def _predictions(seed):
    """Target predictions at step 200: 6 real and 6 fake videos, 3 frames each, seed-dependent scores."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0] * 6 + [1] * 6, 3)
    probs = np.clip(rng.normal(0.4, 0.15, 36) + 0.25 * labels, 0, 1)
    return pd.DataFrame(
        {
            "group": TARGET,
            "path": [f"f{i}.png" for i in range(36)],
            "dataset": "SYN",
            "domain": "SYN-SEAMLESS",
            "split": "test",
            "video": np.repeat([f"v{i}" for i in range(12)], 3),
            "label": labels,
            "prob_fake": probs,
            "step": 200,
        }
    )


def _prediction_runs(root, step=200):
    runs = []
    for seed in range(3):
        predictions = _predictions(seed).assign(step=step)
        auc = compute_metrics(predictions["label"], predictions["prob_fake"])["auc"]
        runs.append(make_run(root, f"roga_s{seed}", "roga", seed, auc, predictions=predictions))
    return runs


def test_video_bootstrap_ci_from_predictions(tmp_path):
    df = collect(_prediction_runs(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # predictions agree with the records: no mismatch warning
        row = summarise(df, [TARGET], "auc", n_boot=300, seed=4).iloc[0]
    assert row["ci_method"].startswith("video bootstrap (3 seed(s)")
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    samples = [(p["label"], p["prob_fake"], "SYN-SEAMLESS/" + p["video"]) for p in map(_predictions, range(3))]
    assert (row["ci_low"], row["ci_high"]) == video_bootstrap_ci(samples, "auc", n_boot=300, seed=4)
    other = summarise(df, [TARGET], "auc", n_boot=300, seed=5).iloc[0]
    assert (other["ci_low"], other["ci_high"]) != (row["ci_low"], row["ci_high"])


def test_seed_bootstrap_cells_are_marked_when_a_table_mixes_interval_kinds(tmp_path):
    _, summary = report_tables(_prediction_runs(tmp_path), groups=[TARGET], with_oracle=True, n_boot=50)
    assert summary["ci_method"].tolist()[0].startswith("video bootstrap") and summary["ci_method"].tolist()[1] == (
        "seed bootstrap"
    )  # predictions exist for the source_val step (200), not the oracle's (100)
    row = to_markdown(summary).splitlines()[2]
    source_val_cell, oracle_cell = row.split(" | ")[-2:]
    assert not source_val_cell.endswith("†") and oracle_cell.endswith("† |")
    assert "†: seed bootstrap: resamples the seeds' values" in to_markdown(summary)
    assert "†" not in to_markdown(summary[summary["selection"] == "oracle"])  # one kind: nothing to tell apart


def test_predictions_of_another_step_fall_back_to_seed_bootstrap(tmp_path):
    df = collect(_prediction_runs(tmp_path, step=100))
    assert summarise(df, [TARGET], "auc", n_boot=100).iloc[0]["ci_method"] == "seed bootstrap"


def test_predictions_disagreeing_with_records_are_refused_not_mixed(tmp_path):
    runs = _prediction_runs(tmp_path)
    lines = (runs[0] / "records.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    last["eval"][TARGET]["auc"] = 0.5
    (runs[0] / "records.jsonl").write_text("\n".join([lines[0], json.dumps(last)]) + "\n")
    with pytest.raises(
        ReportError,
        match=r"roga_s0/predictions.csv: target/SYN-SEAMLESS auc at step 200 is 0\.\d+ "
        r"from the predictions but 0.5 in records.jsonl",
    ):
        summarise(collect(runs), [TARGET], "auc", n_boot=50)


def test_oracle_columns_are_labelled(tmp_path):
    runs, summary = report_tables(grid(tmp_path), groups=[TARGET], with_oracle=True, n_boot=100)
    assert set(summary["selection"]) == {"source_val", "oracle"}
    assert summary.loc[summary["selection"] == "oracle", "oracle"].all()
    assert summary.loc[summary["selection"] == "oracle", "mean"].tolist() == pytest.approx([0.99, 0.99])
    markdown = to_markdown(summary)
    assert markdown.splitlines()[0] == f"| algorithm | backbone | seeds | {TARGET} | {TARGET} [oracle] |"
    assert "[oracle]: ORACLE" in markdown and "not a valid selection" in markdown
    assert len(runs) == 10


def _cli(argv):
    parser = argparse.ArgumentParser()
    report_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return run_command(args)


def test_cli_prints_and_writes_the_report(tmp_path, capsys):
    runs = grid(tmp_path / "runs")
    (runs[0] / "done").unlink()
    out = tmp_path / "out"
    code = _cli(["report", *map(str, runs), "--groups", TARGET, "--with-oracle", "--n-boot", "50", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    assert f"| algorithm | backbone | seeds | {TARGET} | {TARGET} [oracle] |" in captured.out
    assert "warning:" in captured.err and "erm_s0: no 'done' marker" in captured.err
    assert (out / "report.md").read_text() == captured.out
    assert set(pd.read_csv(out / "report.csv")["selection"]) == {"source_val", "oracle"}
    runs_table = pd.read_csv(out / "runs.csv")
    assert runs_table.loc[runs_table["run"] == "erm_s0", "complete"].tolist() == [False, False]


def test_cli_names_a_directory_without_records(tmp_path, capsys):
    missing = tmp_path / "empty_run"
    missing.mkdir()
    assert _cli(["report", str(missing), "--out", str(tmp_path / "out")]) == 1
    assert "empty_run/records.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_seeds_column_counts_seeds_behind_cells_not_runs(tmp_path):
    runs = grid(tmp_path)
    (runs[2] / "records.jsonl").write_text(
        (runs[2] / "records.jsonl").read_text().replace('"auc": 0.9}', '"auc": null}')
    )
    df = collect(runs)
    assert df[f"{TARGET}:auc"].isna().tolist() == [False, False, True, False, False]
    only_target = to_markdown(summarise(df, [TARGET], n_boot=50)).splitlines()[2]
    assert only_target.startswith("| erm | resnet18 | 2 of 3 runs | 0.825 ± 0.035 [")  # not "3": one run has no value
    both = to_markdown(summarise(df, ["source_test", TARGET], n_boot=50)).splitlines()
    erm = both[2].split(" | ")
    assert erm[2] == "3" and erm[3] == "0.960 ± 0.000 [0.96, 0.96]" and erm[4].endswith("(2 seeds) |")
    assert "a cell followed by (k seeds) rests on fewer" in "\n".join(both)


def test_notes_do_not_promise_a_std_or_intervals_that_are_not_there(tmp_path):
    one_seed = to_markdown(summarise(collect([make_run(tmp_path, "solo", "erm", 0, 0.9)]), [TARGET], n_boot=50))
    assert "over seeds ± std" not in one_seed and "one seed each, so no ± std" in one_seed
    assert "No cell has a confidence interval (1 seed and no predictions)." in one_seed
    assert "[low, high]" not in one_seed and "bootstrap interval" not in one_seed
    _, oracle_only = report_tables(
        [make_run(tmp_path / "o", "solo", "erm", 0, 0.9)], rule="oracle", groups=[TARGET], n_boot=50
    )
    assert "No cell has a confidence interval" in to_markdown(oracle_only)


def test_notes_say_what_a_video_bootstrap_covers(tmp_path):
    markdown = to_markdown(summarise(collect(_prediction_runs(tmp_path)), [TARGET], n_boot=50))
    assert "Video bootstrap: resamples the test videos" in markdown
    assert "not how much it varies between training seeds" in markdown
    assert "mean over seeds ± std over seeds (ddof=1" in markdown


def test_cells_without_an_interval_are_marked_next_to_cells_with_one(tmp_path):
    runs = grid(tmp_path) + [make_run(tmp_path, "solo", "sam", 0, 0.9)]
    markdown = to_markdown(summarise(collect(runs), [TARGET], n_boot=50))
    rows = markdown.splitlines()
    assert rows[2].startswith("| erm |") and not rows[2].endswith("‡ |")
    assert rows[4] == "| sam | resnet18 | 1 | 0.900 ‡ |"
    assert "‡: no interval (1 seed and no predictions)." in markdown


def test_the_selection_metric_is_stated_and_can_differ_from_the_reported_one(tmp_path):
    runs = [make_run(tmp_path, f"erm_s{s}", "erm", s, 0.8, source_val_eer=(0.1, 0.2)) for s in range(2)]
    _, by_auc = report_tables(runs, groups=[TARGET], n_boot=50)
    assert by_auc["mean"].tolist() == [0.8] and "comparing records by auc." in to_markdown(by_auc)
    _, by_eer = report_tables(runs, groups=[TARGET], n_boot=50, selection_metric="eer")
    assert by_eer["mean"].tolist() == [0.99]  # the step with the lowest source-val EER (100), not the best AUC
    assert "comparing records by eer, not by the reported auc." in to_markdown(by_eer)
    _, eer = report_tables(runs, metric="eer", groups=["source_val"], n_boot=50)
    assert "Metric: eer (lower is better)" in to_markdown(eer) and "comparing records by eer." in to_markdown(eer)


def test_test_set_sizes_are_shown_per_group(tmp_path):
    runs = []
    for seed in range(2):
        predictions = _predictions(seed)
        auc = compute_metrics(predictions["label"], predictions["prob_fake"])["auc"]
        runs.append(
            make_run(
                tmp_path,
                f"roga_s{seed}",
                "roga",
                seed,
                auc,
                predictions=predictions,
                frames=(18, 18) if seed == 0 else None,
            )
        )  # seed 1: frames counted from predictions
    summary = summarise(collect(runs), [TARGET, "source_test"], n_boot=50)
    row = summary.set_index("group").loc[TARGET]
    assert (row["real_videos"], row["fake_videos"], row["real_frames"], row["fake_frames"]) == (6, 6, 18, 18)
    markdown = to_markdown(summary)
    assert f"| {TARGET} | 6 | 6 | 18 | 18 | 0.50 |" in markdown
    assert "| source_test | not saved | not saved | not saved | not saved | n/a |" in markdown
    imbalanced = to_markdown(summary.assign(real_frames=120.0, fake_frames=600.0))
    assert f"| {TARGET} | 6 | 6 | 120 | 600 | 0.83 |" in imbalanced  # AP of a random score: 600 / 720
