"""Capture an algorithm's whole update in one CUDA graph and replay it.

A sharpness-aware step on a small batch is bound by kernel-launch overhead: thousands of small
kernels, each launched from Python. Captured once, the step (all passes, the flat-vector arithmetic
and the base optimizer's step) replays with a single launch. Inputs are copied into static buffers
before each replay; the statistics come back in static output tensors.

What can change between steps without a recapture: the values of the inputs, parameters, buffers and
optimizer state (all updated in place). What is checked every step (the *key*): input shapes, dtypes
and devices, train/eval mode of every module, the optimizer's state dict object and hyper-parameters,
the storage of every parameter and buffer, and the caller's ``extra`` (for algorithms: the
distributed reducer and the hyper-parameters, so changing ρ or α between steps is never replayed
with the captured values). A step whose key differs from
the captured one runs eagerly (e.g. the last, smaller batch of an epoch); after ``warmup_steps``
consecutive eager steps with one new key, that key is captured instead. The optimizer is switched to
``capturable=True`` while a step is captured (its step counters move to the device for good).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from workbench.algorithms.batches import DomainBatches

StepFn = Callable[[DomainBatches], dict[str, torch.Tensor]]


@contextmanager
def capturable(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Let ``optimizer.step()`` be captured: ``capturable=True`` where supported, step counters on device.

    The flag only matters while ``step()`` is traced; it is restored afterwards so that checkpoints
    keep the optimizer's original settings (eager steps then read the on-device counters).
    """
    switched = [group for group in optimizer.param_groups if group.get("capturable") is False]
    for group in switched:
        group["capturable"] = True
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            step = state.get("step")
            if torch.is_tensor(step) and step.device != p.device:
                state["step"] = step.to(device=p.device, dtype=torch.float32)
    try:
        yield
    finally:
        for group in switched:
            group["capturable"] = False


def _plain(value: Any) -> Hashable:
    if torch.is_tensor(value):
        return ("tensor", value.data_ptr())
    if isinstance(value, list):
        return tuple(value)
    return value


class GraphedStep:
    """Runs ``step_fn`` through a captured CUDA graph whenever the step's key matches the capture."""

    def __init__(
        self,
        step_fn: StepFn,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        channels_last: bool = False,
        warmup_steps: int = 2,
    ) -> None:
        if warmup_steps < 1:
            raise ValueError(
                f"warmup_steps={warmup_steps} must be at least 1 (lazy CUDA state must exist before capture)"
            )
        self.step_fn = step_fn
        self.model = model
        self.optimizer = optimizer
        self.channels_last = channels_last
        self.warmup_steps = warmup_steps
        self.graph: torch.cuda.CUDAGraph | None = None
        self.graph_key: Hashable = None
        self.static_inputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.static_stats: dict[str, torch.Tensor] = {}
        self.streak_key: Hashable = None
        self.streak = 0
        self.failure: str | None = None
        self.replays = 0
        self._side_stream: torch.cuda.Stream | None = None
        self._capture_stream: torch.cuda.Stream | None = None

    def key(self, minibatches: DomainBatches, extra: Hashable = None) -> Hashable:
        """Everything a captured graph depends on besides tensor values (see module docstring)."""
        shapes = tuple((tuple(x.shape), x.dtype, x.device, tuple(y.shape), y.dtype, y.device) for x, y in minibatches)
        modes = tuple(m.training for m in self.model.modules())
        hyper = tuple(
            tuple((k, _plain(v)) for k, v in sorted(group.items()) if k not in ("params", "capturable"))
            for group in self.optimizer.param_groups
        )
        storage = tuple(t.data_ptr() for t in self.model.parameters()) + tuple(
            t.data_ptr() for t in self.model.buffers()
        )
        return shapes, modes, id(self.optimizer.state), hyper, storage, extra

    def __call__(self, minibatches: DomainBatches, extra: Hashable = None) -> dict[str, torch.Tensor]:
        key = self.key(minibatches, extra)
        if self.graph is not None and key == self.graph_key:
            self._load(minibatches)
            self.graph.replay()
            self.replays += 1
            self.streak_key, self.streak = None, 0
            return self.static_stats
        if self.failure is None and key == self.streak_key and self.streak >= self.warmup_steps:
            if self._capture(minibatches, key):
                self.graph.replay()
                self.replays += 1
                self.streak_key, self.streak = None, 0
                return self.static_stats
        stats = self._eager(minibatches)
        if key == self.streak_key:
            self.streak += 1
        else:
            self.streak_key, self.streak = key, 1
        return stats

    def release(self) -> None:
        """Drop the captured graph and its memory pool."""
        self.graph, self.graph_key = None, None
        self.static_inputs, self.static_stats = [], {}

    def _load(self, minibatches: DomainBatches) -> None:
        for (x_static, y_static), (x, y) in zip(self.static_inputs, minibatches):
            x_static.copy_(x, non_blocking=True)
            y_static.copy_(y, non_blocking=True)

    def _eager(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        """One uncaptured step on a side stream (as CUDA-graph warm-up requires)."""
        device = minibatches[0][0].device
        if self._side_stream is None or self._side_stream.device != device:
            self._side_stream = torch.cuda.Stream(device)
        main = torch.cuda.current_stream(device)
        self._side_stream.wait_stream(main)
        with torch.cuda.stream(self._side_stream):
            stats = self.step_fn(minibatches)
        main.wait_stream(self._side_stream)
        return stats

    def _capture(self, minibatches: DomainBatches, key: Hashable) -> bool:
        self.release()
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        self.static_inputs = [
            (
                torch.empty_like(x, memory_format=layout if x.dim() == 4 else torch.contiguous_format),
                torch.empty_like(y),
            )
            for x, y in minibatches
        ]
        self._load(minibatches)
        device = minibatches[0][0].device
        if self._capture_stream is None or self._capture_stream.device != device:
            self._capture_stream = torch.cuda.Stream(device)
        graph = torch.cuda.CUDAGraph()
        try:
            # The inputs' device must be current: capture begins on the current device's current stream and
            # allocates from its pool. torch.cuda.graph's default capture stream is one per process, created
            # on whichever device was current first, hence this device's own stream.
            with (
                torch.cuda.device(device),
                capturable(self.optimizer),
                torch.cuda.graph(graph, stream=self._capture_stream),
            ):
                stats = self.step_fn(self.static_inputs)
        except Exception as error:  # noqa: BLE001 - any capture failure falls back to eager steps
            self.failure = f"{type(error).__name__}: {error}"
            self.release()
            warnings.warn(f"CUDA graph capture failed, running eager steps instead ({self.failure})", stacklevel=3)
            return False
        self.graph, self.graph_key, self.static_stats = graph, key, stats
        return True
