"""Tests for workbench.training.tuning: the variant chosen on validation, never on test groups."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from report_runs import TARGET, make_run

from workbench.training.cells import ReportError
from workbench.training.report import report_tables
from workbench.training.table_text import to_markdown
from workbench.training.tuning import tune_variants


def test_tuning_picks_the_variant_with_the_best_mean_validation_score_not_the_best_test_score(tmp_path):
    # rho: (source_val AUC, target AUC) per seed; 0.05 validates best, 0.1 tests best with one seed
    grid_ = {0.02: [(0.93, 0.70), (0.95, 0.72)], 0.05: [(0.96, 0.60), (0.96, 0.62)], 0.1: [(0.90, 0.99)]}
    runs = [
        make_run(tmp_path, f"roga_r{rho}_s{seed}", "roga", seed, target, source_val_auc=val, hparams={"rho": rho})
        for rho, seeds in grid_.items()
        for seed, (val, target) in enumerate(seeds)
    ]
    runs += [make_run(tmp_path, f"erm_s{seed}", "erm", seed, 0.5 + seed / 10) for seed in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # variants are tuned over, not summarised side by side: no warning
        table, summary = report_tables(runs, groups=[TARGET], n_boot=50, tune=True)
    chosen = table.loc[table["chosen"], "run"].tolist()
    assert chosen == ["roga_r0.05_s0", "roga_r0.05_s1", "erm_s0", "erm_s1"]
    roga = summary[summary["algorithm"] == "roga"].iloc[0]
    assert len(summary) == 2 and roga["variant"] == "algorithm.hparams.rho=0.05"
    assert roga["mean"] == pytest.approx(0.61) and roga["n_seeds"] == 2
    assert table.loc[table["run"] == "roga_r0.02_s1", "tuning_score"].item() == pytest.approx(0.94)
    assert table.loc[table["run"] == "roga_r0.1_s0", "tuning_seeds"].item() == 1
    markdown = to_markdown(summary)
    assert (
        "Hyper-parameters of roga/resnet18 [source_val], chosen among 3 variant(s) by mean source_val auc: "
        "algorithm.hparams.rho=0.02: 0.9400 (2 seeds); **algorithm.hparams.rho=0.05: 0.9600 (2 seeds)**; "
        "algorithm.hparams.rho=0.1: 0.9000 (1 seeds)"
    ) in markdown
    assert "erm/resnet18 [source_val], chosen among 1 variant(s)" in markdown
    with pytest.warns(UserWarning, match="summarised as separate variants"):
        untuned = report_tables(runs, groups=[TARGET], n_boot=50)[1]
    assert len(untuned) == 4 and "tuning" not in untuned.columns


def test_tuning_on_an_error_metric_takes_the_lowest_and_refuses_the_last_rule(tmp_path):
    runs = pd.DataFrame(
        {
            "selection": "source_val",
            "algorithm": "sam",
            "backbone": "b",
            "variant": ["r=1", "r=1", "r=2"],
            "selection_metric": "eer",
            "selection_score": [0.2, 0.1, 0.16],
            "seed": [0, 1, 0],
            "complete": [True, False, True],
        }
    )
    tuned = tune_variants(runs)
    assert tuned["chosen"].tolist() == [True, True, False]
    assert tuned["tuning_score"].tolist() == pytest.approx([0.15, 0.15, 0.16])
    assert tuned["tuning_incomplete"].tolist() == [1, 1, 0]
    with pytest.raises(ReportError, match="'last' has none"):
        tune_variants(runs.assign(selection="last"))
    with pytest.raises(ReportError, match="no run has a selection score"):
        tune_variants(runs.assign(selection_score=None))
