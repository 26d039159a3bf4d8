"""MMD (Li et al., 2018) as DomainBed runs it: features from one featurizer pass per domain, the classifier on
each, mean risk plus mmd_gamma times the mean over domain pairs of the squared MMD under a sum of Gaussian
kernels. The step is shared with CORAL's card; it splits an ``nn.Sequential`` into all layers but the last
(features) and the last (classifier)."""

import itertools

import torch
import torch.nn.functional as F
from torch.func import functional_call

from method_cards import card, descend, grad_of, leaves, per_domain_inputs

BANDWIDTHS = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]


def mmd(a, b):
    """Biased squared MMD under Σ_γ exp(−γ d²), with d² from pairwise differences clamped below at 1e-30."""

    def kernel_mean(u, v):
        d2 = (u[:, None, :] - v[None, :, :]).pow(2).sum(-1).clamp_min(1e-30)
        return sum(torch.exp(-gamma * d2) for gamma in BANDWIDTHS).mean()

    return kernel_mean(a, a) + kernel_mean(b, b) - 2 * kernel_mean(a, b)


def feature_matching_step(discrepancy):
    """The card step for a pairwise feature discrepancy ``discrepancy(a, b)``."""

    def step(model, params, batches, hp, state):
        free = leaves(params)
        head = str(len(model) - 1)
        body = {k: v for k, v in free.items() if not k.startswith(head + ".")}
        last = {k[len(head) + 1 :]: v for k, v in free.items() if k.startswith(head + ".")}
        features = [functional_call(model[:-1], body, (x,)) for x, _ in batches]
        risks = [F.cross_entropy(functional_call(model[-1], last, (f,)), y) for f, (_, y) in zip(features, batches)]
        pairs = list(itertools.combinations(features, 2))
        penalty = sum(discrepancy(a, b) for a, b in pairs) / len(pairs)
        return descend(params, grad_of(sum(risks) / len(risks) + hp["mmd_gamma"] * penalty, free))

    return step


card("mmd", hparams={"mmd_gamma": 2.0}, stat_inputs=per_domain_inputs)(feature_matching_step(mmd))
