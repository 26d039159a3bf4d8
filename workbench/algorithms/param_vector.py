"""Trainable parameters seen as one flat vector: gradients, perturbations and exact restores.

Sharpness-aware updates combine whole-model gradients (norms, sums, dot products). Keeping each
gradient as one flat tensor turns those into single kernels; the parameters themselves are updated
in place through views of a flat vector with ``torch._foreach_*`` ops.
"""

from __future__ import annotations

import torch
from torch import nn


class ParamVector:
    """The trainable parameters of a model, addressed as one flat vector."""

    def __init__(self, model: nn.Module) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("model has no trainable parameters")
        self.shapes = [p.shape for p in self.params]
        self.numels = [p.numel() for p in self.params]

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Split a flat vector into tensors shaped like the parameters (views, no copy)."""
        return [chunk.view(shape) for chunk, shape in zip(flat.split(self.numels), self.shapes)]

    def flatten(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """Concatenate parameter-shaped tensors into one flat vector."""
        return torch.cat([t.reshape(-1) for t in tensors])

    def grad(self, loss: torch.Tensor) -> torch.Tensor:
        """Flat gradient of ``loss``; parameters the loss does not reach get zeros."""
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        return self.flatten([torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads)])

    @torch.no_grad()
    def snapshot(self) -> torch.Tensor:
        """A flat copy of the current parameter values."""
        return self.flatten([p.detach() for p in self.params]).clone()

    @torch.no_grad()
    def add_(self, flat: torch.Tensor) -> None:
        """θ ← θ + flat (in place)."""
        torch._foreach_add_(self.params, self.views(flat.to(self.params[0].dtype)))

    @torch.no_grad()
    def copy_(self, flat: torch.Tensor) -> None:
        """θ ← flat exactly (in place); used to restore weights after an ascent."""
        torch._foreach_copy_(self.params, self.views(flat.to(self.params[0].dtype)))

    def set_grad(self, flat: torch.Tensor) -> None:
        """Install ``flat`` as the parameters' ``.grad`` for the base optimizer."""
        for p, g in zip(self.params, self.views(flat)):
            p.grad = g.to(p.dtype)


def unit(vector: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``vector / (‖vector‖ + eps)`` — the ascent direction of SAM-style methods."""
    return vector / (torch.linalg.vector_norm(vector) + eps)


def cosine(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Cosine similarity of two flat vectors (0 when either is zero)."""
    return torch.dot(a, b) / (torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b) + eps)
