"""Scoring a checkpoint without a trainer gives exactly what training evaluated."""

from __future__ import annotations

import pytest

import workbench.training.trainer as trainer_module
from workbench.training import Trainer
from workbench.training.run_dir import RunDir
from workbench.training.scoring import score_checkpoint
from workbench.training.selection import load_records


def test_score_checkpoint_reproduces_the_training_evaluation_without_a_trainer(tiny_config, tmp_path, monkeypatch):
    run = Trainer(tiny_config, tmp_path / "run").fit()
    records = {r["step"]: r["eval"] for r in load_records(run) if "eval" in r and "kind" not in r}
    monkeypatch.setattr(trainer_module, "Trainer", lambda *args: pytest.fail("scoring built a trainer"))
    state, results, predictions = score_checkpoint(run, checkpoint="last.pt")
    assert results == records[int(state["step"])]
    saved = RunDir(run).read_predictions()
    _, _, selected = score_checkpoint(run)  # the source_val model, whose predictions training saved
    assert selected["prob_fake"].tolist() == saved[saved["model"] == "source_val"]["prob_fake"].tolist()
    assert set(predictions["group"]) == set(records[int(state["step"])])


def test_score_checkpoint_names_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="is .* a run directory"):
        score_checkpoint(tmp_path)
