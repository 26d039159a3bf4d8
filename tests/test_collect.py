"""Tests for workbench.training.collect: a row per run, its identity, selected record and config variant."""

from __future__ import annotations

import json
import warnings

import pytest
import yaml
from report_runs import TARGET, grid, make_run

from workbench.training.cells import ReportError
from workbench.training.collect import IncompleteRunWarning, collect
from workbench.training.report import summarise
from workbench.training.table_text import to_markdown


def test_collect_reads_identity_and_the_selected_record(tmp_path):
    df = collect(grid(tmp_path))
    assert list(df["run"]) == ["erm_s0", "erm_s1", "erm_s2", "roga_s0", "roga_s1"]
    assert list(df["algorithm"]) == ["erm"] * 3 + ["roga"] * 2
    assert list(df["seed"]) == [0, 1, 2, 0, 1]
    assert set(df["backbone"]) == {"resnet18"}
    assert list(df["step"]) == [200] * 5
    assert list(df[f"{TARGET}:auc"]) == [0.80, 0.85, 0.90, 0.90, 0.94]
    assert df["complete"].all() and (df["variant"] == "").all()
    assert "target/FAKES-ONLY:auc_reason" in df.columns


def test_collect_falls_back_to_record_identity_and_fails_without_one(tmp_path):
    run = make_run(tmp_path, "plain", "sagm", 7, 0.8, backbone="efficientnet_b4", config=False)
    row = collect([run]).iloc[0]
    assert (row["algorithm"], row["backbone"], row["seed"]) == ("sagm", "efficientnet_b4", 7)
    lines = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    for record in lines:
        del record["backbone"]
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(ReportError, match=r"plain: no backbone.*'model.name'"):
        collect([run])


def test_collect_errors_name_the_run(tmp_path):
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="not_a_run/records.jsonl"):
        collect([empty])
    run = make_run(tmp_path, "r", "erm", 0, 0.8)
    with pytest.raises(ReportError, match="r: rule 'lodo'"):
        collect([run], rule="lodo")
    with pytest.raises(ReportError, match="listed twice"):
        collect([run, run])


def test_rules_change_the_selected_step(tmp_path):
    runs = grid(tmp_path)
    assert list(collect(runs, rule="oracle")["step"]) == [100] * 5
    oracle = collect(runs, rule="oracle")
    assert oracle["oracle"].all() and list(oracle[f"{TARGET}:auc"]) == [0.99] * 5
    assert list(collect(runs, rule="last")["step"]) == [200] * 5


def test_default_groups_are_source_test_and_targets(tmp_path):
    summary = summarise(collect(grid(tmp_path)), n_boot=50)
    assert list(dict.fromkeys(summary["group"])) == ["source_test", "target/FAKES-ONLY", TARGET]


def test_incomplete_runs_are_flagged(tmp_path):
    runs = grid(tmp_path)
    (runs[1] / "done").unlink()
    with pytest.warns(IncompleteRunWarning, match="erm_s1: no 'done' marker"):
        df = collect(runs)
    assert list(df["complete"]) == [True, False, True, True, True]
    markdown = to_markdown(summarise(df, [TARGET], n_boot=50))
    assert "| erm | resnet18 | 3 (1 incomplete) |" in markdown


def test_repeated_seeds_warn(tmp_path):
    runs = [make_run(tmp_path, name, "erm", 0, 0.9) for name in ("a", "b")]
    with pytest.warns(UserWarning, match="repeat an algorithm/backbone/variant/seed"):
        collect(runs)


def test_config_variants_are_not_pooled(tmp_path):
    runs = [
        make_run(tmp_path, f"roga_rho{rho}_s{s}", "roga", s, 0.9, hparams={"rho": rho})
        for rho in (0.05, 0.0)
        for s in range(2)
    ]
    with pytest.warns(UserWarning, match=r"differ in config key\(s\) \['algorithm.hparams.rho'\]"):
        df = collect(runs)
    assert list(df["variant"]) == ["algorithm.hparams.rho=0.05"] * 2 + ["algorithm.hparams.rho=0.0"] * 2
    summary = summarise(df, [TARGET], n_boot=50)
    assert list(summary["n_seeds"]) == [2, 2]
    assert "| algorithm | backbone | variant | seeds |" in to_markdown(summary)


def test_runs_differing_only_where_and_how_they_ran_are_seeds_of_one_variant(tmp_path):
    runs = grid(tmp_path)[:2]
    for i, run in enumerate(runs):
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["train"].update(progress=bool(i), cpu_threads=i + 1, device=["cpu", "cuda"][i])
        config["data"] = {
            "root": f"/data/{i}",
            "workers": i,
            "eval_batch_size": 64 * (i + 1),
            "synthetic": {"cache_dir": f"/cache/{i}", "workers": i + 1, "seed": 0},
        }
        (run / "config.yaml").write_text(yaml.safe_dump(config))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = collect(runs)
    assert list(df["variant"]) == ["", ""]
    assert list(summarise(df, [TARGET], n_boot=50)["n_seeds"]) == [2]


def test_a_differing_budget_is_a_variant(tmp_path):
    runs = grid(tmp_path)[:2]
    config = yaml.safe_load((runs[1] / "config.yaml").read_text())
    config["train"]["steps"] = 400
    (runs[1] / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.warns(UserWarning, match=r"differ in config key\(s\) \['train.steps'\]"):
        df = collect(runs)
    assert list(df["variant"]) == ["train.steps=200", "train.steps=400"]


def test_rule_last_reports_the_last_evaluation_not_a_later_analysis_line(tmp_path):
    run = make_run(tmp_path, "erm_s0", "erm", 0, 0.8)
    with (run / "records.jsonl").open("a") as handle:
        handle.write(json.dumps({"kind": "alignment", "step": 250, "alignment": {"cos": 0.1}}) + "\n")
    df = collect([run], rule="last")
    assert list(df["step"]) == [200] and list(df[f"{TARGET}:auc"]) == [0.8]
    assert list(summarise(df, [TARGET], n_boot=50)["mean"]) == [0.8]
