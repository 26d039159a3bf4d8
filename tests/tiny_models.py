"""Tiny reference networks shared by the algorithm and analysis tests."""

from __future__ import annotations

import timm
import torch
from torch import nn


def mlp() -> nn.Module:
    """A smooth float64 MLP (6 → 8 → 2): exact-arithmetic checks of update directions and gradients."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2)).double()


def cnn_with_bn(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    """A one-conv network with BatchNorm, for running-statistics and mode/weight restore checks."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    ).to(dtype)


def live_timm_model(name: str, **kwargs) -> nn.Module:
    """A seeded random timm model whose every layer passes signal and whose fake-logit maps are non-trivial."""
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=2, **kwargs)
    with torch.no_grad():  # timm zero-inits the last BN of residual blocks; randomise so every layer is live
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.normal_(1.0, 0.5)
                module.bias.normal_(0.0, 0.2)
        # random heads often give a fake-logit CAM that is zero everywhere after the ReLU; a
        # non-negative fake row keeps the maps non-trivial so the comparisons below mean something
        model.get_classifier().weight[1].abs_()
    return model
