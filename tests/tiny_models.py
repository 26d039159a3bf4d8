"""Tiny reference networks shared by the algorithm and analysis tests."""

from __future__ import annotations

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
