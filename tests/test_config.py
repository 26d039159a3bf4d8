"""Config loading: defaults, YAML files, overrides, and loud errors on unknown keys."""

from __future__ import annotations

import re

import pytest
import yaml

from workbench.config import (
    DEFAULT_CONFIG,
    INTEGER_KEYS,
    ConfigError,
    UnknownConfigKeyError,
    check_checkpoint_rules_usable,
    load_config,
    load_yaml,
    parse_override,
)
from workbench.saved_config import RUN_SPECIFIC_KEYS, dump_config, run_config_changes, with_resolved_hparams
from workbench.training.run_dir import RESUMABLE_CHANGES


def test_overrides_parse_yaml_values():
    assert parse_override("train.steps=50") == {"train": {"steps": 50}}
    assert parse_override("data.source_domains=[A, B]") == {"data": {"source_domains": ["A", "B"]}}


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("algorithm:\n  name: sagm\n  hparams: {rho: 0.1}\ntrain:\n  steps: 9\n")
    config = load_config(path, ["train.steps=11", "algorithm.hparams.alpha=0.01"])
    assert config["algorithm"] == {"name": "sagm", "hparams": {"rho": 0.1, "alpha": 0.01}}
    assert config["train"]["steps"] == 11
    assert config["train"]["eval_every"] == DEFAULT_CONFIG["train"]["eval_every"]


def test_unknown_keys_are_errors(tmp_path):
    with pytest.raises(KeyError, match="train.stesp"):
        load_config(overrides=["train.stesp=3"])
    with pytest.raises(UnknownConfigKeyError) as unknown:
        load_config(overrides=["train.stesp=3"])
    assert isinstance(unknown.value, ConfigError)
    assert str(unknown.value).startswith("unknown config key 'train.stesp'")  # not quoted like a plain KeyError
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match="key.path=value"):
        load_config(overrides=["train.steps"])


@pytest.mark.parametrize(
    "override",
    [
        "train.steps=abc",
        "train.steps=0",
        "train.steps=-3",
        "train.steps=true",
        "train.seed=1.5",
        "train.seed=-1",
        "train.eval_every=0",
        "train.alignment_every=-1",
        "train.cpu_threads=0",
        "data.batch_size=2.5",
        "data.eval_batch_size=0",
        "data.workers=-1",
        "data.image_size=x",
        "data.real_fraction=1",
        "data.real_fraction=half",
    ],
)
def test_bad_numeric_values_name_the_key_and_the_value(override):
    key, value = override.split("=")
    with pytest.raises(
        ConfigError, match=rf"config key '{key}' must be .*, got {re.escape(repr(yaml.safe_load(value)))}$"
    ):
        load_config(overrides=[override])


def test_good_numeric_values_pass():
    config = load_config(
        overrides=["train.steps=1", "train.seed=0", "train.cpu_threads=null", "data.workers=0", "data.real_fraction=0"]
    )
    assert (config["train"]["steps"], config["train"]["cpu_threads"]) == (1, None)


def _is_key(dotted):
    node = DEFAULT_CONFIG
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_run_specific_and_checked_keys_are_real_config_keys():
    assert all(_is_key(k) for k in RUN_SPECIFIC_KEYS | set(INTEGER_KEYS)), [
        k for k in RUN_SPECIFIC_KEYS | set(INTEGER_KEYS) if not _is_key(k)
    ]
    # one list: what may differ on resume extends it, except the kept checkpoints (a rule added later lost its best)
    assert RUN_SPECIFIC_KEYS - {"train.checkpoint_rules"} < RESUMABLE_CHANGES
    assert "train.checkpoint_rules" not in RESUMABLE_CHANGES


@pytest.mark.parametrize(
    "override,message",
    [
        ("algorithm.name=rogaa", r"config key 'algorithm.name': unknown algorithm 'rogaa'; known: \['"),
        (
            "algorithm.hparams.rh0=0.1",
            r"config key 'algorithm.hparams': unknown hyper-parameter 'rh0' for algorithm 'roga'",
        ),
        ("algorithm.hparams.rho=-1", r"config key 'algorithm.hparams': hyper-parameter rho=-1 must be a number >= 0"),
        (
            "algorithm.hparams.lr=.nan",
            r"config key 'algorithm.hparams': hyper-parameter lr=nan must be a finite number",
        ),
        (
            "algorithm.hparams.lr=.inf",
            r"config key 'algorithm.hparams': hyper-parameter lr=inf must be a finite number",
        ),
        (
            "algorithm.hparams.ascent=both",
            r"config key 'algorithm.hparams': hyper-parameter ascent='both' is not one of",
        ),
    ],
)
def test_the_algorithm_and_its_hparams_are_checked_when_the_config_loads(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])
    assert load_config(overrides=["algorithm.name=RoGA"])["algorithm"]["name"] == "RoGA"  # any case, as build_algorithm


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.checkpoint_rules=[source_val, best]"], r"unknown rule\(s\) \['best'\]"),
        (["train.checkpoint_rules=[lodo]", "data.lodo_domain=X"], "include 'source_val'"),
        (["train.checkpoint_rules=[source_val, source_val]"], "each rule once"),
        (["train.checkpoint_rules=source_val"], "must be a list"),
    ],
)
def test_kept_checkpoint_rules_are_checked_when_the_config_loads(overrides, message):
    with pytest.raises(ConfigError, match=rf"config key 'train.checkpoint_rules'.*{message}"):
        load_config(overrides=overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.checkpoint_rules=[source_val, lodo]"], "'lodo' needs a held-out validation domain"),
        (["train.checkpoint_rules=[source_val, oracle]", "data.target_domains=[]"], "'oracle' needs target domains"),
    ],
)
def test_kept_rules_a_training_run_could_never_score_are_refused_before_training(overrides, message):
    config = load_config(overrides=overrides)  # loads: eval may score a trained run on other data
    with pytest.raises(ConfigError, match=rf"config key 'train.checkpoint_rules'.*{message}"):
        check_checkpoint_rules_usable(config)
    config = load_config(overrides=["train.checkpoint_rules=[oracle, source_val, lodo]", "data.lodo_domain=X"])
    assert config["train"]["checkpoint_rules"] == ["source_val", "lodo", "oracle"]  # one order, whatever the input


def test_exponent_notation_is_a_number_in_files_and_overrides(tmp_path):
    """PyYAML alone reads ``1e-3`` as text (YAML 1.1); an lr written that way must still be a number."""
    path = tmp_path / "c.yaml"
    path.write_text("algorithm:\n  hparams: {lr: 1e-3, weight_decay: 5E-4}\n")
    config = load_config(path, ["algorithm.hparams.rho=2e-2"])
    assert config["algorithm"]["hparams"] == {"lr": 1e-3, "weight_decay": 5e-4, "rho": 0.02}
    assert parse_override("run.name=1e") == {"run": {"name": "1e"}}


def test_text_that_looks_like_a_number_survives_config_yaml_and_resume_comparison(tmp_path):
    config = load_config(overrides=["run.name='1e3'", "data.target_domains=['2e5', X]", "data.synthetic.tag='1e5'"])
    dump_config(config, tmp_path / "config.yaml")
    saved = load_yaml((tmp_path / "config.yaml").read_text())
    assert (
        saved == with_resolved_hparams(config)
        and saved["run"]["name"] == "1e3"
        and saved["data"]["synthetic"]["tag"] == "1e5"
    )
    assert run_config_changes(saved, config, ignored=()) == []


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("run.name=1e3", "run.name"),
        ("model.name=18", "model.name"),
        ("data.source_domains=[A, 2e5]", "data.source_domains"),
        ("data.lodo_domain=0e0", "data.lodo_domain"),
    ],
)
def test_names_that_yaml_reads_as_numbers_are_refused_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"config key '{key}' must be text.*quote a name"):
        load_config(overrides=[override])


def test_a_whole_number_written_as_a_float_gets_a_hint():
    with pytest.raises(ConfigError, match=r"'train.steps' must be an integer >= 1, got 1000.0 \(write 1000\)"):
        load_config(overrides=["train.steps=1e3"])


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.name=resnet_10t", r"config key 'model.name': unknown timm model 'resnet_10t'; did you mean \["),
        ("model.name=no_such_net_at_all", r"config key 'model.name': unknown timm model 'no_such_net_at_all'"),
        (
            "model.kwargs={drop_rat: 0.1}",
            r"config key 'model.kwargs': timm model 'resnet10t' does not accept "
            r"\{'drop_rat': 0.1\} \(TypeError: .*drop_rat",
        ),
        ("train.device=gpu", r"config key 'train.device': 'gpu' is not a device"),
    ],
)
def test_the_model_and_device_are_checked_when_the_config_loads(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])
    assert load_config(overrides=["model.kwargs={drop_rate: 0.1}", "train.device=cuda:3"])["model"]["kwargs"]
