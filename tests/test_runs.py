"""A run's inputs as objects: the kind of each held-out domain of the manifest a config trains on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import TARGET
from workbench.config import load_config
from workbench.training.runs import runs_by_algorithm, target_kinds


def test_target_kinds_tell_held_out_manipulations_from_other_datasets(tiny_config: dict, tiny_manifest: Path) -> None:
    assert target_kinds(tiny_config) == {f"target/{TARGET}": "held-out manipulation"}  # same dataset as the sources
    manifest = pd.read_csv(tiny_manifest)
    copied = manifest[manifest["domain"].isin(["R", TARGET])]  # a second dataset with its own reals and fakes
    other = copied.assign(dataset="OTHER", domain=copied["domain"] + "-X", path="X/" + copied["path"])
    pd.concat([manifest, other]).to_csv(tiny_manifest, index=False)
    config = load_config(overrides={"data": {**tiny_config["data"], "target_domains": [TARGET, f"{TARGET}-X"]}})
    assert target_kinds(config) == {f"target/{TARGET}": "held-out manipulation",
                                    f"target/{TARGET}-X": "cross-dataset"}
    assert target_kinds(load_config(overrides={"data": {**tiny_config["data"], "target_domains": []}})) == {}


def test_runs_are_grouped_by_their_configs_algorithm(tmp_path: Path) -> None:
    for name, algorithm in (("a", "erm"), ("b", "roga"), ("c", "erm")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(yaml.safe_dump({"algorithm": {"name": algorithm}}))
    grouped = runs_by_algorithm([tmp_path / "a", tmp_path / "b", str(tmp_path / "c")])
    assert grouped == {"erm": [tmp_path / "a", tmp_path / "c"], "roga": [tmp_path / "b"]}
    with pytest.raises(FileNotFoundError, match="is '.*nowhere' a run directory"):
        runs_by_algorithm([tmp_path / "nowhere"])
