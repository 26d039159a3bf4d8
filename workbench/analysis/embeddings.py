"""Penultimate-layer features and their 2-D t-SNE map (colouring by domain/label is ``workbench.viz``'s job)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from torch import nn

from workbench.analysis.gradients import model_device, preserved_state
from workbench.models import penultimate_features

IMAGE_KEYS = ("image", "x")
LABEL_KEYS = ("label", "y")


def _as_column(values: Any, n: int, batch_index: int, key: str) -> list:
    if isinstance(values, torch.Tensor):
        values = values.tolist()
    values = list(values) if isinstance(values, (list, tuple, np.ndarray, pd.Series)) else [values] * n
    if len(values) != n:
        raise ValueError(f"batch {batch_index}: column {key!r} has {len(values)} values for {n} images")
    return values


def _split_item(item: Any, index: int, domain_names: Sequence[str] | None) -> tuple[torch.Tensor, dict[str, list]]:
    """Images and per-sample metadata columns of one batch (see :func:`penultimate_embeddings`)."""
    if isinstance(item, Mapping):
        image_key = next((k for k in IMAGE_KEYS if k in item), None)
        label_key = next((k for k in LABEL_KEYS if k in item), None)
        if image_key is None or label_key is None:
            raise ValueError(
                f"batch {index}: a dict batch needs an image key {IMAGE_KEYS} and a label key "
                f"{LABEL_KEYS}, got keys {sorted(item)}"
            )
        x = item[image_key]
        columns = {"label": item[label_key]}
        columns.update({k: v for k, v in item.items() if k not in (image_key, label_key)})
    elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
        x, columns = item[0], {"label": item[1]}
        if len(item) == 3:
            if not isinstance(item[2], Mapping):
                raise ValueError(f"batch {index}: the third element must be a dict of metadata columns")
            columns.update(item[2])
    else:
        raise ValueError(f"batch {index}: expected (x, y), (x, y, meta) or a dict, got {type(item).__name__}")
    n = len(x)
    if "domain" not in columns:
        if domain_names is not None and index >= len(domain_names):
            raise ValueError(f"batch {index} has no domain name: only {len(domain_names)} domain_names given")
        columns["domain"] = domain_names[index] if domain_names is not None else str(index)
    meta = {key: _as_column(value, n, index, key) for key, value in columns.items()}
    return x, meta


def penultimate_embeddings(
    model: nn.Module, batches: Iterable[Any], domain_names: Sequence[str] | None = None
) -> tuple[np.ndarray, pd.DataFrame]:
    """Pre-logit features of every image (eval mode, no gradients) and a metadata frame, row for row.

    ``batches`` is a DataLoader or any iterable of batches, each one of
    ``(x, y)``, ``(x, y, meta)`` with ``meta`` a dict of per-sample columns, or a dict with an
    image key (``image``/``x``), a label key (``label``/``y``) and other per-sample columns.
    A batch without a ``domain`` column gets ``domain_names[i]`` (or ``str(i)``) for the i-th
    batch, so a per-domain batch list ``[(x_1, y_1), …]`` is labelled by domain directly.
    The metadata frame has ``domain``, ``label``, ``batch`` and any extra columns.
    """
    features, metas = [], []
    device = model_device(model)
    with preserved_state(model, "eval"), torch.no_grad():
        for index, item in enumerate(batches):
            x, meta = _split_item(item, index, domain_names)
            features.append(penultimate_features(model, x.to(device)).float().cpu().numpy())
            frame = pd.DataFrame(meta)
            frame["batch"] = index
            metas.append(frame)
    if not features:
        raise ValueError("no batches to embed")
    meta = pd.concat(metas, ignore_index=True)
    ordered = ["domain", "label", "batch"] + [c for c in meta.columns if c not in ("domain", "label", "batch")]
    return np.concatenate(features), meta[ordered]


def tsne_2d(
    features: np.ndarray, meta: pd.DataFrame, perplexity: float = 30.0, seed: int = 0, pca_dims: int | None = 50
) -> pd.DataFrame:
    """2-D t-SNE of ``features`` (scikit-learn, PCA initialisation) joined with ``meta``.

    Features are first reduced to ``pca_dims`` principal components when they have more (the usual
    speed-up; ``None`` skips it). Returns ``meta``'s columns plus ``x`` and ``y``; deterministic for
    a fixed ``seed``. ``perplexity`` must be below the number of samples.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D array [samples, dims], got shape {features.shape}")
    if len(meta) != len(features):
        raise ValueError(f"meta has {len(meta)} rows for {len(features)} feature vectors")
    if not 0 < perplexity < len(features):
        raise ValueError(f"perplexity={perplexity} must be positive and below the sample count {len(features)}")
    if pca_dims is not None and features.shape[1] > pca_dims and len(features) > pca_dims:
        features = PCA(n_components=pca_dims, random_state=seed).fit_transform(features)
    coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
    frame = meta.reset_index(drop=True).copy()
    frame.insert(0, "y", coords[:, 1])
    frame.insert(0, "x", coords[:, 0])
    return frame
