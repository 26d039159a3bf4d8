"""Chosen frames in memory: seeded picks from a manifest, and their images with manipulation masks.

What analysis and figures look at (a few frames per domain), as opposed to :mod:`workbench.data.images`,
which streams a whole manifest through a dataset for training and evaluation.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from workbench.data.augment import normalize
from workbench.data.images import eight_bit, load_image, row_roots
from workbench.data.manifest import ManifestError, row_origin


def pick_frames(
    manifest: pd.DataFrame,
    per_domain: int,
    domains: Sequence[str] | None = None,
    split: str | None = None,
    label: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Up to ``per_domain`` rows per domain (in ``domains`` order), from as many different videos as possible.

    Rows are drawn at random from a generator seeded by ``seed`` and the domain name (so a domain
    gets the same rows whatever else is asked for); one frame per video comes first, then further
    frames if the domain has fewer videos than ``per_domain``. ``split``/``label`` filter the rows first.
    """
    if per_domain < 1:
        raise ValueError(f"per_domain={per_domain} must be positive")
    available = list(dict.fromkeys(manifest["domain"]))
    domains = available if domains is None else list(domains)
    unknown = [d for d in domains if d not in available]
    if unknown:
        raise ManifestError(f"domain(s) {unknown} are not in the manifest; it has {available}")
    chosen = []
    for domain in domains:
        rows = manifest[manifest["domain"] == domain]
        if split is not None:
            rows = rows[rows["split"] == split]
        if label is not None:
            rows = rows[rows["label"] == label]
        if rows.empty:
            raise ManifestError(f"domain {domain!r} has no frames with split={split!r}, label={label!r}")
        shuffled = rows.sample(frac=1.0, random_state=np.random.default_rng([seed, zlib.crc32(domain.encode())]))
        first = shuffled.drop_duplicates("video")
        chosen.append(pd.concat([first, shuffled.drop(first.index)]).head(per_domain))
    return pd.concat(chosen)


def showcase_rows(
    manifest: pd.DataFrame, per_domain: int = 1, split: str | None = "test", seed: int = 0
) -> pd.DataFrame:
    """Rows to show each domain by: its fakes when it has any (in ``split``), else its reals."""
    rows = manifest if split is None else manifest[manifest["split"] == split]
    picked = []
    for domain in dict.fromkeys(rows["domain"]):
        has_fakes = bool((rows.loc[rows["domain"] == domain, "label"] == 1).any())
        picked.append(pick_frames(rows, per_domain, [domain], label=1 if has_fakes else 0, seed=seed))
    if not picked:
        raise ManifestError(f"the manifest has no frames in split {split!r}")
    return pd.concat(picked)


def load_mask(path: str | Path, size: int) -> np.ndarray:
    """A manipulation mask image as a float ``size×size`` array in [0, 1] (bilinear resize; 16-bit scaled)."""
    try:
        with Image.open(path) as image:
            mask = eight_bit(image, path).convert("L").resize((size, size), Image.BILINEAR)
            return np.asarray(mask, dtype=np.float64) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise ManifestError(f"cannot read mask {str(path)!r}: {exc}") from exc


@dataclass
class Frames:
    """Manifest rows with their images (uint8 ``[N, 3, H, W]``) and masks (float ``[N, H, W]``, zero = none)."""

    rows: pd.DataFrame
    images: torch.Tensor
    masks: np.ndarray

    def inputs(self, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
        """The images as a model sees them: float, standardised per channel with its backbone's
        statistics (:func:`workbench.models.input_normalization`), as the trainer prepares them."""
        return normalize(self.images, mean, std)

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor(self.rows["label"].to_numpy(), dtype=torch.long)

    @property
    def domains(self) -> list[str]:
        return [str(d) for d in self.rows["domain"]]

    def subset(self, indices: Sequence[int]) -> Frames:
        """The frames at ``indices``."""
        indices = list(indices)
        return Frames(self.rows.iloc[indices].reset_index(drop=True), self.images[indices], self.masks[indices])

    def first_per_domain(self) -> list[int]:
        """Index of the first frame of each domain, in order of appearance."""
        domains = self.domains
        return [domains.index(domain) for domain in dict.fromkeys(domains)]


def load_frames(rows: pd.DataFrame, roots: str | Path | Sequence[str | Path], image_size: int) -> Frames:
    """Decode the images of manifest ``rows`` and their ``mask_path`` masks (zeros where a row has none).

    ``roots``: the dataset root, or the roots of :func:`workbench.training.runs.run_manifest` (see :func:`row_roots`).
    """
    if rows.empty:
        raise ValueError("no rows to load")
    where = row_roots(rows, roots)
    images, masks = [], np.zeros((len(rows), image_size, image_size))
    mask_paths = rows["mask_path"] if "mask_path" in rows.columns else [None] * len(rows)
    for i, (root, path, mask_path) in enumerate(zip(where, rows["path"], mask_paths)):
        try:
            images.append(load_image(root / path, image_size))
            if isinstance(mask_path, str) and mask_path:
                masks[i] = load_mask(root / mask_path, image_size)
        except ManifestError as exc:
            raise ManifestError(f"{row_origin(rows, i)} ({path!r}): {exc}") from exc
    return Frames(rows.reset_index(drop=True), torch.stack(images), masks)
