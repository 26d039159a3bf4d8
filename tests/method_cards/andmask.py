"""AND-mask (Parascandolo et al., 2021) and SAND-mask (Shahtalebi et al., 2021) as DomainBed: per-domain
gradients, an elementwise mask per parameter tensor, step with mask · mean gradient / (1e-10 + mean mask)."""

import torch

from method_cards import card, descend, flat_grad, per_domain_inputs, unflatten


def per_tensor_grads(model, params, batches):
    """{parameter name: [K, *shape]} per-domain gradients."""
    per_domain = [unflatten(params, flat_grad(model, params, x, y)) for x, y in batches]
    return {name: torch.stack([grads[name] for grads in per_domain]) for name in params}


def masked_direction(grads, make_mask):
    direction = []
    for g in grads.values():
        mask = make_mask(g)
        direction.append((mask * g.mean(0) / (1e-10 + mask.sum() / mask.numel())).reshape(-1))
    return torch.cat(direction)


@card("andmask", hparams={"tau": 0.5}, stat_inputs=per_domain_inputs)
def andmask(model, params, batches, hp, state):
    def mask(g):
        return (torch.sign(g).mean(0).abs() >= hp["tau"]).to(g.dtype)

    return descend(params, masked_direction(per_tensor_grads(model, params, batches), mask))


@card("sandmask", hparams={"tau": 0.5, "k": 0.01}, stat_inputs=per_domain_inputs, learns_with={"tau": 0.5})
def sandmask(model, params, batches, hp, state):
    def mask(g):
        var = g.var(0)
        var[torch.isnan(var)] = 1e-17
        m = torch.tanh(hp["k"] * (1 / var) * (torch.sign(g).mean(0).abs() - hp["tau"]))
        m = torch.max(m, torch.zeros_like(m))
        m[torch.isnan(m)] = 1e-17
        return m

    return descend(params, masked_direction(per_tensor_grads(model, params, batches), mask))
