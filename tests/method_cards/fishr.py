"""Fishr (Rame et al., 2022) as DomainBed: pooled nll plus λ × the spread of the domains' moving averages
of per-sample classifier-gradient variances (switched on, and the optimizer reset, at
penalty_anneal_iters; the reset is invisible with unit SGD and is checked with Adam in
test_gradient_matching_algorithms.py). Per-sample gradients by a loop of autograd calls with create_graph."""

import torch
import torch.nn.functional as F
from torch.func import functional_call

from method_cards import card, descend, grad_of, leaves, pooled, pooled_input


@card("fishr", hparams={"lambda": 3.0, "penalty_anneal_iters": 1, "ema": 0.6}, stat_inputs=pooled_input)
def fishr(model, params, batches, hp, state):
    free = leaves(params)
    prefix = f"{len(model) - 1}."
    body = {name: value for name, value in free.items() if not name.startswith(prefix)}
    head = {name[len(prefix) :]: value for name, value in free.items() if name.startswith(prefix)}
    x, y = pooled(batches)
    z = functional_call(model[:-1], body, (x,))
    nll = F.cross_entropy(functional_call(model[-1], head, (z,)), y)
    rows = []
    for i in range(len(y)):
        loss_i = F.cross_entropy(functional_call(model[-1], head, (z[i : i + 1],)), y[i : i + 1], reduction="sum")
        grads = torch.autograd.grad(loss_i, list(head.values()), create_graph=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    per_sample = torch.stack(rows)
    variances, start = [], 0
    for xk, _ in batches:
        g = per_sample[start : start + len(xk)]
        start += len(xk)
        variances.append(((g - g.mean(0)) ** 2).mean(0))
    ema = hp["ema"]
    corrected = []
    for d, v in enumerate(variances):
        previous = state.get(("ema", d), torch.zeros_like(v))
        current = ema * previous + (1 - ema) * v
        state[("ema", d)] = current.detach()
        corrected.append(current / (1 - ema))
    mean = sum(corrected) / len(corrected)
    penalty = sum(((c - mean) ** 2).mean() for c in corrected) / len(corrected)
    count = state.get("count", 0)
    state["count"] = count + 1
    weight = hp["lambda"] if count >= hp["penalty_anneal_iters"] else 0.0
    return descend(params, grad_of(nll + weight * penalty, free))
