"""The run directory: its layout, its atomic writes, and the one rule for resuming or reusing a run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from workbench.atomic import atomic_path, atomic_write_text
from workbench.config import DEFAULT_CONFIG
from workbench.notebook_support import merge_overrides
from workbench.training.checkpoint import CheckpointError
from workbench.training.run_dir import RunConfigError, RunDir, RunMismatchError


def test_layout_names_every_file(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    assert run.config_file == tmp_path / "run" / "config.yaml"
    assert run.records_file == tmp_path / "run" / "records.jsonl"
    assert run.predictions_file == tmp_path / "run" / "predictions.csv"
    assert run.done_file == tmp_path / "run" / "done"
    assert run.last == tmp_path / "run" / "checkpoints" / "last.pt"
    assert run.best("lodo") == tmp_path / "run" / "checkpoints" / "best_lodo.pt"
    assert run.swad == tmp_path / "run" / "checkpoints" / "swad.pt"


def test_done_marker_and_refusal(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert not run.done
    run.refuse_finished()
    run.mark_done(12)
    assert run.done and run.done_file.read_text() == "step 12\n"
    with pytest.raises(FileExistsError, match="is a finished run"):
        run.refuse_finished()


def test_atomic_write_leaves_the_old_file_when_the_write_fails(tmp_path: Path) -> None:
    path = tmp_path / "a" / "file.txt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old" and sorted(p.name for p in path.parent.iterdir()) == ["file.txt"]


def test_checkpoints_round_trip_and_damaged_ones_are_named(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.save("last.pt", {"step": 3, "w": torch.ones(2)})
    assert run.load("last.pt")["step"] == 3 and run.resumable
    run.checkpoint("best_source_val.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="best_source_val.pt"):
        run.load("best_source_val.pt")


def test_truncate_to_drops_later_records_and_predictions(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    for step, kind in ((2, None), (4, None), (4, "swad"), (6, None)):
        run.records.append({"step": step, **({"kind": kind} if kind else {}), "eval": {}})
    run.write_predictions(pd.DataFrame({"step": [4, 6], "video": ["007", "008"], "prob_fake": [0.25, 0.5]}))
    run.truncate_to(4, finishing_kinds=("swad",))
    assert [r["step"] for r in run.load_records()] == [2, 4] and all("kind" not in r for r in run.load_records())
    kept = run.read_predictions()
    assert kept["step"].tolist() == [4] and kept["video"].tolist() == ["007"]  # identifiers stay strings


def test_discard_attempt_removes_what_an_unsaved_attempt_wrote(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.records.append({"step": 1, "eval": {}})
    run.save("best_source_val.pt", {"step": 1})
    (tmp_path / "notes.txt").write_text("mine")
    assert run.discard_attempt() == ["records.jsonl", "checkpoints/best_source_val.pt"]
    assert (tmp_path / "notes.txt").exists() and run.load_records() == []


def test_one_rule_for_resuming_and_reusing(tmp_path: Path) -> None:
    config = merge_overrides(DEFAULT_CONFIG, {"train": {"steps": 10}})
    run = RunDir(tmp_path)
    run.check_config(config)  # nothing saved: a new run
    with pytest.raises(RunMismatchError, match="no config.yaml"):
        run.check_config(config, require_saved=True)
    run.write_config(config)
    run.check_config(merge_overrides(config, {"train": {"steps": 20, "device": "cuda"}}))  # an unfinished run grows
    with pytest.raises(
        RunMismatchError,
        match=r"cannot resume this run: .* algorithm.hparams.lr: saved 0.0002, "
        r"requested 0.1",
    ):
        run.check_config(merge_overrides(config, {"algorithm": {"hparams": {"lr": 0.1}}}))
    run.mark_done(10)
    run.check_config(merge_overrides(config, {"train": {"device": "cuda"}}))  # where it ran does not count
    with pytest.raises(
        RunMismatchError,
        match=r"cannot reuse this finished run: .* train.steps: saved 10, "
        r"requested 20",
    ):
        run.check_config(merge_overrides(config, {"train": {"steps": 20}}))


def test_an_unreadable_saved_config_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("a: [1,\n")
    with pytest.raises(RunConfigError, match=r"config.yaml: invalid YAML"):
        RunDir(tmp_path).read_config()
    (tmp_path / "config.yaml").write_text("- 1\n")
    with pytest.raises(RunConfigError, match="expected a mapping at the top level, got list"):
        RunDir(tmp_path).read_config()
