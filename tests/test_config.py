"""Config loading: defaults, YAML files, overrides, and loud errors on unknown keys."""

from __future__ import annotations

import pytest

from workbench.config import DEFAULT_CONFIG, load_config, parse_override


def test_overrides_parse_yaml_values():
    assert parse_override("train.steps=50") == {"train": {"steps": 50}}
    assert parse_override("data.source_domains=[A, B]") == {"data": {"source_domains": ["A", "B"]}}


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("algorithm:\n  name: sam\n  hparams: {rho: 0.1}\ntrain:\n  steps: 9\n")
    config = load_config(path, ["train.steps=11", "algorithm.hparams.alpha=0.01"])
    assert config["algorithm"] == {"name": "sam", "hparams": {"rho": 0.1, "alpha": 0.01}}
    assert config["train"]["steps"] == 11
    assert config["train"]["eval_every"] == DEFAULT_CONFIG["train"]["eval_every"]


def test_unknown_keys_are_errors(tmp_path):
    with pytest.raises(KeyError, match="train.stesp"):
        load_config(overrides=["train.stesp=3"])
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match="key.path=value"):
        load_config(overrides=["train.steps"])
