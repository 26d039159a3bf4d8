"""The algorithm interface (after DomainBed): ``update(per-domain minibatches)`` and ``predict(x)``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from workbench.algorithms.hparams import resolve_hparams
from workbench.algorithms.param_vector import ParamVector

DomainBatches = Sequence[tuple[torch.Tensor, torch.Tensor]]


def build_optimizer(params: list[nn.Parameter], hparams: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The base optimizer; weight decay lives here, never in the perturbation."""
    if hparams["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=hparams["lr"], weight_decay=hparams["weight_decay"])
    return torch.optim.SGD(
        params, lr=hparams["lr"], momentum=hparams["momentum"], weight_decay=hparams["weight_decay"]
    )


class Algorithm(nn.Module):
    """A training algorithm wrapping a model and its base optimizer.

    Subclasses implement :meth:`update`, which receives one ``(x_k, y_k)`` batch per source domain,
    takes one optimizer step and returns scalar statistics.
    """

    name: ClassVar[str] = ""

    def __init__(self, model: nn.Module, hparams: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.model = model
        self.hparams = resolve_hparams(hparams)
        self.vector = ParamVector(model)
        self.optimizer = build_optimizer(self.vector.params, self.hparams)

    def update(self, minibatches: DomainBatches) -> dict[str, float]:
        raise NotImplementedError

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, 2]`` (index 1 = fake)."""
        with self.autocast(x.device):
            return full_precision(self.model(x))

    def autocast(self, device: torch.device):
        """bf16 autocast on CUDA by default (``precision="auto"``), fp32 elsewhere."""
        precision = self.hparams["precision"]
        if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return nullcontext()

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """2-logit cross-entropy (DeepfakeBench convention) of the model on one batch."""
        with self.autocast(x.device):
            logits = self.model(x)
        return F.cross_entropy(full_precision(logits), y)

    def step_with(self, direction: torch.Tensor) -> None:
        """Let the base optimizer step with the flat update direction ``direction``."""
        self.vector.set_grad(direction)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    @staticmethod
    def pooled(minibatches: DomainBatches) -> tuple[torch.Tensor, torch.Tensor]:
        """Concatenate the per-domain batches into one batch."""
        if len(minibatches) == 0:
            raise ValueError("update() needs at least one domain batch")
        xs, ys = zip(*minibatches)
        return torch.cat(xs), torch.cat(ys)


def full_precision(logits: torch.Tensor) -> torch.Tensor:
    """Up-cast half-precision logits to float32; float32/float64 pass through unchanged."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def as_floats(stats: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Convert 0-d tensors to Python floats with a single device synchronisation."""
    values = torch.stack([v.detach().float().reshape(()) for v in stats.values()]).tolist()
    return dict(zip(stats.keys(), values))
