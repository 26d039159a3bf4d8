"""Loss landscapes: 1-D/2-D slices along filter-normalised random directions and checkpoint paths.

Directions follow Li et al. (2018), "Visualizing the Loss Landscape of Neural Nets": a Gaussian
direction is rescaled filter by filter (a filter = one slice along a weight's first dimension) to
the norm of the corresponding weight filter, so slices of networks with different weight scales
are comparable. One-dimensional parameters (biases, BN/LayerNorm affine weights) get a zero
direction by default, as in the paper. All directions are flat vectors over the trainable
parameters in the model's ParamVector order (parameter by parameter, each in its memory order).

Losses are evaluated without gradients, in eval mode, on one reused batch, by a copy of the model
(so the caller's model is never modified). For float32/half image batches the copy and the batch
are converted to ``channels_last``, which makes oneDNN/cuDNN convolutions faster; results then agree
with the default layout to float rounding.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench.algorithms.execution import full_precision
from workbench.algorithms.param_vector import ParamVector
from workbench.analysis.gradients import check_batches, model_device


@dataclass
class LossCurve:
    """Loss and accuracy at each coordinate of a 1-D slice (``coords``: α values or t values)."""

    coords: np.ndarray
    loss: np.ndarray
    acc: np.ndarray


@dataclass
class LossSurface:
    """Loss and accuracy on a grid; ``loss[i, j]`` is at θ + alphas[i]·d1 + betas[j]·d2."""

    alphas: np.ndarray
    betas: np.ndarray
    loss: np.ndarray
    acc: np.ndarray


def filter_normalized_direction(model: nn.Module, seed: int, ignore_bn_and_bias: bool = True) -> torch.Tensor:
    """A random flat direction d with ‖d_i‖ = ‖θ_i‖ for every filter i of every weight tensor.

    Drawn on the CPU from ``seed`` (so it is the same on any device) and returned on the model's
    device. With ``ignore_bn_and_bias=False``, one-dimensional parameters are treated as a single
    filter and rescaled to their own norm instead of being zeroed.
    """
    vector = ParamVector(model)
    generator = torch.Generator().manual_seed(seed)
    parts = []
    for param in vector.params:
        weight = param.detach().to("cpu", torch.float64)
        if weight.dim() <= 1 and ignore_bn_and_bias:
            parts.append(torch.zeros_like(weight))
            continue
        filters = weight.reshape(weight.shape[0], -1) if weight.dim() > 1 else weight.reshape(1, -1)
        noise = torch.randn(filters.shape, generator=generator, dtype=torch.float64)
        scale = torch.linalg.vector_norm(filters, dim=1, keepdim=True) / (
            torch.linalg.vector_norm(noise, dim=1, keepdim=True) + 1e-12
        )
        parts.append((noise * scale).reshape(weight.shape))
    first = vector.params[0]
    return vector.flatten(parts).to(first.device, first.dtype)


def _check_direction(vector: ParamVector, direction: torch.Tensor, name: str) -> torch.Tensor:
    expected = sum(vector.numels)
    if direction.dim() != 1 or direction.numel() != expected:
        raise ValueError(
            f"{name} must be a flat vector of {expected} values (one per trainable parameter), "
            f"got shape {tuple(direction.shape)}"
        )
    first = vector.params[0]
    return direction.to(first.device, first.dtype)


def _in_layout_of(source: ParamVector, target: ParamVector, direction: torch.Tensor) -> torch.Tensor:
    """Re-express a flat vector of ``source``'s ParamVector order in ``target``'s (memory layouts may differ)."""
    return target.flatten(source.views(direction))


@torch.no_grad()
def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    logits = full_precision(model(x))
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def _evaluation_copy(
    model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """An eval-mode copy of ``model`` and the batch on its device, channels-last where that pays off."""
    check_batches([batch])
    device = model_device(model)
    x, y = batch[0].to(device), batch[1].to(device)
    evaluator = copy.deepcopy(model).eval()
    if x.dim() == 4 and x.dtype in (torch.float32, torch.float16, torch.bfloat16):
        evaluator = evaluator.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return evaluator, x, y


def loss_grid_1d(
    model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], direction: torch.Tensor, alphas: Sequence[float]
) -> LossCurve:
    """Loss and accuracy at θ + α·d for every α in ``alphas`` (eval mode, no gradients)."""
    source = ParamVector(model)
    d = _check_direction(source, direction, "direction")
    evaluator, x, y = _evaluation_copy(model, batch)
    vector = ParamVector(evaluator)
    d = _in_layout_of(source, vector, d)
    theta = vector.snapshot()
    values = []
    for alpha in alphas:
        vector.copy_(theta + alpha * d)
        values.append(_evaluate(evaluator, x, y))
    loss, acc = np.array(values, dtype=np.float64).reshape(-1, 2).T
    return LossCurve(np.asarray(alphas, dtype=np.float64), loss, acc)


def loss_along_direction(
    model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], direction: torch.Tensor, alphas: Sequence[float]
) -> np.ndarray:
    """The losses L(θ + α·d) of :func:`loss_grid_1d` alone."""
    return loss_grid_1d(model, batch, direction, alphas).loss


def loss_grid_2d(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    d1: torch.Tensor,
    d2: torch.Tensor,
    alphas: Sequence[float],
    betas: Sequence[float],
) -> LossSurface:
    """Loss and accuracy at θ + α·d1 + β·d2 on the ``alphas × betas`` grid (eval mode, no gradients)."""
    source = ParamVector(model)
    d1, d2 = _check_direction(source, d1, "d1"), _check_direction(source, d2, "d2")
    evaluator, x, y = _evaluation_copy(model, batch)
    vector = ParamVector(evaluator)
    d1, d2 = _in_layout_of(source, vector, d1), _in_layout_of(source, vector, d2)
    theta = vector.snapshot()
    loss = np.empty((len(alphas), len(betas)))
    acc = np.empty_like(loss)
    for i, alpha in enumerate(alphas):
        row = theta + alpha * d1
        for j, beta in enumerate(betas):
            vector.copy_(row + beta * d2)
            loss[i, j], acc[i, j] = _evaluate(evaluator, x, y)
    return LossSurface(np.asarray(alphas, dtype=np.float64), np.asarray(betas, dtype=np.float64), loss, acc)


def _model_state(state: Mapping[str, Any]) -> Mapping[str, torch.Tensor]:
    """Accept a state dict or a checkpoint holding one under ``"model"`` (docs/records.md)."""
    inner = state.get("model")
    return inner if isinstance(inner, Mapping) else state


def interpolate_checkpoints(
    model: nn.Module,
    state_a: Mapping[str, Any],
    state_b: Mapping[str, Any],
    batch: tuple[torch.Tensor, torch.Tensor],
    ts: Sequence[float],
    buffers: Literal["interpolate", "nearest"] = "interpolate",
) -> LossCurve:
    """Loss and accuracy along (1 − t)·θ_a + t·θ_b, e.g. from an ERM to a RoGA checkpoint.

    ``state_a``/``state_b`` are state dicts of ``model``'s architecture (or checkpoints with a
    ``"model"`` entry). Floating-point parameters are interpolated. Floating-point buffers (BN
    running mean/var) are interpolated too with ``buffers="interpolate"`` (default), or taken from
    the nearer end point (t < 0.5 → a) with ``buffers="nearest"``; integer buffers
    (``num_batches_tracked``) always come from the nearer end. Interpolated running statistics are
    not the true statistics of the interpolated network, so away from the end points the curve can
    sit above what BN re-estimation would give. ``model`` only supplies the architecture; it is
    not modified.
    """
    if buffers not in ("interpolate", "nearest"):
        raise ValueError(f"buffers={buffers!r} is not one of ['interpolate', 'nearest']")
    a, b = _model_state(state_a), _model_state(state_b)
    own = model.state_dict()
    for label, state in (("state_a", a), ("state_b", b)):
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"{label} does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
        for key, value in own.items():
            if tuple(state[key].shape) != tuple(value.shape):
                raise ValueError(
                    f"{label}[{key!r}] has shape {tuple(state[key].shape)}, model has {tuple(value.shape)}"
                )
    parameter_names = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    evaluator, x, y = _evaluation_copy(model, batch)
    targets = evaluator.state_dict()
    values = []
    for t in ts:
        nearer = a if t < 0.5 else b
        with torch.no_grad():
            for key, target in targets.items():
                if target.is_floating_point() and (key in parameter_names or buffers == "interpolate"):
                    va = a[key].to(target.device, torch.float64)
                    vb = b[key].to(target.device, torch.float64)
                    target.copy_((1 - t) * va + t * vb)
                else:
                    target.copy_(nearer[key])
        values.append(_evaluate(evaluator, x, y))
    loss, acc = np.array(values, dtype=np.float64).reshape(-1, 2).T
    return LossCurve(np.asarray(ts, dtype=np.float64), loss, acc)
