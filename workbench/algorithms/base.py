"""The algorithm interface (after DomainBed): ``update(per-domain minibatches)`` and ``predict(x)``.

Subclasses implement :meth:`Algorithm.step`: one update that returns 0-d tensors and never waits on
the device (no ``.item()``), so that :meth:`Algorithm.update` can run it eagerly or replay it from a
CUDA graph (``cuda_graph`` hparam) and convert the statistics with a single synchronisation.

Distributed training: set ``algorithm.distributed`` to a reducer (an object with
``all_reduce_mean_(tensor)`` and a ``graph_safe`` flag, e.g. ``workbench.training.distributed.DistContext``)
and the final update direction G is averaged across processes exactly once, right before the base
optimizer steps; the clean and ascent passes never communicate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from workbench.algorithms.cuda_graph import GraphedStep
from workbench.algorithms.hparams import resolve_hparams
from workbench.algorithms.param_vector import ParamVector

DomainBatches = Sequence[tuple[torch.Tensor, torch.Tensor]]


class Reducer(Protocol):
    """What an algorithm needs from a distributed context."""

    graph_safe: bool

    def all_reduce_mean_(self, tensor: torch.Tensor) -> torch.Tensor: ...


def build_optimizer(params: list[nn.Parameter], hparams: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The base optimizer; weight decay lives here, never in the perturbation."""
    if hparams["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=hparams["lr"], weight_decay=hparams["weight_decay"])
    return torch.optim.SGD(
        params, lr=hparams["lr"], momentum=hparams["momentum"], weight_decay=hparams["weight_decay"]
    )


@contextmanager
def tf32_math(enabled: bool) -> Iterator[None]:
    """Allow TF32 tensor-core convolutions and matrix products inside the block (restored afterwards)."""
    if not enabled:
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


class Algorithm(nn.Module):
    """A training algorithm wrapping a model and its base optimizer.

    Subclasses implement :meth:`step`, which receives one ``(x_k, y_k)`` batch per source domain,
    takes one optimizer step and returns scalar statistics as 0-d tensors.
    """

    name: ClassVar[str] = ""

    def __init__(self, model: nn.Module, hparams: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.hparams = resolve_hparams(hparams)
        if self.hparams["channels_last"]:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.vector = ParamVector(model)
        self.optimizer = build_optimizer(self.vector.params, self.hparams)
        self.distributed: Reducer | None = None
        self._graphed: GraphedStep | None = None

    def step(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        """One update without host synchronisation; returns 0-d tensor statistics."""
        raise NotImplementedError

    def update(self, minibatches: DomainBatches) -> dict[str, float]:
        """One update on one ``(x_k, y_k)`` batch per source domain; returns float statistics."""
        return as_floats(self.launch(minibatches))

    def launch(self, minibatches: DomainBatches) -> dict[str, torch.Tensor]:
        """Enqueue one update (eagerly or as a CUDA-graph replay) without waiting for the device.

        Returns the statistics as 0-d tensors, valid until the next ``launch``: read them (e.g. with
        :func:`as_floats`) after queuing other work, such as the next batch's host-to-device copy, so
        that the host prepares it while the device computes this update.
        """
        if len(minibatches) == 0:
            raise ValueError("update() needs at least one domain batch")
        with tf32_math(self.hparams["precision"] == "tf32"):
            if self.uses_cuda_graph(minibatches):
                return self.graphed_step(minibatches, (id(self.distributed), tuple(sorted(self.hparams.items()))))
            return self.step(minibatches)

    def uses_cuda_graph(self, minibatches: DomainBatches) -> bool:
        """Whether this update goes through :class:`GraphedStep` (CUDA inputs, ``cuda_graph`` on)."""
        return (
            self.hparams["cuda_graph"]
            and all(x.is_cuda for x, _ in minibatches)
            and (self.distributed is None or self.distributed.graph_safe)
        )

    @property
    def graphed_step(self) -> GraphedStep:
        """The CUDA-graph runner of :meth:`step` (created on first use)."""
        if self._graphed is None:
            self._graphed = GraphedStep(self.step, self.model, self.optimizer, self.hparams["channels_last"])
        return self._graphed

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles drop the captured graph; it is rebuilt on demand."""
        state = self.__dict__.copy()
        state["_graphed"] = None
        return state

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, 2]`` (index 1 = fake)."""
        with tf32_math(self.hparams["precision"] == "tf32"), self.autocast(x.device):
            return full_precision(self.model(self.layout(x)))

    def autocast(self, device: torch.device):
        """bf16 autocast on CUDA by default (``precision="auto"``), fp32 elsewhere.

        The cast cache is off: CUDA-graph capture requires it, and each weight is cast once per
        forward pass anyway.
        """
        precision = self.hparams["precision"]
        if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=False)
        return nullcontext()

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """Images in the memory format the model expects (NHWC with ``channels_last``)."""
        if self.hparams["channels_last"] and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def loss(self, x: torch.Tensor, y: torch.Tensor, forward=None) -> torch.Tensor:
        """2-logit cross-entropy (DeepfakeBench convention) of the model (or ``forward``) on one batch."""
        forward = self.model if forward is None else forward
        with self.autocast(x.device):
            logits = forward(self.layout(x))
        return F.cross_entropy(full_precision(logits), y)

    def step_with(self, direction: torch.Tensor) -> None:
        """Let the base optimizer step with the flat update direction ``direction``.

        In distributed mode ``direction`` is first averaged across processes (the step's only
        communication).
        """
        if self.distributed is not None:
            self.distributed.all_reduce_mean_(direction)
        self.vector.set_grad(direction)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    @staticmethod
    def pooled(minibatches: DomainBatches) -> tuple[torch.Tensor, torch.Tensor]:
        """Concatenate the per-domain batches into one batch."""
        if len(minibatches) == 0:
            raise ValueError("no domain batches to pool")
        xs, ys = zip(*minibatches)
        return torch.cat(xs), torch.cat(ys)


def full_precision(logits: torch.Tensor) -> torch.Tensor:
    """Up-cast half-precision logits to float32; float32/float64 pass through unchanged."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def as_floats(stats: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Convert 0-d tensors to Python floats with a single device synchronisation."""
    values = torch.stack([v.detach().float().reshape(()) for v in stats.values()]).tolist()
    return dict(zip(stats.keys(), values))
