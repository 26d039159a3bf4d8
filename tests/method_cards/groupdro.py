"""GroupDRO (Sagawa et al., 2020, Algorithm 1) as DomainBed runs it: per-domain passes, an exponentiated
ascent step on the domain weights q (carried between updates), then descent on Σ_k q_k R_k."""

import torch
import torch.nn.functional as F

from method_cards import card, descend, grad_of, leaves, logits_at, per_domain_inputs


@card("groupdro", hparams={"groupdro_eta": 0.5}, stat_inputs=per_domain_inputs)
def groupdro(model, params, batches, hp, state):
    free = leaves(params)
    risks = torch.stack([F.cross_entropy(logits_at(model, free, x), y) for x, y in batches])
    q = state.get("q", torch.ones(len(batches), dtype=risks.dtype))
    q = q * torch.exp(hp["groupdro_eta"] * risks.detach())
    state["q"] = q = q / q.sum()
    return descend(params, grad_of((q * risks).sum(), free))
