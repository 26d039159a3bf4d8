"""The one check of an update's per-domain batches, shared by the algorithms and the analyses."""

from __future__ import annotations

import pytest
import torch
from tiny_models import cnn_with_bn

from workbench.algorithms import build_algorithm, check_domain_batches
from workbench.analysis import alignment_summary


def pair(n: int, m: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(n, 3, 8, 8), torch.zeros(n if m is None else m, dtype=torch.long)


@pytest.mark.parametrize(
    ("batches", "kwargs", "message"),
    [
        ([], {}, r"who needs at least 1 domain batch\(es\), got 0"),
        ([pair(2)], {"minimum": 2}, r"at least 2 domain batch\(es\), got 1"),
        ([pair(2), pair(2)], {"expected": 3}, r"got 2 domain batches, but was built for num_domains=3"),
        ([pair(2), (torch.zeros(2),)], {}, r"who: domain batch 1 must be an \(x, y\) pair, got tuple"),
        ([pair(2), pair(3, 2)], {}, r"who: domain batch 1 has 3 inputs but 2 labels"),
        ([pair(0)], {}, r"who: domain batch 0 is empty"),
    ],
)
def test_malformed_domain_batches_are_refused_naming_the_domain(batches, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_domain_batches(batches, owner="who", **kwargs)


def test_well_formed_batches_pass() -> None:
    check_domain_batches([pair(2), pair(3)], minimum=2, expected=2)


def test_algorithms_and_analyses_apply_the_same_check() -> None:
    model = cnn_with_bn(dtype=torch.float32)
    algorithm = build_algorithm("erm", model, {}, num_domains=2)
    with pytest.raises(ValueError, match=r"erm: update\(\): domain batch 1 has 3 inputs but 2 labels"):
        algorithm.update([pair(2), pair(3, 2)])
    with pytest.raises(ValueError, match=r"the analysis: domain batch 1 has 3 inputs but 2 labels"):
        alignment_summary(model, [pair(2), pair(3, 2)], rho=0.05)
