"""MLDG (Li et al., 2018), first order as DomainBed: Σ over (meta-train i, meta-test j) pairs of
G_i + β G_j at θ' = θ − lr G_i (a fresh SGD's first step), divided by the number of domains K."""

from itertools import cycle

import torch

from method_cards import card, descend, flat_grad, shifted


def split(batches, n_meta_test):
    """The domain permutation's last ``n_meta_test`` are meta-test, the rest meta-train; cut pairs to equal size."""
    perm = torch.randperm(len(batches)).tolist()
    pairs = []
    for i, j in zip(perm[: len(batches) - n_meta_test], cycle(perm[-n_meta_test:])):
        n = min(len(batches[i][0]), len(batches[j][0]))
        pairs.append(((batches[i][0][:n], batches[i][1][:n]), (batches[j][0][:n], batches[j][1][:n])))
    return pairs


@card("mldg", hparams={"mldg_beta": 0.7, "n_meta_test": 1})
def mldg(model, params, batches, hp, state):
    direction = 0
    for (xi, yi), (xj, yj) in split(batches, hp["n_meta_test"]):
        g_i = flat_grad(model, params, xi, yi)
        g_j = flat_grad(model, shifted(params, -hp["lr"] * g_i), xj, yj)
        direction = direction + g_i + hp["mldg_beta"] * g_j
    return descend(params, direction / len(batches))
