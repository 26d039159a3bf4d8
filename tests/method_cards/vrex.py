"""V-REx (Krueger et al., 2021) as DomainBed runs it: one pooled forward pass, the mean of the per-domain risks
plus their population variance, of weight 1 until the anneal update and λ from then on (annealing starts at
the second of the three checked updates)."""

import torch
import torch.nn.functional as F

from method_cards import card, descend, grad_of, leaves, pooled_input
from method_cards.irm import domain_logits, penalty_weight


@card("vrex", hparams={"vrex_lambda": 10.0, "vrex_penalty_anneal_iters": 1}, stat_inputs=pooled_input)
def vrex(model, params, batches, hp, state):
    weight = penalty_weight(state, hp, "vrex_lambda", "vrex_penalty_anneal_iters", "vrex_updates")
    free = leaves(params)
    risks = torch.stack([F.cross_entropy(z, y) for z, (_, y) in zip(domain_logits(model, free, batches), batches)])
    return descend(params, grad_of(risks.mean() + weight * risks.var(correction=0), free))
