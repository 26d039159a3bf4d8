"""CORAL (Sun & Saenko, 2016) as DomainBed runs it: MMD's card step (per-domain featurizer passes, mean risk plus
mmd_gamma times the mean pairwise discrepancy) with the mean squared differences of the feature means and of
the unbiased feature covariances as the discrepancy."""

import torch

from method_cards import card, per_domain_inputs
from method_cards.mmd import feature_matching_step


def coral(a, b):
    """Mean squared differences of the means and of the unbiased covariances (``torch.cov``)."""
    return (a.mean(0) - b.mean(0)).pow(2).mean() + (torch.cov(a.T) - torch.cov(b.T)).pow(2).mean()


card("coral", hparams={"mmd_gamma": 2.0}, stat_inputs=per_domain_inputs)(feature_matching_step(coral))
