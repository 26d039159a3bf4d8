"""Trainable parameters seen as one flat vector: gradients, perturbations and exact restores.

Sharpness-aware updates combine whole-model gradients (norms, sums, dot products). Keeping each
gradient as one flat tensor turns those into single kernels; the parameters themselves are updated
in place through views of a flat vector with ``torch._foreach_*`` ops. Updates write into flat
buffers kept for reuse (:meth:`ParamVector.buffer`), so a step allocates no whole-model vector: on
a CPU, filling freshly allocated memory (page faults) used to cost more than the arithmetic.

Each parameter occupies one contiguous chunk of the flat vector, in the order of
``model.parameters()``. Inside its chunk a parameter's elements are stored in its *memory* order
(logical order for ordinary contiguous tensors, NHWC order for channels-last weights), so that
:meth:`ParamVector.views` are strided exactly like the parameters and no layout conversion is needed
when a flat vector is used as weights or installed as gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _memory_order(tensor: torch.Tensor) -> tuple[int, ...] | None:
    """Dimension permutation that lists ``tensor``'s elements in memory order (None = logical order)."""
    order = tuple(sorted(range(tensor.dim()), key=lambda d: -tensor.stride(d)))
    return None if order == tuple(range(tensor.dim())) else order


class ParamVector:
    """The trainable parameters of a model, addressed as one flat vector."""

    def __init__(self, model: nn.Module) -> None:
        named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("model has no trainable parameters")
        self.names = [name for name, _ in named]
        self.params = [p for _, p in named]
        self.shapes = [p.shape for p in self.params]
        self.numels = [p.numel() for p in self.params]
        self.orders = [_memory_order(p) for p in self.params]
        self._stored_shapes = [
            shape if order is None else torch.Size(shape[d] for d in order)
            for shape, order in zip(self.shapes, self.orders)
        ]
        self._inverse_orders = [
            None if order is None else tuple(sorted(range(len(order)), key=order.__getitem__)) for order in self.orders
        ]
        self._unreached: list[bool] | None = None
        self._buffers: dict[str, torch.Tensor] = {}
        self.size = sum(self.numels)

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Split a flat vector into tensors shaped (and strided) like the parameters (views, no copy)."""
        out = []
        for chunk, shape, inverse in zip(flat.split(self.numels), self._stored_shapes, self._inverse_orders):
            view = chunk.view(shape)
            out.append(view if inverse is None else view.permute(inverse))
        return out

    def flatten(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """Concatenate parameter-shaped tensors into one flat vector (inverse of :meth:`views`)."""
        return torch.cat(
            [(t if order is None else t.permute(order)).reshape(-1) for t, order in zip(tensors, self.orders)]
        )

    def buffer(self, key: str, rows: int | None = None) -> torch.Tensor:
        """A flat vector (or ``rows`` of them, ``[rows, size]``) kept under ``key`` for reuse: allocated once, on
        the parameters' device and dtype."""
        reference = self.params[0]
        shape = (self.size,) if rows is None else (rows, self.size)
        kept = self._buffers.get(key)
        if kept is None or kept.shape != shape or kept.device != reference.device or kept.dtype != reference.dtype:
            kept = self._buffers[key] = torch.empty(shape, device=reference.device, dtype=reference.dtype)
        return kept

    def grad(self, loss: torch.Tensor) -> torch.Tensor:
        """Flat gradient of ``loss``; parameters the loss does not reach get zeros (see :meth:`flatten_grads`)."""
        return self.flatten_grads(torch.autograd.grad(loss, self.params, allow_unused=True))

    def grad_into(self, loss: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Write the flat gradient of ``loss`` into ``out`` (e.g. a :meth:`buffer`) and return it; zeros where the
        loss does not reach (remembered as in :meth:`flatten_grads`)."""
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        self._note_unreached(grads)
        views = self.views(out)
        with torch.no_grad():
            reached = [(view, g) for view, g in zip(views, grads) if g is not None]
            if reached:
                torch._foreach_copy_([view for view, _ in reached], [g for _, g in reached])
            missing = [view for view, g in zip(views, grads) if g is None]
            if missing:
                torch._foreach_zero_(missing)
        return out

    @torch.no_grad()
    def accumulate_(self, out: torch.Tensor, grads: Sequence[torch.Tensor | None], alpha: float = 1.0) -> torch.Tensor:
        """``out += alpha · grads`` for per-parameter gradients (``None``: not reached, remembered as in
        :meth:`flatten_grads`), in place and without a flat copy."""
        self._note_unreached(grads)
        reached = [(view, g) for view, g in zip(self.views(out), grads) if g is not None]
        if reached:
            torch._foreach_add_([view for view, _ in reached], [g for _, g in reached], alpha=alpha)
        return out

    def flatten_grads(self, grads: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """Flatten per-parameter gradients (parameter order); ``None`` — the loss did not reach it — is zeros.

        Parameters that no gradient since the last :meth:`set_grad` reached are remembered: ``set_grad``
        leaves their ``.grad`` at None, so the base optimizer skips them as it would after a plain
        ``backward()`` (no weight-decay drift of an unused head).
        """
        self._note_unreached(grads)
        return self.flatten([torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads)])

    def _note_unreached(self, grads: Sequence[torch.Tensor | None]) -> None:
        unreached = [g is None for g in grads]
        if self._unreached is not None:
            unreached = [a and b for a, b in zip(self._unreached, unreached)]
        self._unreached = unreached

    @torch.no_grad()
    def snapshot(self, out: torch.Tensor | None = None) -> torch.Tensor:
        """A flat copy of the current parameter values, written into ``out`` when given."""
        reference = self.params[0]
        out = torch.empty(self.size, device=reference.device, dtype=reference.dtype) if out is None else out
        torch._foreach_copy_(self.views(out), [p.detach() for p in self.params])
        return out

    @torch.no_grad()
    def add_(self, flat: torch.Tensor) -> None:
        """θ ← θ + flat (in place)."""
        torch._foreach_add_(self.params, self.views(flat.to(self.params[0].dtype)))

    @torch.no_grad()
    def copy_(self, flat: torch.Tensor) -> None:
        """θ ← flat exactly (in place); used to restore weights after an ascent."""
        torch._foreach_copy_(self.params, self.views(flat.to(self.params[0].dtype)))

    def set_grad(self, flat: torch.Tensor) -> None:
        """Install ``flat`` as the parameters' ``.grad`` for the base optimizer (None where no gradient reached)."""
        unreached = self._unreached or [False] * len(self.params)
        for p, g, skip in zip(self.params, self.views(flat), unreached):
            p.grad = None if skip else g if g.dtype == p.dtype else g.to(p.dtype)
        self._unreached = None


def unit(vector: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``vector / (‖vector‖ + eps)`` — the ascent direction of SAM-style methods."""
    return vector / (torch.linalg.vector_norm(vector) + eps)


COSINE_EPS = 1e-12


def cosine(
    a: torch.Tensor, b: torch.Tensor, eps: float = COSINE_EPS, b_norm: torch.Tensor | None = None
) -> torch.Tensor:
    """Cosine similarity of two flat vectors (0 when either is zero); ``b_norm`` is reused when the caller has it."""
    b_norm = torch.linalg.vector_norm(b) if b_norm is None else b_norm
    return torch.dot(a, b) / (torch.linalg.vector_norm(a) * b_norm + eps)


def row_cosines(
    rows: torch.Tensor,
    v: torch.Tensor,
    v_norm: torch.Tensor | None = None,
    row_norms: torch.Tensor | None = None,
    eps: float = COSINE_EPS,
) -> torch.Tensor:
    """:func:`cosine` of every row of ``rows`` ([K, D]) with ``v`` ([D]) in one matrix–vector product; ``v_norm``
    and ``row_norms`` are reused when the caller has them."""
    v_norm = torch.linalg.vector_norm(v) if v_norm is None else v_norm
    row_norms = torch.linalg.vector_norm(rows, dim=1) if row_norms is None else row_norms
    return torch.mv(rows, v) / (row_norms * v_norm + eps)
