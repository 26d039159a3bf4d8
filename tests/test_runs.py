"""A run's inputs as objects: the kind of each held-out domain of the manifest a config trains on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from conftest import TARGET
from workbench.config import load_config
from workbench.training.runs import target_kinds


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
