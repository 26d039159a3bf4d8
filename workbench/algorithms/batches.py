"""One update's input: a ``(x_k, y_k)`` pair per source domain, and the one check every consumer applies."""

from __future__ import annotations

from collections.abc import Sequence

import torch

DomainBatches = Sequence[tuple[torch.Tensor, torch.Tensor]]


def check_domain_batches(
    batches: DomainBatches, minimum: int = 1, expected: int | None = None, owner: str = "update()"
) -> None:
    """Refuse fewer than ``minimum`` domains, another count than ``expected``, or a malformed or empty pair.

    Errors name ``owner`` (who was called) and the domain index at fault.
    """
    if len(batches) < minimum:
        raise ValueError(f"{owner} needs at least {minimum} domain batch(es), got {len(batches)}")
    if expected is not None and len(batches) != expected:
        raise ValueError(f"{owner} got {len(batches)} domain batches, but was built for num_domains={expected}")
    for k, batch in enumerate(batches):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError(f"{owner}: domain batch {k} must be an (x, y) pair, got {type(batch).__name__}")
        x, y = batch
        if len(x) != len(y):
            raise ValueError(f"{owner}: domain batch {k} has {len(x)} inputs but {len(y)} labels")
        if len(x) == 0:
            raise ValueError(f"{owner}: domain batch {k} is empty")
