"""timm model factory: 2-logit heads, local weight files only."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from workbench.models import backbone_normalization, create_model, input_normalization, penultimate_features


def test_any_timm_backbone_gets_two_logits():
    model = create_model("test_resnet")
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    assert penultimate_features(model, torch.randn(2, 3, 32, 32)).shape == (2, model.num_features)


def test_pretrained_loads_a_local_file_and_replaces_the_head(tmp_path):
    source = timm.create_model("test_resnet", num_classes=10)
    path = tmp_path / "weights.safetensors"
    save_file(source.state_dict(), str(path))
    model = create_model("test_resnet", pretrained=path)
    body = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    for key, value in body.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert model.get_classifier().out_features == 2


def test_weights_that_do_not_match_the_architecture_are_refused(tmp_path):
    state = timm.create_model("test_resnet", num_classes=10).state_dict()
    truncated, prefixed = tmp_path / "truncated.safetensors", tmp_path / "prefixed.safetensors"
    save_file({k: v for k, v in state.items() if not k.startswith("layer2.")}, str(truncated))
    save_file({f"backbone.{k}": v for k, v in state.items()}, str(prefixed))
    with pytest.raises(ValueError, match=r"truncated.safetensors.*missing \d+ \['layer2\.") as error:
        create_model("test_resnet", pretrained=truncated)
    assert "unexpected 0 []" in str(error.value)
    with pytest.raises(ValueError, match=r"prefixed.safetensors.*unexpected \d+ \['backbone\."):
        create_model("test_resnet", pretrained=prefixed)


def test_a_two_class_checkpoint_keeps_its_head_and_user_overlays_apply(tmp_path):
    """A detector checkpoint (``{"model": state, ...}``) loads whole; ``pretrained_cfg_overlay`` still works."""
    source = create_model("test_resnet")
    path = tmp_path / "detector.pt"
    torch.save({"model": source.state_dict(), "step": 7}, path)
    overlay = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
    model = create_model("test_resnet", pretrained=path, pretrained_cfg_overlay=overlay)
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert model.pretrained_cfg["mean"] == (0.5, 0.5, 0.5)


def test_no_hub_downloads_and_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="local weights file"):
        create_model("test_resnet", pretrained=True)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        create_model("test_resnet", pretrained=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="unknown timm model"):
        create_model("not_a_model")


@pytest.mark.parametrize("name", ["legacy_xception", "efficientnet_b4", "test_resnet"])
def test_backbone_normalization_reads_the_built_models_statistics_without_weights(name):
    expected = input_normalization(create_model(name))
    assert backbone_normalization(name) == expected
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert (expected == imagenet) == (name == "efficientnet_b4")


def test_backbone_normalization_refuses_unknown_names():
    with pytest.raises(ValueError, match="no_such_net"):
        backbone_normalization("no_such_net")
