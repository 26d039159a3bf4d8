"""DeepfakeBench detector checkpoints load into timm models that compute the same logits.

The checkpoints are built here in DeepfakeBench's key layout (``backbone.…``, as its ``test.py`` loads them):
EfficientNet-B4 from the ``efficientnet_pytorch`` package DeepfakeBench builds on, with DeepfakeBench's unpadded
stem; Xception from random tensors, scored by a functional Xception written below from the architecture
(Chollet 2017; the FaceForensics++/Cadene module layout).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from efficientnet_pytorch import EfficientNet
from torch import nn

from workbench.models import backbone_normalization, create_model, input_normalization
from workbench.models.deepfakebench import FixedPadConv2d, convert_checkpoint, detector_layout, same_pads


def _calibrate_batchnorm(model: nn.Module, run: callable, size: int) -> None:
    """Random BN affine parameters and running statistics measured on noise, so that signal reaches the logits."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None
            module.reset_running_stats()
            module.weight.data = torch.rand(module.weight.shape, generator=generator) + 0.5
            module.bias.data = torch.rand(module.bias.shape, generator=generator) * 0.2 - 0.1
    model.train()
    with torch.no_grad():
        run(torch.randn(4, 3, size, size, generator=generator))
    model.eval()


@pytest.fixture(scope="module")
def efficientnet_detector() -> tuple[dict[str, torch.Tensor], callable]:
    """A DeepfakeBench EfficientNet-B4 detector state dict and its logits function (the reference)."""
    torch.manual_seed(0)
    network = EfficientNet.from_name("efficientnet-b4")
    network._conv_stem = nn.Conv2d(3, 48, kernel_size=3, stride=2, bias=False)  # DeepfakeBench's stem
    network._fc = nn.Identity()
    last_layer = nn.Linear(1792, 2)
    _calibrate_batchnorm(network, network.extract_features, 128)

    def logits(x: torch.Tensor) -> torch.Tensor:
        return last_layer(F.adaptive_avg_pool2d(network.extract_features(x), 1).flatten(1))

    state = {f"backbone.efficientnet.{k}": v for k, v in network.state_dict().items()}
    state.update({f"backbone.last_layer.{k}": v for k, v in last_layer.state_dict().items()})
    return state, logits


def test_efficientnet_b4_checkpoint_gives_deepfakebench_logits(efficientnet_detector, tmp_path):
    state, reference = efficientnet_detector
    torch.save(state, tmp_path / "effnb4_best.pth")
    model = create_model("deepfakebench_efficientnet_b4", pretrained=tmp_path / "effnb4_best.pth").eval()
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = reference(x), model(x)
        plain = create_model("tf_efficientnet_b4").eval()
        plain.load_state_dict(model.state_dict())
        plain_logits = plain(x)
    assert (expected[0] - expected[1]).abs().max() > 1e-2  # the reference is sensitive to its input
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert (plain_logits - expected).abs().max() > 1e-2  # timm's input-dependent "same" padding is another function


def test_efficientnet_b4_fixed_paddings_are_those_of_380_px():
    model = create_model("deepfakebench_efficientnet_b4")
    fixed = {
        f"{s}.{b}": block.conv_dw.pads
        for s, stage in enumerate(model.blocks)
        for b, block in enumerate(stage)
        if isinstance(block.conv_dw, FixedPadConv2d)
    }
    # stride-2 depthwise convolutions see 190, 95, 48 and 24 px at 380 px input (kernels 3, 5, 3, 5)
    assert fixed == {"1.0": (0, 1, 0, 1), "2.0": (2, 2, 2, 2), "3.0": (0, 1, 0, 1), "5.0": (1, 2, 1, 2)}
    assert model.conv_stem.pads == (0, 0, 0, 0) and model.conv_stem.stride == (2, 2)


def test_same_pads_hand_computed():
    conv3, conv5 = nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 5, stride=2)
    assert same_pads(190, conv3) == (0, 1, 0, 1)  # (95 - 1) * 2 + 3 - 190 = 1
    assert same_pads(127, conv3) == (1, 1, 1, 1)  # (64 - 1) * 2 + 3 - 127 = 2
    assert same_pads(24, conv5) == (1, 2, 1, 2)  # (12 - 1) * 2 + 5 - 24 = 3


def _xception_state(dropout_head: bool = False) -> dict[str, torch.Tensor]:
    """Random DeepfakeBench Xception detector weights (its always-built adjust_channel projection included)."""
    generator = torch.Generator().manual_seed(3)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in create_model("legacy_xception").state_dict().items()}
    state = {}
    for key, shape in shapes.items():
        if key.endswith("running_var"):
            value = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith("num_batches_tracked"):
            value = torch.tensor(0)
        elif len(shape) == 4:
            value = torch.randn(shape, generator=generator) * (2.0 / (shape[1] * shape[2] * shape[3])) ** 0.5
        else:
            batchnorm_scale = len(shape) == 1 and key.endswith("weight")
            value = torch.randn(shape, generator=generator) * 0.1 + (1.0 if batchnorm_scale else 0.0)
        head = "last_linear.1." if dropout_head else "last_linear."
        state["backbone." + key.replace("fc.", head)] = value
    state["backbone.adjust_channel.0.weight"] = torch.randn(512, 2048, 1, 1, generator=generator)
    state["backbone.adjust_channel.0.bias"] = torch.zeros(512)
    for part in ("weight", "bias", "running_mean", "running_var"):
        state[f"backbone.adjust_channel.1.{part}"] = torch.ones(512)
    return state


def _reference_xception(state: dict[str, torch.Tensor], x: torch.Tensor, head: str = "last_linear.") -> torch.Tensor:
    """Xception's logits computed directly from a DeepfakeBench state dict."""

    def p(name: str) -> torch.Tensor:
        return state["backbone." + name]

    def bn(y: torch.Tensor, name: str) -> torch.Tensor:
        return F.batch_norm(
            y,
            p(f"{name}.running_mean"),
            p(f"{name}.running_var"),
            p(f"{name}.weight"),
            p(f"{name}.bias"),
            training=False,
            eps=1e-5,
        )

    def separable(y: torch.Tensor, name: str) -> torch.Tensor:
        y = F.conv2d(y, p(f"{name}.conv1.weight"), padding=1, groups=y.shape[1])
        return F.conv2d(y, p(f"{name}.pointwise.weight"))

    x = F.relu(bn(F.conv2d(x, p("conv1.weight"), stride=2), "bn1"))
    x = F.relu(bn(F.conv2d(x, p("conv2.weight")), "bn2"))
    for number in range(1, 13):
        block = f"block{number}"
        convs = sorted(
            {
                int(k.split(".")[3])
                for k in state
                if k.startswith(f"backbone.{block}.rep.") and k.endswith("pointwise.weight")
            }
        )
        y = x
        for index in convs:
            y = y if number == 1 and index == 0 else F.relu(y)  # the entry block starts without ReLU
            y = bn(separable(y, f"{block}.rep.{index}"), f"{block}.rep.{index + 1}")
        if f"backbone.{block}.skip.weight" in state:  # the four strided blocks
            y = F.max_pool2d(y, 3, 2, 1)
            x = bn(F.conv2d(x, p(f"{block}.skip.weight"), stride=2), f"{block}.skipbn")
        x = y + x
    x = F.relu(bn(separable(x, "conv3"), "bn3"))
    x = F.relu(bn(separable(x, "conv4"), "bn4"))
    return F.linear(x.mean((2, 3)), p(head + "weight"), p(head + "bias"))


@pytest.mark.parametrize("dropout_head", [False, True])
def test_xception_checkpoint_gives_deepfakebench_logits(tmp_path, dropout_head):
    state = _xception_state(dropout_head)
    torch.save(state, tmp_path / "xception_best.pth")
    model = create_model("deepfakebench_xception", pretrained=tmp_path / "xception_best.pth").eval()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = _reference_xception(state, x, "last_linear.1." if dropout_head else "last_linear.")
        got = model(x)
    assert (expected[0] - expected[1]).abs().max() > 1e-3
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_detector_input_convention_recorded():
    for name in ("deepfakebench_xception", "deepfakebench_efficientnet_b4"):
        model = create_model(name)
        assert input_normalization(model) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        assert model.pretrained_cfg["input_size"] == (3, 256, 256)
        assert backbone_normalization(name) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2)


def test_layout_recognised_and_other_model_names_refused(tmp_path, efficientnet_detector):
    assert detector_layout(_xception_state()) == "deepfakebench_xception"
    assert detector_layout(efficientnet_detector[0]) == "deepfakebench_efficientnet_b4"
    assert detector_layout({"conv1.weight": torch.zeros(1)}) is None
    torch.save(_xception_state(), tmp_path / "xception_best.pth")
    with pytest.raises(ValueError, match="set the model name to 'deepfakebench_xception' \\(not 'legacy_xception'\\)"):
        create_model("legacy_xception", pretrained=tmp_path / "xception_best.pth")
    with pytest.raises(ValueError, match="'deepfakebench_xception' \\(not 'deepfakebench_efficientnet_b4'\\)"):
        create_model("deepfakebench_efficientnet_b4", pretrained=tmp_path / "xception_best.pth")


def test_unmatched_keys_and_shapes_are_named(tmp_path):
    state = _xception_state()
    state["backbone.block13.rep.0.conv1.weight"] = torch.zeros(3)
    del state["backbone.bn3.running_mean"]
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(
        ValueError, match=r"missing 1 \['bn3.running_mean'\].*unexpected 1 \['block13.rep.0.conv1.weight'\]"
    ):
        create_model("deepfakebench_xception", pretrained=tmp_path / "extra.pth")
    state = _xception_state()
    state["backbone.last_linear.weight"] = torch.zeros(2, 512)  # the adjust_channel mode's head
    torch.save(state, tmp_path / "adjust.pth")
    with pytest.raises(ValueError, match=r"shapes differ for 1 \['fc.weight \(2, 512\) \(model \(2, 2048\)\)'\]"):
        create_model("deepfakebench_xception", pretrained=tmp_path / "adjust.pth")


def test_converted_state_loads_again_and_timm_hosted_weights_refused(tmp_path):
    model = create_model("deepfakebench_xception")
    converted = convert_checkpoint(_xception_state(), model)
    assert "fc.weight" in converted and not any(k.startswith(("backbone.", "adjust_channel")) for k in converted)
    assert convert_checkpoint(converted, model) == converted  # a run's own checkpoints are already timm's keys
    torch.save(converted, tmp_path / "converted.pth")
    create_model("deepfakebench_xception", pretrained=tmp_path / "converted.pth")
    with pytest.raises(ValueError, match="has no pretrained weights"):
        create_model("deepfakebench_xception", pretrained=True)
