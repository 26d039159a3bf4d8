"""Score evaluation groups: predict each needed frame once, then compute every group's metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset

from workbench.data.augment import normalize
from workbench.data.images import FrameDataset, collate_frames
from workbench.data.manifest import video_keys
from workbench.metrics import compute_metrics
from workbench.models import input_normalization

Predict = Callable[[torch.Tensor], torch.Tensor]


class NonFiniteOutputError(ValueError):
    """The model's outputs are NaN or infinite (its weights diverged); nothing can be scored."""


@torch.no_grad()
def predict_rows(
    model: torch.nn.Module,
    predict: Predict,
    dataset: FrameDataset,
    rows: np.ndarray,
    device: torch.device,
    batch_size: int = 256,
    workers: int = 0,
) -> np.ndarray:
    """Fake probabilities (softmax[:, 1]) for the manifest ``rows``, in eval mode (mode restored).

    Images are standardised with the backbone's own statistics (:func:`input_normalization`).
    Raises :class:`NonFiniteOutputError` when any output is NaN or infinite.
    """
    mean, std = input_normalization(model)
    was_training = model.training
    model.eval()
    loader = DataLoader(
        Subset(dataset, rows.tolist()),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_frames,
    )
    probs = []
    try:
        for images, _, _ in loader:
            logits = predict(normalize(images.to(device, non_blocking=True), mean, std))
            probs.append(torch.softmax(logits.float(), dim=1)[:, 1].cpu())
    finally:
        model.train(was_training)
    result = torch.cat(probs).numpy() if probs else np.zeros(0)
    bad = ~np.isfinite(result)
    if bad.any():
        raise NonFiniteOutputError(
            f"the model's fake probability is {result[bad][0]} for {int(bad.sum())} of "
            f"{len(result)} frames: its outputs are not finite"
        )
    return result


def evaluate_groups(
    model: torch.nn.Module,
    predict: Predict,
    dataset: FrameDataset,
    groups: Mapping[str, np.ndarray],
    device: torch.device,
    batch_size: int = 256,
    workers: int = 0,
) -> tuple[dict[str, dict], pd.DataFrame]:
    """Metrics per group (docs/records.md) and the per-frame predictions behind them."""
    needed = np.unique(np.concatenate(list(groups.values())))
    probs = np.full(len(dataset), np.nan)
    probs[needed] = predict_rows(model, predict, dataset, needed, device, batch_size, workers)
    manifest = dataset.manifest
    labels = manifest["label"].to_numpy()
    videos = video_keys(manifest).to_numpy()
    results, frames = {}, []
    for name, rows in groups.items():
        results[name] = compute_metrics(labels[rows], probs[rows], videos[rows])
        part = manifest.iloc[rows][["path", "dataset", "domain", "split", "video", "label"]].copy()
        part.insert(0, "group", name)
        part["prob_fake"] = probs[rows]
        frames.append(part)
    return results, pd.concat(frames, ignore_index=True)
