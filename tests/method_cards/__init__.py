"""The method card: every algorithm's update written out from its paper or reference implementation,
independently of workbench code (docs/method.md). The algorithm tests compare the library against it.

A card is checked with the base optimizer SGD, learning rate 1, no momentum and no weight decay, so one
optimizer step moves the weights by exactly minus the direction it is given. ``step`` returns the new
parameter values from the old ones; state the method carries between updates (counters, moving
averages, group weights) lives in the ``state`` dict the test passes from step to step. Random draws
(pairings, mixing weights) come from torch's global generator, which the test seeds identically before
the card and before the algorithm.

One module per algorithm registers its card with ``@card(name, ...)``; this package imports them all.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

Params = dict[str, torch.Tensor]
Batches = list[tuple[torch.Tensor, torch.Tensor]]
Step = Callable[[nn.Module, Params, Batches, dict, dict], Params]


@dataclass(frozen=True)
class Card:
    """One algorithm's update as its authors define it.

    ``hparams``: the hyper-parameters (beside the unit SGD step) the card is checked with, e.g. short
    annealing so that a few steps cover every phase. ``stat_inputs``: the inputs whose train-mode
    forward passes at θ, in this order, are the only ones that move BatchNorm running statistics
    (None: the method does something else, checked by its own test). ``optimizer_steps``: how many
    times per update the algorithm's optimizer steps (each step averages gradients once in
    distributed training). ``learns_with``: hyper-parameters under which the method fits an easy problem,
    where a default is degenerate there (SAND-mask's τ = 1 masks every entry).
    """

    step: Step
    hparams: dict = field(default_factory=dict)
    stat_inputs: Callable[[Batches], list[torch.Tensor]] | None = None
    optimizer_steps: Callable[[int], int] = lambda k: 1
    learns_with: dict = field(default_factory=dict)


CARDS: dict[str, Card] = {}


def card(
    name: str,
    hparams: dict | None = None,
    stat_inputs=None,
    optimizer_steps=lambda k: 1,
    learns_with: dict | None = None,
):
    """Register the decorated step function as algorithm ``name``'s card."""

    def register(step: Step) -> Step:
        CARDS[name] = Card(step, dict(hparams or {}), stat_inputs, optimizer_steps, dict(learns_with or {}))
        return step

    return register


def pooled_input(batches: Batches) -> list[torch.Tensor]:
    """One forward pass on the concatenated batch."""
    return [torch.cat([x for x, _ in batches])]


def per_domain_inputs(batches: Batches) -> list[torch.Tensor]:
    """One forward pass per domain batch, in domain order."""
    return [x for x, _ in batches]


def pooled(batches: Batches) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def unit(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return v / (v.norm() + eps)


def flatten(params: Params) -> torch.Tensor:
    return torch.cat([value.reshape(-1) for value in params.values()])


def unflatten(params: Params, flat: torch.Tensor) -> Params:
    out, offset = {}, 0
    for name, value in params.items():
        out[name] = flat[offset : offset + value.numel()].view_as(value)
        offset += value.numel()
    return out


def shifted(params: Params, flat: torch.Tensor) -> Params:
    """θ + flat, with flat in parameter order."""
    return {name: value + delta for (name, value), delta in zip(params.items(), unflatten(params, flat).values())}


def leaves(params: Params) -> Params:
    return {name: value.detach().clone().requires_grad_(True) for name, value in params.items()}


def logits_at(model: nn.Module, params: Params, x: torch.Tensor) -> torch.Tensor:
    return functional_call(model, params, (x,))


def flat_grad(model: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇ of cross-entropy at the given parameter values, computed functionally."""
    free = leaves(params)
    loss = F.cross_entropy(logits_at(model, free, x), y)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(free.values()))])


def grad_of(objective: torch.Tensor, free: Params) -> torch.Tensor:
    """Flat gradient of a scalar with respect to the leaf parameters ``free`` (zeros where it does not reach)."""
    grads = torch.autograd.grad(objective, list(free.values()), allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(free.values(), grads)])


def descend(params: Params, direction: torch.Tensor) -> Params:
    """θ − G: one SGD step with learning rate 1."""
    return shifted(params, -direction)


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
