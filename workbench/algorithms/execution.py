"""How an algorithm's passes run — precision, memory layout, CUDA graphs, distributed reduction — kept
apart from what the method computes.

An algorithm written in plain PyTorch (``loss.backward()``, ``optimizer.step()``, ``.item()``) runs
eagerly and correctly under every policy: autocast and layout apply inside ``Algorithm.logits``, and
in distributed training every optimizer the algorithm makes (``Algorithm.make_optimizer``) averages
its gradients across processes right before it steps (:func:`reduce_gradients_`). Capturing the
whole update in a CUDA graph is an opt-in (``Algorithm.capturable``) for updates that never wait on
the device and never branch on device values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol

import torch
from torch import nn


class Reducer(Protocol):
    """What an algorithm needs from a distributed context (e.g. ``workbench.training.distributed.DistContext``)."""

    graph_safe: bool

    def all_reduce_mean_(self, tensor: torch.Tensor) -> torch.Tensor: ...


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


def full_precision(logits: torch.Tensor) -> torch.Tensor:
    """Up-cast half-precision logits to float32; float32/float64 pass through unchanged."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


class ExecutionPolicy:
    """Precision, layout and CUDA-graph switches of one algorithm (``precision``, ``channels_last``, ``cuda_graph``)."""

    def __init__(self, hparams: Mapping[str, Any]) -> None:
        self.precision: str = hparams["precision"]
        self.channels_last: bool = hparams["channels_last"]
        self.cuda_graph: bool = hparams["cuda_graph"]

    def prepare(self, model: nn.Module) -> nn.Module:
        """Put the model's weights in the memory format the policy asks for (in place)."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def math(self) -> AbstractContextManager:
        """TF32 math for ``precision="tf32"``, nothing otherwise."""
        return tf32_math(self.precision == "tf32")

    def autocast(self, device: torch.device) -> AbstractContextManager:
        """bf16 autocast on CUDA by default (``precision="auto"``), fp32 elsewhere.

        The cast cache is off: CUDA-graph capture requires it, and each weight is cast once per
        forward pass anyway.
        """
        if self.precision == "bf16" or (self.precision == "auto" and device.type == "cuda"):
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=False)
        return nullcontext()

    def logits(self, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Full-precision logits of ``forward`` on ``x`` in the policy's precision and layout."""
        with self.autocast(x.device):
            return full_precision(forward(self.layout(x)))

    def predict(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Evaluation logits: :meth:`logits` under the policy's math settings (TF32 for ``precision="tf32"``)."""
        with self.math():
            return self.logits(model, x)

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """Images in the memory format the model expects (NHWC with ``channels_last``)."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def graphs(self, minibatches: Sequence[tuple[torch.Tensor, torch.Tensor]], reducer: Reducer | None) -> bool:
        """Whether an update on these batches may be captured (switch on, CUDA inputs, graph-safe reducer)."""
        return self.cuda_graph and all(x.is_cuda for x, _ in minibatches) and (reducer is None or reducer.graph_safe)


def reduce_gradients_(params: Sequence[nn.Parameter], reducer: Reducer) -> None:
    """Average the ``.grad`` of ``params`` across processes in place, in one collective.

    Parameters whose ``.grad`` is None (no pass reached them, on every process alike) are skipped.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    reducer.all_reduce_mean_(flat)
    torch._foreach_copy_(
        grads, [chunk.view(g.shape) for chunk, g in zip(flat.split([g.numel() for g in grads]), grads)]
    )
