"""Per-domain passes as independent functional passes that can overlap on CUDA streams.

A RoGA step makes 2K small forward/backward passes. Run one after the other on one stream, small
sub-batches leave a large GPU mostly idle. Here every pass evaluates the model *functionally*
(``torch.func.functional_call``) with private BN running buffers and, for perturbed passes, its own
parameter tensors, so the K passes of a phase share no mutable state and can run on K CUDA streams
at once:

- clean passes read θ (never written) and update private copies of the running statistics, which
  :class:`~workbench.algorithms.batchnorm.RunningStats` merges afterwards in domain order;
- perturbed passes evaluate at θ + ε_k held in separate tensors, so θ is never modified and needs
  no restore; their running-statistic updates go to the private copies and are discarded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch import nn
from torch.func import functional_call

from workbench.algorithms.param_vector import ParamVector

LossFn = Callable[[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]], torch.Tensor]


class Lanes:
    """One CUDA stream per concurrent pass, forked from and joined back into the current stream."""

    def __init__(self) -> None:
        self._streams: list[torch.cuda.Stream] = []

    def __getstate__(self) -> dict:
        """Copies get their own streams (created on first use); CUDA streams cannot be copied."""
        return {"_streams": []}

    @contextmanager
    def fork(self, device: torch.device, count: int) -> Iterator[list[AbstractContextManager]]:
        """Yield ``count`` contexts; work entered in different ones may overlap (CUDA only)."""
        if device.type != "cuda":
            yield [nullcontext() for _ in range(count)]
            return
        self._streams = [s for s in self._streams if s.device == device]
        while len(self._streams) < count:
            self._streams.append(torch.cuda.Stream(device))
        streams = self._streams[:count]
        main = torch.cuda.current_stream(device)
        for stream in streams:
            stream.wait_stream(main)
        try:
            yield [torch.cuda.stream(stream) for stream in streams]
        finally:
            for stream in streams:
                main.wait_stream(stream)


def perturbed_parameters(vector: ParamVector, epsilon: torch.Tensor) -> list[torch.Tensor]:
    """Fresh leaf tensors θ + ε, one per trainable parameter (θ itself is left untouched).

    Each tensor is its own allocation, strided like its parameter: views into one flat vector would
    start at arbitrary element offsets, and cuDNN refuses (or faults on) weights that are not
    16-byte aligned.
    """
    with torch.no_grad():
        point = torch._foreach_add([p.detach() for p in vector.params], vector.views(epsilon))
    return [t.requires_grad_(True) for t in point]


def functional_loss_and_grad(
    model: nn.Module,
    vector: ParamVector,
    loss_fn: LossFn,
    params: list[torch.Tensor] | None,
    buffers: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and flat gradient of ``model`` with ``buffers`` (and ``params``, if given) substituted.

    ``params``: tensors in :class:`ParamVector` order that require grad (e.g. from
    :func:`perturbed_parameters`), or None for the module's own parameters.
    """
    overrides = dict(buffers)
    if params is not None:
        overrides.update(zip(vector.names, params))
    targets = vector.params if params is None else params
    loss = loss_fn(x, y, lambda inputs: functional_call(model, overrides, (inputs,)))
    flat = vector.flatten_grads(torch.autograd.grad(loss, targets, allow_unused=True))
    return loss.detach(), flat
