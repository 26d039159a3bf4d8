"""The default layer rule and the stages' map sizes."""

from __future__ import annotations

import pytest
import timm

from workbench.analysis.attribution import GradCAM
from workbench.analysis.attribution_layers import chosen_layers, default_layer_name, feature_stages, stage_sizes


@pytest.mark.parametrize(
    "name, size, expected",
    [
        ("test_resnet", 64, "layer2"),  # stages at 64 px: 32, 16, 8, 4, 2 cells
        ("test_resnet", 32, "layer1"),
        ("test_resnet", 160, "layer3"),  # its design size: layer4 would be 5 × 5
        ("test_resnet", 299, "layer4"),  # 10 × 10
        ("test_resnet", 8, "act1"),  # no stage reaches 8 × 8: the largest map
        ("test_efficientnet", 64, "blocks.2"),
        ("legacy_xception", 299, "act4"),  # the paper's Xception keeps its last stage (10 × 10)
        ("legacy_xception", 96, "block3.rep.0"),
        ("test_vit", 64, "blocks.5.norm1"),  # 4 × 4 patches at every block: the deepest; class-token pooling
        ("test_vit2", 160, "blocks.7"),  # average pooling: the last block's output tokens
    ],
)
def test_default_layer_is_the_deepest_stage_of_at_least_8_by_8(name, size, expected):
    model = timm.create_model(name, pretrained=False, num_classes=2)
    assert default_layer_name(model, size) == expected
    assert GradCAM(model, input_size=size).layer_name == expected


def test_stage_sizes_follow_the_strides_and_the_design_size_is_the_default():
    model = timm.create_model("test_resnet", pretrained=False, num_classes=2)
    sizes = stage_sizes(model, (64, 96))
    assert list(sizes.index) == ["act1", "layer1", "layer2", "layer3", "layer4"] == feature_stages(model)
    assert list(sizes["height"]) == [64 // s for s in (2, 4, 8, 16, 32)]
    assert list(sizes["width"]) == [96 // s for s in (2, 4, 8, 16, 32)] and list(sizes["depth"]) == [0, 1, 2, 3, 4]
    assert default_layer_name(model) == "layer3"  # pretrained_cfg input size 160: layer3 is 10 × 10
    assert GradCAM(model).layer_name == "layer3"
    vit = timm.create_model("test_vit", pretrained=False, num_classes=2)
    assert feature_stages(vit)[-1] == "blocks.5.norm1"
    assert stage_sizes(vit, 64).loc["blocks.5.norm1", "height"] == 4  # the 16 px patch grid
    models = {"erm": model, "vit": vit}
    chosen = chosen_layers(models, 64)
    assert chosen.loc["erm"].tolist() == ["layer2", 8, 8, True] and chosen.loc["vit", "layer"] == "blocks.5.norm1"
    assert chosen_layers({"erm": model}, 64, "layer3").loc["erm"].tolist() == ["layer3", 4, 4, False]
