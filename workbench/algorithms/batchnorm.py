"""Keep normalisation running statistics untouched by perturbed (ascent-point) passes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def _tracked_norm_layers(model: nn.Module) -> list[_BatchNorm]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@contextmanager
def frozen_running_stats(model: nn.Module) -> Iterator[None]:
    """Run forward passes in train mode without changing BN running mean/var/count.

    Batch statistics are still used for normalisation (as in the clean pass); only the running
    buffers are snapshotted and copied back afterwards, so the result is exact.
    """
    layers = _tracked_norm_layers(model)
    saved = [
        (m.running_mean.clone() if m.running_mean is not None else None,
         m.running_var.clone() if m.running_var is not None else None,
         m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
        for m in layers
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, (mean, var, count) in zip(layers, saved):
                if mean is not None:
                    m.running_mean.copy_(mean)
                if var is not None:
                    m.running_var.copy_(var)
                if count is not None:
                    m.num_batches_tracked.copy_(count)
