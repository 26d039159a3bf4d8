"""The batches the analysis functions take, drawn from a run's own data: one ``(x_k, y_k)`` per source domain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.algorithms import Algorithm
from workbench.data.frames import load_frames, pick_frames
from workbench.data.manifest import ManifestError
from workbench.data.protocol import real_rows, source_datasets
from workbench.models import backbone_normalization
from workbench.training.runs import run_manifest


def analysis_batches(
    config: Mapping[str, Any],
    split: str = "val",
    per_domain: int = 32,
    seed: int = 0,
    device: str | torch.device = "cpu",
    manifest: tuple[pd.DataFrame, list[Path]] | None = None,
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[str]]:
    """One batch per source domain, ``[(x_k, y_k)]``, and the domain names.

    Domain k's batch holds ``per_domain // 2`` of its fakes from ``split`` and as many reals drawn
    from the split's real pool (as in training, docs/method.md), without augmentation, standardised with
    the config's backbone statistics exactly as the trainer feeds that backbone. ``manifest``: the
    config's ``(manifest, roots)`` when the caller has already read them (:func:`run_manifest`).
    """
    if per_domain < 2:
        raise ValueError(f"per_domain={per_domain} must be at least 2 (fakes and reals)")
    manifest, roots = manifest if manifest is not None else run_manifest(config)
    domains = list(config["data"]["source_domains"])
    size = int(config["data"]["image_size"])
    model = config["model"]
    mean, std = backbone_normalization(model["name"], **(model.get("kwargs") or {}))
    reals = manifest.iloc[real_rows(manifest, source_datasets(manifest, domains), split)]
    if reals.empty:
        raise ManifestError(f"no real frames in split {split!r} of the source datasets")
    batches = []
    for k, domain in enumerate(domains):
        fakes = pick_frames(manifest, per_domain // 2, [domain], split=split, label=1, seed=seed)
        n_real = per_domain - len(fakes)
        picked = np.random.default_rng([seed, k, 1]).choice(len(reals), n_real, replace=n_real > len(reals))
        frames = load_frames(pd.concat([fakes, reals.iloc[picked]]), roots, size)
        batches.append((frames.inputs(mean, std).to(device), frames.labels.to(device)))
    return batches, domains


def pooled_batch(domain_batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """All domain batches as one batch (what ERM trains on)."""
    return Algorithm.pooled(domain_batches)
