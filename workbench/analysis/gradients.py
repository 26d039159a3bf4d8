"""Per-domain gradients and the alignment measures RoGA optimises (docs/method.md).

Every function takes a model and per-domain batches ``[(x_1, y_1), …, (x_K, y_K)]`` and returns
numbers or tensors. The model's weights, buffers and train/eval flags are restored bit for bit
afterwards (:func:`preserved_state`), and ``.grad`` fields are never touched (gradients come from
``torch.autograd.grad``), so analysis can run in the middle of training.

Gradients are taken in one of two modes:

- ``"eval"`` (default for analysis): BN uses its running statistics, dropout is off — deterministic,
  and the network one would deploy.
- ``"train"``: the view the training algorithms have — BN normalises with batch statistics (its
  running buffers are restored afterwards), dropout is active if the model has any. With the same
  ρ and α this reproduces RoGA's own ``cos_clean_mean`` / ``cos_perturbed_mean`` statistics.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from workbench.algorithms.batches import DomainBatches, check_domain_batches
from workbench.algorithms.execution import full_precision
from workbench.algorithms.param_vector import ParamVector, cosine
from workbench.algorithms.roga import ascent_perturbations as roga_perturbations
from workbench.algorithms.roga import check_ascent

Mode = Literal["eval", "train"]
Ascent = Literal["per_domain", "shared"]


@contextmanager
def preserved_state(model: nn.Module, mode: Mode | None = None) -> Iterator[None]:
    """Run a block with ``model`` in ``mode`` and restore weights, buffers and modes exactly.

    The state dict is snapshotted (cloned) on entry and copied back on exit, so parameters
    perturbed in place and BN running statistics updated by train-mode passes come back bitwise
    equal; every submodule's ``.training`` flag is restored individually.
    """
    if mode not in (None, "eval", "train"):
        raise ValueError(f"mode={mode!r} is not one of ['eval', 'train']")
    flags = [(module, module.training) for module in model.modules()]
    saved = {name: value.detach().clone() for name, value in model.state_dict(keep_vars=True).items()}
    if mode is not None:
        model.train(mode == "train")
    try:
        yield
    finally:
        with torch.no_grad():
            current = model.state_dict(keep_vars=True)
            for name, value in saved.items():
                current[name].copy_(value)
        for module, flag in flags:
            module.training = flag


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a parameter-free model)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def batch_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """2-logit cross-entropy of ``model`` on one batch, moved to the model's device."""
    device = model_device(model)
    logits = model(x.to(device))
    return F.cross_entropy(full_precision(logits), y.to(device))


def check_batches(domain_batches: DomainBatches, minimum: int = 1) -> None:
    """Reject too few domains or a malformed ``(x, y)`` pair, naming the domain at fault."""
    check_domain_batches(domain_batches, minimum=minimum, owner="the analysis")


def domain_names_for(domain_batches: DomainBatches, domain_names: Sequence[str] | None) -> list[str]:
    """Names used as keys/columns: ``domain_names`` if given, else the domain indices as strings."""
    if domain_names is None:
        return [str(k) for k in range(len(domain_batches))]
    if len(domain_names) != len(domain_batches):
        raise ValueError(f"{len(domain_names)} domain names for {len(domain_batches)} domain batches")
    return [str(name) for name in domain_names]


def _gradients(model: nn.Module, vector: ParamVector, domain_batches: DomainBatches):
    losses, grads = [], []
    with torch.enable_grad():
        for x, y in domain_batches:
            loss = batch_loss(model, x, y)
            losses.append(float(loss.detach()))
            grads.append(vector.grad(loss))
    return losses, grads


def domain_gradients(model: nn.Module, domain_batches: DomainBatches, mode: Mode = "eval") -> list[torch.Tensor]:
    """One flat gradient ∇L_k(θ) per domain, over the trainable parameters (ParamVector order)."""
    check_batches(domain_batches)
    with preserved_state(model, mode):
        return _gradients(model, ParamVector(model), domain_batches)[1]


def cosine_matrix(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """K×K matrix of pairwise cosine similarities (a zero vector has cosine 0 with everything)."""
    if len(vectors) == 0:
        raise ValueError("cosine_matrix needs at least one vector")
    stacked = torch.stack([v.reshape(-1) for v in vectors])
    norms = torch.linalg.vector_norm(stacked, dim=1)
    return (stacked @ stacked.T) / (norms[:, None] * norms[None, :] + 1e-12)


def conflict_rate(vectors: Sequence[torch.Tensor]) -> float:
    """Share of the K(K−1)/2 distinct pairs whose gradients point apart (negative dot product)."""
    if len(vectors) < 2:
        raise ValueError(f"conflict rate needs at least 2 vectors, got {len(vectors)}")
    matrix = cosine_matrix(vectors)
    rows, cols = torch.triu_indices(len(vectors), len(vectors), offset=1)
    return float((matrix[rows, cols] < 0).double().mean())


def ascent_perturbations(
    domain_grads: Sequence[torch.Tensor], rho: float, alpha: float, ascent: Ascent = "per_domain"
) -> list[torch.Tensor]:
    """ε_k = ρ g_k/‖g_k‖ − α g (``"shared"``: one ε from ĝ_s = Σ_k g_k/‖g_k‖), as in the method card."""
    check_ascent(ascent, rho, alpha)
    g = torch.stack(list(domain_grads)).mean(0)
    return roga_perturbations(list(domain_grads), g, rho, alpha, ascent)


@dataclass
class AscentPass:
    """Everything one RoGA-style analysis pass computes (losses are per domain)."""

    losses: list[float]
    grads: list[torch.Tensor]
    mean_grad: torch.Tensor
    perturbed_losses: list[float]
    perturbed_grads: list[torch.Tensor]


def ascent_pass(
    model: nn.Module,
    domain_batches: DomainBatches,
    rho: float,
    alpha: float = 0.0,
    ascent: Ascent = "per_domain",
    mode: Mode = "eval",
) -> AscentPass:
    """Clean gradients g_k, g = mean_k g_k, and each domain's loss and gradient at θ + ε_k."""
    check_batches(domain_batches)
    with preserved_state(model, mode):
        vector = ParamVector(model)
        losses, grads = _gradients(model, vector, domain_batches)
        theta = vector.snapshot()
        perturbed_losses, perturbed_grads = [], []
        for (x, y), epsilon in zip(domain_batches, ascent_perturbations(grads, rho, alpha, ascent)):
            vector.add_(epsilon)
            with torch.enable_grad():
                loss = batch_loss(model, x, y)
                perturbed_grads.append(vector.grad(loss))
            perturbed_losses.append(float(loss.detach()))
            vector.copy_(theta)
    return AscentPass(losses, grads, torch.stack(grads).mean(0), perturbed_losses, perturbed_grads)


def ascent_point_gradients(
    model: nn.Module,
    domain_batches: DomainBatches,
    rho: float,
    alpha: float = 0.0,
    ascent: Ascent = "per_domain",
    mode: Mode = "eval",
) -> list[torch.Tensor]:
    """g_k^p = ∇L_k(θ + ε_k): each domain's gradient at its (α-shifted) ascending point."""
    return ascent_pass(model, domain_batches, rho, alpha, ascent, mode).perturbed_grads


def per_domain_perturbed_loss(
    model: nn.Module,
    domain_batches: DomainBatches,
    rho: float,
    alpha: float = 0.0,
    ascent: Ascent = "per_domain",
    mode: Mode = "eval",
) -> list[float]:
    """L_k(θ + ε_k) for every domain — the worst-case losses RoGA descends."""
    return ascent_pass(model, domain_batches, rho, alpha, ascent, mode).perturbed_losses


def alignment_summary(
    model: nn.Module,
    domain_batches: DomainBatches,
    rho: float,
    alpha: float = 0.0,
    ascent: Ascent = "per_domain",
    mode: Mode = "eval",
    domain_names: Sequence[str] | None = None,
) -> dict[str, float]:
    """Alignment statistics at θ for K ≥ 2 domains.

    Keys (``<k>`` is the domain name, or its index): ``cos_clean/<k>`` = cos(g_k, g),
    ``cos_perturbed/<k>`` = cos(g_k^p, g), their means ``cos_clean_mean`` and
    ``cos_perturbed_mean``, ``conflict_rate`` (share of domain pairs with cos(g_i, g_j) < 0) and
    ``conflict_rate_perturbed`` (same for the g_k^p), ``grad_norm`` = ‖g‖, ``loss/<k>``,
    ``loss_perturbed/<k>`` and their means ``loss_mean``, ``loss_perturbed_mean``.
    """
    check_batches(domain_batches, minimum=2)
    names = domain_names_for(domain_batches, domain_names)
    result = ascent_pass(model, domain_batches, rho, alpha, ascent, mode)
    g = result.mean_grad
    clean = [float(cosine(g_k, g)) for g_k in result.grads]
    perturbed = [float(cosine(g_p, g)) for g_p in result.perturbed_grads]
    summary: dict[str, float] = {}
    for name, c, p, loss, loss_p in zip(names, clean, perturbed, result.losses, result.perturbed_losses):
        summary[f"cos_clean/{name}"] = c
        summary[f"cos_perturbed/{name}"] = p
        summary[f"loss/{name}"] = loss
        summary[f"loss_perturbed/{name}"] = loss_p
    k = len(names)
    summary["cos_clean_mean"] = sum(clean) / k
    summary["cos_perturbed_mean"] = sum(perturbed) / k
    summary["loss_mean"] = sum(result.losses) / k
    summary["loss_perturbed_mean"] = sum(result.perturbed_losses) / k
    summary["conflict_rate"] = conflict_rate(result.grads)
    summary["conflict_rate_perturbed"] = conflict_rate(result.perturbed_grads)
    summary["grad_norm"] = float(torch.linalg.vector_norm(g))
    return summary


def _module_order(model: nn.Module) -> dict[str, int]:
    return {name: position for position, (name, _) in enumerate(model.named_modules())}


def _stage_ends(model: nn.Module) -> list[tuple[str, int]] | None:
    """(stage module name, position of the last module in its subtree) from timm's feature_info."""
    info = getattr(model, "feature_info", None)
    if info is None:
        return None
    names = [entry["module"] for entry in info] if isinstance(info, list) else list(info.module_name())
    order = _module_order(model)
    ends = []
    for stage in names:
        if stage not in order:
            return None
        ends.append((stage, max(pos for name, pos in order.items() if name == stage or name.startswith(stage + "."))))
    return ends


def parameter_groups(model: nn.Module, depth: int | None = None) -> dict[str, torch.Tensor]:
    """Flat (ParamVector-order) indices of the trainable parameters, grouped by layer/block name.

    ``depth=None``: timm stages — each ``feature_info`` module takes every parameter registered up
    to the end of its subtree that no earlier stage took (so the stem joins the first stage), and
    what follows the last stage is ``"head"``; models without ``feature_info`` fall back to their
    top-level children. ``depth=n``: the first ``n`` components of each parameter's module name
    (``depth=2`` on a ResNet: ``layer1.0``, ``layer1.1``, …). Groups keep registration order.
    """
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be a positive integer or None, got {depth}")
    order = _module_order(model)
    ends = _stage_ends(model) if depth is None else None
    groups: dict[str, list[torch.Tensor]] = {}
    offset = 0
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        module_name = name.rpartition(".")[0]
        if ends is not None:
            position = order[module_name]
            label = next((stage for stage, end in ends if position <= end), "head")
        else:
            parts = name.split(".")[:-1] or [name]
            label = ".".join(parts[: depth or 1])
        groups.setdefault(label, []).append(torch.arange(offset, offset + param.numel()))
        offset += param.numel()
    return {label: torch.cat(chunks) for label, chunks in groups.items()}


def layerwise_cosine(
    model: nn.Module,
    domain_batches: DomainBatches,
    depth: int | None = None,
    mode: Mode = "eval",
    domain_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """cos(g_k, g) restricted to each parameter group (rows, see :func:`parameter_groups`).

    Columns are the domains; a last row ``"all"`` holds the whole-model cosine.
    """
    check_batches(domain_batches)
    names = domain_names_for(domain_batches, domain_names)
    grads = domain_gradients(model, domain_batches, mode)
    g = torch.stack(grads).mean(0)
    groups: Mapping[str, torch.Tensor] = parameter_groups(model, depth)
    rows = {
        label: [float(cosine(g_k[index.to(g.device)], g[index.to(g.device)])) for g_k in grads]
        for label, index in groups.items()
    }
    rows["all"] = [float(cosine(g_k, g)) for g_k in grads]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=names)
    frame.index.name = "group"
    return frame
