"""Normalisation running statistics: frozen during perturbed passes, private during concurrent ones.

A running statistic is any buffer named ``running_*`` or ``num_batches_tracked``: BatchNorm's and
InstanceNorm's (``track_running_stats=True``), timm's EvoNorm ``running_var``, and custom layers that
follow the same naming.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

STAT_NAMES = ("running_mean", "running_var", "num_batches_tracked")


def is_running_stat(buffer_name: str) -> bool:
    """Whether a buffer (``named_buffers`` name) is a running statistic that train-mode passes update."""
    leaf = buffer_name.rsplit(".", 1)[-1]
    return leaf.startswith("running_") or leaf == "num_batches_tracked"


def running_buffers(model: nn.Module) -> list[torch.Tensor]:
    """Every running-statistic buffer of ``model`` (see the module docstring)."""
    return [buffer for name, buffer in model.named_buffers() if is_running_stat(name)]


def _copy_grouped_(targets: list[torch.Tensor], sources: list[torch.Tensor]) -> None:
    """``targets[i].copy_(sources[i])`` in a few multi-tensor kernels (one foreach call per dtype)."""
    groups: dict[torch.dtype, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
    for target, source in zip(targets, sources):
        dst, src = groups.setdefault(target.dtype, ([], []))
        dst.append(target)
        src.append(source)
    for dst, src in groups.values():
        torch._foreach_copy_(dst, src)


@contextmanager
def frozen_running_stats(model: nn.Module) -> Iterator[None]:
    """Run forward passes in train mode without changing any running statistic (BN mean/var/count, ...).

    Batch statistics are still used for normalisation (as in the clean pass); only the running
    buffers are snapshotted and copied back afterwards, so the result is exact.
    """
    live = running_buffers(model)
    with torch.no_grad():
        saved = [torch.empty_like(t) for t in live]
        _copy_grouped_(saved, live)
    try:
        yield
    finally:
        with torch.no_grad():
            _copy_grouped_(live, saved)


class RunningStats:
    """The running buffers of train-mode BatchNorm/InstanceNorm layers, addressed by name.

    Concurrent per-domain passes cannot share these buffers (each pass updates them in place), so
    every pass gets :meth:`private_copies` through ``torch.func.functional_call``. Afterwards
    :meth:`merge` gives the live buffers the values that the passes, run one after the other in
    domain order, would have left: with momentum m, pass k turned r₀ into r'_k = (1 − m) r₀ + m s_k,
    so m s_k = r'_k − (1 − m) r₀ and the sequential result is r ← (1 − m) r + m s_k for k = 1…K
    (exact up to float rounding).
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = [
            (name, m)
            for name, m in model.named_modules()
            if isinstance(m, _NormBase) and m.track_running_stats and m.training and m.running_mean is not None
        ]
        known = set(self.buffers())
        self._foreign = [
            name
            for name, _ in model.named_buffers()
            if is_running_stat(name) and name not in known and model.get_submodule(name.rpartition(".")[0]).training
        ]

    def unmergeable(self) -> list[str]:
        """Running statistics :meth:`merge` cannot reproduce (empty when it applies to the whole model).

        Layers with a cumulative average (``momentum=None``) and running buffers of other layer types
        (e.g. timm's EvoNorm), whose update rule is not known here.
        """
        cumulative = [f"{name or 'model'} (momentum=None)" for name, m in self.layers if m.momentum is None]
        return cumulative + self._foreign

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
        if counts:  # each pass's own increment (BatchNorm counts batches, InstanceNorm does not)
            targets = [live[n] for n in counts]
            start = [t.clone() for t in targets]
            for updated in passes:
                torch._foreach_add_(targets, torch._foreach_sub([updated[n] for n in counts], start))
