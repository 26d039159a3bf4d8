"""Decode frame images from a manifest into fixed-size uint8 tensors, with errors that name the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from workbench.data.manifest import ManifestError, row_origin

# Pillow modes of 16-bit (and 32-bit integer) greyscale files: converting them to "L"/"RGB" would clip
# every value above 255 to white instead of scaling.
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def eight_bit(img: Image.Image, path: str | Path) -> Image.Image:
    """``img`` with 16-bit greyscale values scaled to 8 bits (0–65535 → 0–255); other modes unchanged.

    Float images ("F") have no agreed range and are refused, naming the file.
    """
    if img.mode == "F":
        raise ManifestError(
            f"cannot read image {str(path)!r}: 32-bit float images are not supported; store frames as 8- or 16-bit"
        )
    if img.mode not in HIGH_DEPTH_MODES:
        return img
    values = np.asarray(img, dtype=np.float64)
    if values.min() < 0 or values.max() > 65535:
        raise ManifestError(
            f"cannot read image {str(path)!r}: {img.mode} values in [{values.min():g}, {values.max():g}] are not 16-bit"
        )
    return Image.fromarray(np.round(values / 257.0).astype(np.uint8))


def load_image(path: str | Path, size: int) -> torch.Tensor:
    """Read an image file as an RGB ``uint8`` tensor ``[3, size, size]`` (bilinear resize if needed).

    16-bit greyscale files are scaled to 8 bits (:func:`eight_bit`).
    """
    try:
        with Image.open(path) as img:
            img = eight_bit(img, path).convert("RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ManifestError(f"cannot read image {str(path)!r}: {exc}") from exc
    # Transposing in NumPy avoids a PyTorch thread-pool copy per image, which is slow in workers.
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def row_roots(rows: pd.DataFrame, roots: str | Path | Sequence[str | Path]) -> list[Path]:
    """Each row's dataset root: ``roots`` itself, or ``roots[root_index]`` for rows of several manifests.

    ``root_index`` is the column :func:`workbench.data.manifest.read_manifests` adds.
    """
    if isinstance(roots, (str, Path)):
        return [Path(roots)] * len(rows)
    roots = [Path(root) for root in roots]
    if "root_index" not in rows.columns:
        if len(roots) != 1:
            raise ValueError(
                f"{len(roots)} dataset roots but the rows have no 'root_index' column to choose one "
                "(see read_manifests)"
            )
        return roots * len(rows)
    return [roots[int(index)] for index in rows["root_index"]]


class FrameDataset(Dataset):
    """Frames of a validated manifest: item ``i`` is ``(uint8 image [3,H,W], label, i)``.

    ``root`` is the dataset root, or a list of roots indexed by the manifest's ``root_index`` column
    (several manifests combined by :func:`workbench.data.manifest.read_manifests`).

    With ``cache=True`` each decoded image is kept in memory after its first read (worth it for the
    small embedded benchmark; leave it off for real datasets and use DataLoader workers instead).
    """

    def __init__(
        self, manifest: pd.DataFrame, root: str | Path | Sequence[str | Path], image_size: int, cache: bool = False
    ) -> None:
        self.manifest = manifest.reset_index(drop=True)
        self.image_size = image_size
        self.paths = [root / path for root, path in zip(row_roots(self.manifest, root), self.manifest["path"])]
        self.labels = torch.as_tensor(self.manifest["label"].to_numpy().copy(), dtype=torch.long)
        self._cache: dict[int, torch.Tensor] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int) -> torch.Tensor:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        try:
            image = load_image(self.paths[index], self.image_size)
        except ManifestError as exc:
            raise ManifestError(
                f"{row_origin(self.manifest, index)} ({self.manifest.at[index, 'path']!r}): {exc}"
            ) from exc
        if self._cache is not None:
            self._cache[index] = image
        return image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.image(index), self.labels[index], index

    def batch(self, indices: list[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack the images and labels at ``indices`` (in that order)."""
        indices = [int(i) for i in indices]
        return torch.stack([self.image(i) for i in indices]), self.labels[indices]


def collate_frames(
    items: list[tuple[torch.Tensor, torch.Tensor, int]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DataLoader collate: ``(images uint8 [N,3,H,W], labels [N], row indices [N])``."""
    images, labels, rows = zip(*items)
    return torch.stack(images), torch.stack(labels), torch.as_tensor(rows)
