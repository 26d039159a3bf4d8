"""timm's pretrained weights: the offline error, a cache filled from a local file, the weights CLI (offline)."""

from __future__ import annotations

import huggingface_hub.constants
import pytest
import safetensors.torch
import timm
import torch

from workbench.__main__ import main
from workbench.models import create_model
from workbench.models.weights import PretrainedWeightsError, cached_file, import_file, pretrained_source


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Fresh Hugging Face and torch hub caches (the tests run with HF_HUB_OFFLINE=1)."""
    assert huggingface_hub.constants.HF_HUB_OFFLINE, "tests must run offline"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    torch_hub = tmp_path / "torch"
    monkeypatch.setattr(torch.hub, "_hub_dir", str(torch_hub))
    return tmp_path


def imagenet_checkpoint(name: str, path, seed: int = 0):
    """A stand-in for timm's download: the architecture's 1000-class weights, saved as timm would cache them."""
    torch.manual_seed(seed)
    state = timm.create_model(name, pretrained=False).state_dict()
    if str(path).endswith(".safetensors"):
        safetensors.torch.save_file(state, str(path))
    else:
        torch.save(state, path)
    return state


def test_offline_without_a_cached_copy_is_one_line_saying_how_to_fetch(empty_caches):
    with pytest.raises(PretrainedWeightsError) as error:
        create_model("test_resnet", pretrained=True)
    message = str(error.value)
    assert "\n" not in message and "timm/test_resnet.r160_in1k" in message
    assert "python -m workbench weights fetch test_resnet" in message and "weights import" in message


@pytest.mark.parametrize("name,filename", [("test_resnet", "model.safetensors"), ("legacy_xception", "xception.pth")])
def test_a_cache_filled_from_a_local_file_loads_offline(name, filename, empty_caches):
    """Hub-kept (test_resnet) and URL-kept (legacy_xception) weights: imported, then loaded by timm offline."""
    state = imagenet_checkpoint(name, empty_caches / filename)
    target = import_file(name, empty_caches / filename)
    assert cached_file(name) == target
    model = create_model(name, pretrained=True)
    classifier = model.pretrained_cfg["classifier"]
    loaded = model.state_dict()
    for key, value in state.items():
        if not key.startswith(classifier):
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0, msg=key)
    assert loaded[f"{classifier}.weight"].shape[0] == 2  # a fresh 2-logit head


def test_import_refuses_a_file_of_another_architecture(empty_caches):
    imagenet_checkpoint("resnet10t", empty_caches / "other.safetensors")
    with pytest.raises(PretrainedWeightsError, match="is not a checkpoint of timm model 'test_resnet'"):
        import_file("test_resnet", empty_caches / "other.safetensors")


def test_the_weights_cli_imports_and_fetch_fails_cleanly_offline(empty_caches, capsys):
    imagenet_checkpoint("test_resnet", empty_caches / "model.safetensors")
    assert main(["weights", "import", "test_resnet", str(empty_caches / "model.safetensors")]) == 0
    assert "models--timm--test_resnet.r160_in1k" in capsys.readouterr().out
    assert main(["weights", "fetch", "test_efficientnet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "test_efficientnet" in err and "internet" in err
    assert main(["weights", "fetch", "test_resnet"]) == 0  # already cached: nothing to download


def test_pretrained_true_is_a_valid_config_and_other_values_are_not():
    from workbench.config import ConfigError, load_config

    assert load_config(overrides=["model.pretrained=true"])["model"]["pretrained"] is True
    with pytest.raises(ConfigError, match="config key 'model.pretrained' must be false, true"):
        load_config(overrides=["model.pretrained=3"])
    assert pretrained_source("legacy_xception")[0] == "url"
