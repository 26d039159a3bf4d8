"""DeepfakeBench's Xception and EfficientNet-B4 detectors as timm models that compute the same function.

Registered in timm's registry, so every part of the workbench builds them by name:

- ``deepfakebench_xception``: timm's ``legacy_xception`` (the Cadene/FaceForensics++ graph DeepfakeBench's
  backbone follows, key for key; only the classifier is named ``last_linear`` there).
- ``deepfakebench_efficientnet_b4``: timm's ``tf_efficientnet_b4`` with the paddings of DeepfakeBench's network,
  which is lukemelas' ``efficientnet_pytorch`` B4 whose stem DeepfakeBench replaces by an unpadded convolution.
  ``efficientnet_pytorch`` computes its TF-"same" paddings once, for B4's native resolution (380 px), and keeps
  them at every input size, while timm's ``tf_`` variant computes them from each input; at DeepfakeBench's
  256 px the two differ at every stride-2 convolution, so those get the fixed paddings.

Both carry DeepfakeBench's input convention in ``pretrained_cfg`` (mean = std = 0.5, 256 × 256; its detector
configs ``xception.yaml`` and ``efficientnetb4.yaml``), which evaluation and analysis read through
:func:`workbench.models.input_normalization`. :func:`convert_checkpoint` maps a detector's state dict
(``backbone.…`` keys, as DeepfakeBench's ``test.py`` loads it) to timm's keys; :func:`detector_layout`
recognises one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import timm
import torch
import torch.nn.functional as F
from timm.layers.padding import get_same_padding
from timm.models import register_model
from torch import nn

INPUT_SIZE = 256
MEAN = STD = (0.5, 0.5, 0.5)
# efficientnet_pytorch builds B4's "same" paddings statically for this input size (its efficientnet_params)
EFFICIENTNET_PYTORCH_B4_SIZE = 380
XCEPTION = "deepfakebench_xception"
EFFICIENTNET_B4 = "deepfakebench_efficientnet_b4"
# DeepfakeBench's Xception always builds this 2048 -> 512 projection; its default ("original") mode never uses it
XCEPTION_UNUSED_PREFIX = "adjust_channel."
BACKBONE_PREFIX = "backbone."


class FixedPadConv2d(nn.Conv2d):
    """A convolution after a fixed zero padding ``(left, right, top, bottom)``, whatever the input size.

    Holds the same ``weight``/``bias`` keys as the convolution it replaces.
    """

    def __init__(self, conv: nn.Conv2d, pads: tuple[int, int, int, int]) -> None:
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            0,
            conv.dilation,
            conv.groups,
            conv.bias is not None,
            device=conv.weight.device,
            dtype=conv.weight.dtype,
        )
        self.weight = conv.weight
        self.bias = conv.bias
        self.pads = pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads={self.pads}"


def same_pads(size: int, conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """TF-"same" zero padding ``(left, right, top, bottom)`` of ``conv`` for a square input of ``size`` pixels."""
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    ph, pw = get_same_padding(size, kh, sh, dh), get_same_padding(size, kw, sw, dw)
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def _deepfakebench_cfg(model: nn.Module, architecture: str) -> dict[str, Any]:
    cfg = {key: value for key, value in model.pretrained_cfg.items() if key not in ("url", "hf_hub_id", "tag")}
    return {
        **cfg,
        "architecture": architecture,
        "tag": "deepfakebench",
        "mean": MEAN,
        "std": STD,
        "input_size": (3, INPUT_SIZE, INPUT_SIZE),
        "num_classes": 2,
        "license": "see DeepfakeBench",
    }


def _build(base: str, architecture: str, pretrained: bool, kwargs: dict[str, Any]) -> nn.Module:
    if pretrained:
        raise ValueError(
            f"{architecture} has no weights hosted by timm: give DeepfakeBench's checkpoint file as "
            "the model's pretrained weights"
        )
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(key, None)
    kwargs.setdefault("num_classes", 2)
    model = timm.create_model(base, pretrained=False, **kwargs)
    model.pretrained_cfg = model.default_cfg = _deepfakebench_cfg(model, architecture)
    return model


@register_model
def deepfakebench_xception(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DeepfakeBench's Xception detector: timm ``legacy_xception`` with DeepfakeBench's input convention."""
    return _build("legacy_xception", XCEPTION, pretrained, kwargs)


@register_model
def deepfakebench_efficientnet_b4(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DeepfakeBench's EfficientNet-B4 detector: timm ``tf_efficientnet_b4`` with an unpadded stem and the
    stride-2 paddings ``efficientnet_pytorch`` fixes for 380 px inputs."""
    model = _build("tf_efficientnet_b4", EFFICIENTNET_B4, pretrained, kwargs)
    stem = model.conv_stem
    model.conv_stem = FixedPadConv2d(stem, (0, 0, 0, 0))
    size = math.ceil(EFFICIENTNET_PYTORCH_B4_SIZE / stem.stride[0])
    for stage in model.blocks:
        for block in stage:
            conv = block.conv_dw
            if conv.stride[0] > 1:
                block.conv_dw = FixedPadConv2d(conv, same_pads(size, conv))
            size = math.ceil(size / conv.stride[0])
    return model


def _xception_key(key: str) -> str | None:
    if key.startswith(XCEPTION_UNUSED_PREFIX):
        return None
    for head in ("last_linear.1.", "last_linear."):  # with and without DeepfakeBench's dropout wrapper
        if key.startswith(head):
            return "fc." + key[len(head) :]
    return key


# efficientnet_pytorch block parts -> timm parts, for blocks without (DepthwiseSeparableConv) and with
# (InvertedResidual) an expansion convolution
_DEPTHWISE_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_EFFICIENTNET_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}


def _efficientnet_key_map(model: nn.Module) -> Callable[[str], str | None]:
    blocks = [(s, b, block) for s, stage in enumerate(model.blocks) for b, block in enumerate(stage)]

    def rename(key: str) -> str | None:
        if key.startswith("last_layer."):
            return "classifier." + key[len("last_layer.") :]
        if not key.startswith("efficientnet."):
            return key
        parts = key[len("efficientnet.") :].split(".")
        if parts[0] == "_blocks" and len(parts) > 3 and parts[1].isdigit() and int(parts[1]) < len(blocks):
            stage, index, block = blocks[int(parts[1])]
            table = _INVERTED_RESIDUAL if hasattr(block, "conv_pwl") else _DEPTHWISE_SEPARABLE
            if parts[2] in table:
                return ".".join(["blocks", str(stage), str(index), table[parts[2]], *parts[3:]])
        elif parts[0] in _EFFICIENTNET_TOP:
            return ".".join([_EFFICIENTNET_TOP[parts[0]], *parts[1:]])
        return key  # left as it is: the loader names it as unexpected

    return rename


def detector_layout(state: Mapping[str, Any]) -> str | None:
    """The registered model name whose DeepfakeBench layout ``state`` has, else ``None``."""
    if any(key.startswith(BACKBONE_PREFIX + "efficientnet.") for key in state):
        return EFFICIENTNET_B4
    if any(key.startswith(BACKBONE_PREFIX + "block1.rep.") for key in state):
        return XCEPTION
    return None


def convert_checkpoint(state: Mapping[str, Any], model: nn.Module) -> dict[str, Any]:
    """``state`` in timm's keys for ``model`` (a registered DeepfakeBench model); already-converted states pass.

    Only the ``backbone.`` entries of a detector state dict are renamed; keys the mapping does not know are kept
    as they are, so loading names them. Xception's unused ``adjust_channel`` projection is dropped.
    """
    if detector_layout(state) is None:
        return dict(state)
    architecture = model.pretrained_cfg["architecture"]
    rename = _xception_key if architecture == XCEPTION else _efficientnet_key_map(model)
    converted = {}
    for key, value in state.items():
        new = rename(key[len(BACKBONE_PREFIX) :]) if key.startswith(BACKBONE_PREFIX) else key
        if new is not None:
            converted[new] = value
    return converted


CHECKPOINT_CONVERTERS: dict[str, Callable[[Mapping[str, Any], nn.Module], dict[str, Any]]] = {
    XCEPTION: convert_checkpoint,
    EFFICIENTNET_B4: convert_checkpoint,
}
