"""Normalisation running statistics: frozen during perturbed passes, private during concurrent ones."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

STAT_NAMES = ("running_mean", "running_var", "num_batches_tracked")


def _tracked_norm_layers(model: nn.Module) -> list[_BatchNorm]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def _copy_grouped_(targets: list[torch.Tensor], sources: list[torch.Tensor]) -> None:
    """``targets[i].copy_(sources[i])`` in a few multi-tensor kernels (one foreach call per dtype)."""
    groups: dict[torch.dtype, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
    for target, source in zip(targets, sources):
        dst, src = groups.setdefault(target.dtype, ([], []))
        dst.append(target)
        src.append(source)
    for dst, src in groups.values():
        torch._foreach_copy_(dst, src)


def _stat_buffers(layers: list[_BatchNorm]) -> list[torch.Tensor]:
    return [value for m in layers for value in (getattr(m, stat) for stat in STAT_NAMES) if value is not None]


@contextmanager
def frozen_running_stats(model: nn.Module) -> Iterator[None]:
    """Run forward passes in train mode without changing BN running mean/var/count.

    Batch statistics are still used for normalisation (as in the clean pass); only the running
    buffers are snapshotted and copied back afterwards, so the result is exact.
    """
    live = _stat_buffers(_tracked_norm_layers(model))
    with torch.no_grad():
        saved = [torch.empty_like(t) for t in live]
        _copy_grouped_(saved, live)
    try:
        yield
    finally:
        with torch.no_grad():
            _copy_grouped_(live, saved)


class RunningStats:
    """The BN running buffers that a train-mode forward pass would update, addressed by name.

    Concurrent per-domain passes cannot share these buffers (each pass updates them in place), so
    every pass gets :meth:`private_copies` through ``torch.func.functional_call``. Afterwards
    :meth:`merge` gives the live buffers the values that the passes, run one after the other in
    domain order, would have left: with momentum m, pass k turned r₀ into r'_k = (1 − m) r₀ + m s_k,
    so m s_k = r'_k − (1 − m) r₀ and the sequential result is r ← (1 − m) r + m s_k for k = 1…K
    (exact up to float rounding).
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = [
            (name, m) for name, m in model.named_modules()
            if isinstance(m, _BatchNorm) and m.track_running_stats and m.training and m.running_mean is not None
        ]

    def mergeable(self) -> bool:
        """Whether :meth:`merge` applies: every updating layer uses an exponential (not cumulative) average."""
        return all(m.momentum is not None for _, m in self.layers)

    def buffers(self) -> dict[str, torch.Tensor]:
        """The live buffers, keyed by their ``named_buffers`` names."""
        out = {}
        for name, layer in self.layers:
            for stat in STAT_NAMES:
                value = getattr(layer, stat)
                if value is not None:
                    out[f"{name}.{stat}" if name else stat] = value
        return out

    @torch.no_grad()
    def private_copies(self) -> dict[str, torch.Tensor]:
        """Fresh copies of the live buffers (same names), for one pass to update."""
        live = self.buffers()
        copies = [torch.empty_like(t) for t in live.values()]
        _copy_grouped_(copies, list(live.values()))
        return dict(zip(live.keys(), copies))

    @torch.no_grad()
    def merge(self, passes: Sequence[dict[str, torch.Tensor]]) -> None:
        """Set the live buffers as if the passes that updated ``passes`` had run in order on them."""
        by_momentum: dict[float, list[str]] = {}
        counts = []
        for name, layer in self.layers:
            prefix = f"{name}." if name else ""
            by_momentum.setdefault(float(layer.momentum), []).extend(
                prefix + stat for stat in ("running_mean", "running_var")
            )
            if layer.num_batches_tracked is not None:
                counts.append(prefix + "num_batches_tracked")
        live = self.buffers()
        for momentum, names in by_momentum.items():
            targets = [live[n] for n in names]
            decayed_start = torch._foreach_mul(targets, 1.0 - momentum)
            for updated in passes:
                contribution = torch._foreach_sub([updated[n] for n in names], decayed_start)
                torch._foreach_mul_(targets, 1.0 - momentum)
                torch._foreach_add_(targets, contribution)
        if counts:
            torch._foreach_add_([live[n] for n in counts], len(passes))
