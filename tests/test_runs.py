"""A run's inputs as objects: the kind of each held-out domain of the manifest a config trains on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import TARGET

from workbench.config import load_config
from workbench.training import Trainer
from workbench.training.runs import runs_by_algorithm, selected_checkpoint, target_kinds


def test_target_kinds_tell_held_out_manipulations_from_other_datasets(tiny_config: dict, tiny_manifest: Path) -> None:
    assert target_kinds(tiny_config) == {f"target/{TARGET}": "held-out manipulation"}  # same dataset as the sources
    manifest = pd.read_csv(tiny_manifest)
    copied = manifest[manifest["domain"].isin(["R", TARGET])]  # a second dataset with its own reals and fakes
    other = copied.assign(dataset="OTHER", domain=copied["domain"] + "-X", path="X/" + copied["path"])
    pd.concat([manifest, other]).to_csv(tiny_manifest, index=False)
    config = load_config(overrides={"data": {**tiny_config["data"], "target_domains": [TARGET, f"{TARGET}-X"]}})
    assert target_kinds(config) == {f"target/{TARGET}": "held-out manipulation", f"target/{TARGET}-X": "cross-dataset"}
    assert target_kinds(load_config(overrides={"data": {**tiny_config["data"], "target_domains": []}})) == {}


def test_runs_are_grouped_by_their_configs_algorithm(tmp_path: Path) -> None:
    for name, algorithm in (("a", "erm"), ("b", "roga"), ("c", "erm")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(yaml.safe_dump({"algorithm": {"name": algorithm}}))
    grouped = runs_by_algorithm([tmp_path / "a", tmp_path / "b", str(tmp_path / "c")])
    assert grouped == {"erm": [tmp_path / "a", tmp_path / "c"], "roga": [tmp_path / "b"]}
    with pytest.raises(FileNotFoundError, match="is '.*nowhere' a run directory"):
        runs_by_algorithm([tmp_path / "nowhere"])
    pd.DataFrame({"name": ["a", "b", "c"], "status": ["trained", "already done", "failed: nan"]}).to_csv(
        tmp_path / "sweep.csv", index=False
    )  # tmp_path as a sweep folder
    with pytest.warns(UserWarning, match=r"left out 1 sweep run\(s\).*\['c \(failed: nan\)'\]"):
        assert runs_by_algorithm([tmp_path]) == {"erm": [tmp_path / "a"], "roga": [tmp_path / "b"]}


def test_selected_checkpoint_names_the_kept_file_or_says_what_is_missing(tiny_config: dict, tmp_path: Path) -> None:
    run = Trainer(tiny_config, tmp_path / "run").fit(stop_at_step=3)
    assert selected_checkpoint(run) == "best_source_val.pt" and selected_checkpoint(run, "last") == "last.pt"
    with pytest.raises(FileNotFoundError, match=r"kept the best models of \['source_val'\] only, not 'oracle'"):
        selected_checkpoint(run, "oracle")
    with pytest.raises(ValueError, match="unknown selection 'best'"):
        selected_checkpoint(run, "best")
    (run / "checkpoints" / "best_source_val.pt").unlink()  # as before the first scored evaluation
    with pytest.raises(FileNotFoundError, match="no evaluation of the run has scored 'source_val' yet"):
        selected_checkpoint(run)
    with pytest.raises(FileNotFoundError, match="is '.*nowhere' a run directory"):
        selected_checkpoint(tmp_path / "nowhere")
