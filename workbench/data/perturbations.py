"""DeeperForensics-1.0's seven perturbations at their five published severity levels, applied to frames.

Each perturbation is one entry of :data:`PERTURBATIONS`: its DeeperForensics code, what its level
parameter means and the parameter of levels 1–5 (from the dataset's ``add_distortion_to_video.py``). The
operations use Pillow, OpenCV and PyAV (FFmpeg's libx264); only the grey blocks are drawn by hand. Random
perturbations (block positions, noise) draw from a generator seeded by the frame's key, the perturbation
and the level, so a frame is perturbed the same way in every run and every process. What differs from
the published video pipeline is in docs/reproduce.md (*Robustness*).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np
import torch
from PIL import Image, ImageEnhance
from torch.utils.data import Dataset

from workbench.data.images import FrameDataset

LEVELS = (1, 2, 3, 4, 5)
CLEAN = "none"  # the perturbation name of unperturbed frames in results (severity level 0)
BLOCK_WIDTH = 8  # px, DeeperForensics' block side
BLOCK_GREY = 128
BLOCK_UNIT = 256  # px of the shorter side per unit of block count


def color_saturation(image: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Scale the chroma around each pixel's luma by ``factor`` (Pillow's colour enhancer; 0 = greyscale)."""
    return np.asarray(ImageEnhance.Color(Image.fromarray(image)).enhance(factor))


def color_contrast(image: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Multiply every pixel value by ``factor`` (what DeeperForensics calls contrast; Pillow's brightness)."""
    return np.asarray(ImageEnhance.Brightness(Image.fromarray(image)).enhance(factor))


def block_count(height: int, width: int, blocks: int) -> int:
    """Grey blocks drawn on a ``height`` × ``width`` image: ``blocks`` per 256 px of the shorter side, and
    never fewer than ``blocks`` (the published count is 0 below 256 px)."""
    return max(1, min(height, width) // BLOCK_UNIT) * blocks


def block_wise(image: np.ndarray, blocks: int, rng: np.random.Generator) -> np.ndarray:
    """Paint :func:`block_count` grey (128) 8 × 8 squares at uniformly drawn positions inside the image."""
    height, width = image.shape[:2]
    if min(height, width) <= BLOCK_WIDTH:
        raise ValueError(f"block-wise distortion needs images larger than {BLOCK_WIDTH} px; got {width} x {height}")
    out = image.copy()
    for _ in range(block_count(height, width, blocks)):
        left = int(rng.integers(0, width - BLOCK_WIDTH))
        top = int(rng.integers(0, height - BLOCK_WIDTH))
        out[top : top + BLOCK_WIDTH, left : left + BLOCK_WIDTH] = BLOCK_GREY
    return out


def gaussian_noise(image: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise of ``variance`` on Y, Cb and Cr in BT.601 studio range scaled to [0, 1].

    Studio range spans 219/255 (luma) and 224/255 (chroma) of the full range OpenCV converts to, so the
    noise's standard deviation there is ``sqrt(variance)·255/219`` and ``·255/224``. Values are clipped
    to [0, 255] and truncated, as DeeperForensics does.
    """
    ycrcb = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2YCrCb)
    scale = math.sqrt(variance) * 255.0 / np.array([219.0, 224.0, 224.0], dtype=np.float32)
    ycrcb += rng.standard_normal(ycrcb.shape).astype(np.float32) * scale
    rgb = cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB) * 255.0
    return np.clip(rgb, 0, 255).astype(np.uint8)


def gaussian_blur(image: np.ndarray, kernel: int, rng: np.random.Generator) -> np.ndarray:
    """OpenCV's Gaussian blur with a ``kernel`` × ``kernel`` window and sigma ``kernel / 6``."""
    return cv2.GaussianBlur(image, (kernel, kernel), kernel / 6.0)


def jpeg_resampling(image: np.ndarray, factor: int, rng: np.random.Generator) -> np.ndarray:
    """Shrink by ``factor`` and enlarge back, both bilinear (OpenCV): DeeperForensics' "JPEG compression"
    operation, which resamples instead of running a JPEG codec."""
    height, width = image.shape[:2]
    if min(height, width) < factor:
        raise ValueError(f"cannot shrink a {width} x {height} image by a factor of {factor}")
    small = cv2.resize(image, (width // factor, height // factor), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def video_compression(image: np.ndarray, crf: int, rng: np.random.Generator) -> np.ndarray:
    """Encode the frame with libx264 at constant rate factor ``crf`` (FFmpeg's default preset, yuv420p,
    one thread) and decode it. A frame is encoded alone, so it is intra-coded."""
    height, width = image.shape[:2]
    padded = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")  # yuv420p needs even sides
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = padded.shape[1], padded.shape[0]
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"crf": str(crf), "threads": "1"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24")
    packets = [*encoder.encode(frame), *encoder.encode(None)]
    decoder = av.CodecContext.create("h264", "r")
    decoded = [out for packet in packets for out in decoder.decode(packet)] + list(decoder.decode(None))
    if len(decoded) != 1:
        raise RuntimeError(f"libx264 at crf {crf} returned {len(decoded)} frames for one")
    return decoded[0].to_ndarray(format="rgb24")[:height, :width]


Operation = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Perturbation:
    """One DeeperForensics-1.0 perturbation: ``parameters[level - 1]`` is level ``level``'s parameter."""

    name: str
    code: str
    title: str
    parameter: str
    parameters: tuple[float, ...]
    operation: Operation


PERTURBATIONS: dict[str, Perturbation] = {
    p.name: p
    for p in (
        Perturbation(
            "color_saturation", "CS", "Colour saturation", "chroma factor", (0.4, 0.3, 0.2, 0.1, 0.0), color_saturation
        ),
        Perturbation(
            "color_contrast",
            "CC",
            "Colour contrast",
            "pixel-value factor",
            (0.85, 0.725, 0.6, 0.475, 0.35),
            color_contrast,
        ),
        Perturbation(
            "block_wise", "BW", "Block-wise distortion", "8-px grey blocks per 256 px", (16, 32, 48, 64, 80), block_wise
        ),
        Perturbation(
            "gaussian_noise",
            "GNC",
            "Gaussian noise",
            "variance (YCbCr in [0, 1])",
            (0.001, 0.002, 0.005, 0.01, 0.05),
            gaussian_noise,
        ),
        Perturbation(
            "gaussian_blur",
            "GB",
            "Gaussian blur",
            "kernel size (px), sigma = size / 6",
            (7, 9, 13, 17, 21),
            gaussian_blur,
        ),
        Perturbation("jpeg", "JPEG", "JPEG (down/up-sampling)", "resampling factor", (2, 3, 4, 5, 6), jpeg_resampling),
        Perturbation(
            "video_compression", "VC", "Video compression (H.264)", "x264 CRF", (30, 32, 35, 38, 40), video_compression
        ),
    )
}


def parse_perturbations(names: Sequence[str]) -> list[str]:
    """Perturbation names in :data:`PERTURBATIONS` order; ``all`` stands for every one. Raises naming an
    unknown name."""
    unknown = [name for name in names if name != "all" and name not in PERTURBATIONS]
    if unknown:
        raise ValueError(f"unknown perturbation {unknown[0]!r}; choose from all, {', '.join(PERTURBATIONS)}")
    chosen = set(PERTURBATIONS) if "all" in names else set(names)
    return [name for name in PERTURBATIONS if name in chosen]


def check_levels(levels: Sequence[int]) -> list[int]:
    """The distinct ``levels`` in increasing order; raises naming one outside 1–5."""
    wrong = [level for level in levels if level not in LEVELS]
    if wrong or not levels:
        raise ValueError(f"severity level {wrong[0] if wrong else 'list'!r} is not one of {list(LEVELS)}")
    return sorted(set(levels))


def frame_generator(key: str, name: str, level: int) -> np.random.Generator:
    """A generator seeded by the frame's ``key`` (e.g. its manifest path), the perturbation and the level
    (SHA-256, so the seed is the same in every process)."""
    digest = hashlib.sha256(f"{key}\0{name}\0{level}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def perturb(image: np.ndarray, name: str, level: int, key: str) -> np.ndarray:
    """``image`` (uint8 RGB, height × width × 3) under perturbation ``name`` at ``level``; the same
    ``key`` gives the same result."""
    perturbation = PERTURBATIONS[name]
    if level not in LEVELS:
        raise ValueError(f"severity level {level!r} is not one of {list(LEVELS)}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"perturbations take uint8 RGB images (H, W, 3); got {image.dtype} {image.shape}")
    parameter = perturbation.parameters[level - 1]
    return perturbation.operation(image, parameter, frame_generator(key, name, level))


class PerturbedFrames(Dataset):
    """The frames of a :class:`FrameDataset`, each perturbed as the model receives it (after resizing to
    the dataset's image size, before normalisation), keyed by its manifest path."""

    def __init__(self, frames: FrameDataset, name: str, level: int) -> None:
        if name not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {name!r}; choose from {', '.join(PERTURBATIONS)}")
        check_levels([level])
        self.frames, self.name, self.level = frames, name, level
        self.manifest = frames.manifest

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, label, row = self.frames[index]
        perturbed = perturb(image.permute(1, 2, 0).numpy(), self.name, self.level, str(self.manifest.at[index, "path"]))
        return torch.from_numpy(np.ascontiguousarray(perturbed.transpose(2, 0, 1))), label, row
