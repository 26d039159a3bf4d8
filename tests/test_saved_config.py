"""How a run's config is saved and compared with a requested one."""

from __future__ import annotations

from workbench.config import dump_yaml, load_config, load_yaml
from workbench.saved_config import run_config_changes


def test_hyper_parameters_compare_with_their_defaults_filled_in():
    """A run saved when every algorithm took every key (ERM with rho) equals the request that leaves defaults out."""
    requested = load_config(overrides=["algorithm.name=erm", "algorithm.hparams.lr=0.01"])
    saved = load_yaml(dump_yaml(dict(requested)))
    saved["algorithm"]["hparams"].update(rho=0.05, alpha=0.001)
    assert run_config_changes(saved, requested) == []
    roga = load_config(overrides=["algorithm.hparams.rho=0.05"])
    assert run_config_changes(load_config(), roga) == []
    changed = run_config_changes(load_config(), load_config(overrides=["algorithm.hparams.rho=0.1"]))
    assert changed == [("algorithm.hparams.rho", 0.05, 0.1)]
