"""IRM (Arjovsky et al., 2019) as DomainBed runs it: one pooled forward pass, per-domain risks, and the IRMv1
penalty (product of the dummy-scale derivatives on each domain's even and odd rows), of weight 1 until the
anneal update and λ from then on. The card's annealing starts at the second of the three checked updates,
so both phases are covered. The helpers are shared with V-REx's card."""

import torch
import torch.nn.functional as F

from method_cards import card, descend, grad_of, leaves, logits_at, pooled, pooled_input


def domain_logits(model, free, batches):
    """Each domain's slice of the logits of one forward pass on the concatenated batch."""
    logits = logits_at(model, free, pooled(batches)[0])
    return logits.split([len(x) for x, _ in batches])


def penalty_weight(state, hp, lam_key, anneal_key, counter):
    """λ from the anneal update on, 1 before; advances the update counter kept in ``state``."""
    count = state.get(counter, 0)
    state[counter] = count + 1
    return hp[lam_key] if count >= hp[anneal_key] else 1.0


def scale_derivative(logits, y):
    """d/dw CE(w · logits, y) at w = 1, in closed form: mean_i (Σ_c p_ic z_ic − z_{i,y_i})."""
    p = torch.softmax(logits, dim=1)
    return ((p * logits).sum(1) - logits.gather(1, y[:, None]).squeeze(1)).mean()


@card("irm", hparams={"irm_lambda": 10.0, "irm_penalty_anneal_iters": 1}, stat_inputs=pooled_input)
def irm(model, params, batches, hp, state):
    weight = penalty_weight(state, hp, "irm_lambda", "irm_penalty_anneal_iters", "irm_updates")
    free = leaves(params)
    nll, penalty = 0.0, 0.0
    for z, (_, y) in zip(domain_logits(model, free, batches), batches):
        nll = nll + F.cross_entropy(z, y) / len(batches)
        penalty = penalty + scale_derivative(z[::2], y[::2]) * scale_derivative(z[1::2], y[1::2]) / len(batches)
    return descend(params, grad_of(nll + weight * penalty, free))
