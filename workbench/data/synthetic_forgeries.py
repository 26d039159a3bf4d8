"""Face manipulations of the synthetic benchmark, each confined to a region mask.

Every manipulation returns the forged image and the soft mask of the region it changed. All of them
share one weak, domain-invariant cue, :func:`add_blending_seam` (a thin intensity seam along the
mask border, as left by blending a generated face into a frame), while each source manipulation adds
its own stronger, domain-specific artefact (colour mismatch, warping blur, up-sampling checkerboard,
texture noise). Images are float32 BGR in [0, 1]; strengths are on that intensity scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from workbench.data.synthetic_faces import RenderedFace


@dataclass(frozen=True)
class ForgeryStrengths:
    """Artefact strengths; the defaults make source domains easy and held-out domains hard but not hopeless."""

    seam: float = 0.03  # shared cue: amplitude of the blending seam
    swap_edge_sigma: float = 0.012  # blending-mask blur, fraction of the image size
    swap_colour_shift: float = 0.15  # extra colour offset of the pasted face
    seamless_edge_sigma: float = 0.07
    reenact_displacement: float = 0.35  # fraction of the warp radius
    reenact_blur: float = 0.9  # blur sigma (pixels at 64 px) of the re-rendered region
    gan_checkerboard: float = 0.05  # amplitude of the up-sampling pattern
    gan_factor: int = 2  # down/up-sampling factor
    nt_texture: float = 0.035  # amplitude of the neural-texture pattern
    nt_period: int = 3

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _soft(mask: np.ndarray, sigma_px: float) -> np.ndarray:
    if sigma_px <= 0:
        return mask.astype(np.float32)
    return np.clip(cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma_px), 0, 1)


def _blend(base: np.ndarray, overlay: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return base + mask[..., None] * (overlay - base)


def add_blending_seam(image: np.ndarray, mask: np.ndarray, amplitude: float) -> np.ndarray:
    """Brighten (amplitude > 0) or darken a thin ring along the 0.5-contour of ``mask``.

    This is the cue every fake shares: blending a synthesised region into a frame leaves a slight
    intensity discontinuity at the border of the blend.
    """
    inside = (mask >= 0.5).astype(np.uint8)
    ring = cv2.morphologyEx(inside, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).astype(np.float32)
    ring = cv2.GaussianBlur(ring, (0, 0), 0.6) * (mask > 0)
    return np.clip(image + amplitude * ring[..., None], 0, 1).astype(np.float32)


def identity_swap(
    target: np.ndarray,
    donor: np.ndarray,
    region: np.ndarray,
    rng: np.random.Generator,
    *,
    edge_sigma: float,
    colour_shift: float,
    colour_match: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Paste the donor's inner face into the target through a blurred region mask.

    ``colour_match`` moves the donor's mean colour inside the region onto the target's (a seamless,
    high-quality swap); otherwise the donor keeps its own skin tone plus a random colour offset.
    """
    size = target.shape[0]
    mask = _soft((region >= 0.5).astype(np.float32), edge_sigma * size)
    weights = mask[..., None] / max(float(mask.sum()), 1e-6)
    if colour_match:
        donor = donor + ((target * weights).sum((0, 1)) - (donor * weights).sum((0, 1)))
    else:
        donor = donor + colour_shift * rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0, 3)
    return np.clip(_blend(target, donor, mask), 0, 1).astype(np.float32), mask


def _bump(size: int, centre: tuple[float, float], radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compactly supported bump (1 at the centre, 0 beyond ``radius``) and the offsets from the centre."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    dx, dy = xs - centre[0], ys - centre[1]
    weight = np.clip(1 - (dx**2 + dy**2) / radius**2, 0, None) ** 2
    return weight, dx / radius, dy / radius


def expression_reenactment(
    image: np.ndarray, face: RenderedFace, rng: np.random.Generator, *, displacement: float, blur: float
) -> tuple[np.ndarray, np.ndarray]:
    """Warp the mouth (open/close, widen) and eyes (open/close) locally, then soften the re-rendered region."""
    size = image.shape[0]
    flow_x = np.zeros((size, size), np.float32)
    flow_y = np.zeros((size, size), np.float32)
    mask = np.zeros((size, size), np.float32)
    regions = [(face.mouth, face.mouth_radius, rng.uniform(0.6, 1.0) * rng.choice([-1.0, 1.0]), rng.uniform(-0.5, 0.5))]
    eye_sign = rng.choice([-1.0, 1.0])
    regions += [(eye, face.eye_radius, eye_sign * rng.uniform(0.6, 1.0), 0.0) for eye in face.eyes]
    for centre, radius, vertical, horizontal in regions:
        weight, ux, uy = _bump(size, centre, radius)
        flow_x += displacement * radius * horizontal * weight * ux
        flow_y += displacement * radius * vertical * weight * uy
        mask = np.maximum(mask, np.sqrt(weight))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    warped = cv2.remap(image, xs - flow_x, ys - flow_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    softened = cv2.GaussianBlur(warped, (0, 0), blur * size / 64)
    return np.clip(_blend(image, softened, mask), 0, 1).astype(np.float32), mask


def _face_region(face: RenderedFace, size: int) -> np.ndarray:
    inner = cv2.erode((face.face >= 0.5).astype(np.uint8), np.ones((3, 3), np.uint8))
    return _soft(inner, 0.025 * size)


def _periodic_pattern(rng: np.random.Generator, period: int, size: int) -> np.ndarray:
    tile = rng.normal(0, 1, (period, period, 3)).astype(np.float32)
    tile -= tile.mean((0, 1), keepdims=True)
    tile /= np.abs(tile).max() + 1e-6
    reps = -(-size // period)
    return np.tile(tile, (reps, reps, 1))[:size, :size]


def gan_resynthesis(
    image: np.ndarray, face: RenderedFace, rng: np.random.Generator, *, checkerboard: float, factor: int
) -> tuple[np.ndarray, np.ndarray]:
    """Re-synthesise the face through a low-resolution bottleneck and a transposed-conv-like up-sampler.

    The down/up-sampling removes sensor noise and fine detail; the periodic pattern with the stride's
    period adds the spectral peaks that transposed convolutions leave.
    """
    size = image.shape[0]
    low = cv2.resize(image, (size // factor, size // factor), interpolation=cv2.INTER_AREA)
    up = cv2.resize(low, (size, size), interpolation=cv2.INTER_LINEAR)
    up = up * (1 + checkerboard * _periodic_pattern(rng, factor, size))
    mask = _face_region(face, size)
    return np.clip(_blend(image, up, mask), 0, 1).astype(np.float32), mask


def neural_texture(
    image: np.ndarray, face: RenderedFace, rng: np.random.Generator, *, amplitude: float, period: int
) -> tuple[np.ndarray, np.ndarray]:
    """Re-render the lower face (mouth region) with a structured high-frequency texture, as neural rendering leaves."""
    size = image.shape[0]
    lower = face.face * np.clip((face.local_v - 0.05) / 0.15, 0, 1)
    mask = _soft((lower >= 0.5).astype(np.float32), 0.02 * size)
    smooth = cv2.GaussianBlur(image, (0, 0), 0.7 * size / 64)
    fine = rng.normal(0, 1, (size, size, 1)).astype(np.float32)
    fine -= cv2.GaussianBlur(fine, (0, 0), 1.0)[..., None]
    texture = _periodic_pattern(rng, period, size) + 0.5 * fine
    return np.clip(_blend(image, smooth + amplitude * texture, mask), 0, 1).astype(np.float32), mask
