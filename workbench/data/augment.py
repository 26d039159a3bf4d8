"""Batch-wise, seeded image augmentation and normalisation on tensors (any device).

Augmenting whole batches with a per-step generator keeps training reproducible (resume is
bit-for-bit) and cheap; each sample still draws its own flip, jitter and shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(
    images: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """uint8 (or [0,1] float) images → float tensors standardised per channel (ImageNet by default;
    pass the backbone's own statistics, see :func:`workbench.models.input_normalization`)."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    mean = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


@dataclass(frozen=True)
class Augment:
    """Per-sample horizontal flip, brightness/contrast jitter and a small random translation."""

    flip: float = 0.5
    brightness: float = 0.1
    contrast: float = 0.1
    max_shift: float = 0.05

    def __call__(
        self,
        images: torch.Tensor,
        generator: torch.Generator,
        positions: torch.Tensor | None = None,
        total: int | None = None,
    ) -> torch.Tensor:
        """Augment a float batch ``[N,3,H,W]`` in [0,1]; randomness comes only from ``generator``.

        ``positions`` (with ``total``): the images are these places of a batch of ``total``, e.g. one
        process's shard of the global batch under torchrun. The draws are made for the whole batch and
        each image gets its place's, so every image is augmented as in a single-process run.
        """
        n, _, h, w = images.shape
        if (positions is None) != (total is None):
            raise ValueError("give positions and total together")
        if positions is not None and len(positions) != n:
            raise ValueError(f"{len(positions)} positions for a batch of {n} images")

        def draw(*shape: int) -> torch.Tensor:
            if positions is None:
                return torch.rand(n, *shape, generator=generator).to(images.device)
            return torch.rand(total, *shape, generator=generator)[positions].to(images.device)

        flips = draw() < self.flip
        x = torch.where(flips.view(n, 1, 1, 1), images.flip(-1), images)
        brightness = 1 + self.brightness * (2 * draw(1, 1, 1) - 1)
        contrast = 1 + self.contrast * (2 * draw(1, 1, 1) - 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * contrast + mean) * brightness
        if self.max_shift > 0:
            shift = self.max_shift * (2 * draw(2) - 1) * 2
            theta = torch.zeros(n, 2, 3, device=images.device)
            theta[:, 0, 0] = 1
            theta[:, 1, 1] = 1
            theta[:, :, 2] = shift
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return x.clamp(0, 1)
