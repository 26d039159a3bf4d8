"""Inter-domain mixup (Xu et al., 2020; Yan et al., 2020) as DomainBed runs it, with the draws from torch's
global generator: first the domain permutation, then one Beta(α, α) weight per pair (one call)."""

import torch
import torch.nn.functional as F

from method_cards import card, descend, grad_of, leaves, logits_at


def mixup_draws(k, alpha):
    """The permutation and the K mixing weights, in the order the algorithm draws them."""
    return torch.randperm(k).tolist(), torch.distributions.Beta(alpha, alpha).sample((k,)).tolist()


def mixed_pairs(batches, alpha):
    """(λ, mixed x, y of the first domain, y of the second) for every pair π(i), π(i + 1 mod K)."""
    k = len(batches)
    perm, lams = mixup_draws(k, alpha)
    out = []
    for i in range(k):
        (xa, ya), (xb, yb) = batches[perm[i]], batches[perm[(i + 1) % k]]
        n = min(len(xa), len(xb))
        out.append((lams[i], lams[i] * xa[:n] + (1 - lams[i]) * xb[:n], ya[:n], yb[:n]))
    return out


@card("mixup", hparams={"mixup_alpha": 1.0})
def mixup(model, params, batches, hp, state):
    free = leaves(params)
    objective = 0.0
    for lam, x, ya, yb in mixed_pairs(batches, hp["mixup_alpha"]):
        logits = logits_at(model, free, x)
        objective = objective + lam * F.cross_entropy(logits, ya) + (1 - lam) * F.cross_entropy(logits, yb)
    return descend(params, grad_of(objective / len(batches), free))
