"""Procedural face renderer and camera model for the synthetic forgery benchmark.

A face is drawn from an :class:`~workbench.data.synthetic_identities.Identity` (drawn once per video) and a
:class:`~workbench.data.synthetic_identities.Pose` straight at the target size with
anti-aliased OpenCV primitives, then "captured" (optics blur + sensor noise) and JPEG-compressed.
Images are float32 BGR in [0, 1] until written, so OpenCV reads and writes them without conversion.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from workbench.data.synthetic_identities import Camera, Identity, Pose

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_SCALE = float(1 << _SHIFT)


@dataclass(frozen=True)
class RenderedFace:
    """A clean render with the regions that manipulations need."""

    image: np.ndarray  # float32 HxWx3 BGR in [0, 1]
    face: np.ndarray  # float32 HxW alpha of the facial skin polygon (head without hair and ears)
    inner_face: np.ndarray  # float32 HxW alpha of the inner face (brows, eyes, nose, mouth)
    local_u: np.ndarray  # float32 HxW per-pixel face coordinates (units of the head half-axes)
    local_v: np.ndarray
    eyes: tuple[tuple[float, float], tuple[float, float]]  # pixel centres
    mouth: tuple[float, float]
    eye_radius: float  # pixels
    mouth_radius: float


class _Canvas:
    """Anti-aliased alpha masks at the target size; head geometry maps face coordinates to pixels."""

    def __init__(self, size: int, centre: tuple[float, float], axes: tuple[float, float], roll: float):
        self.size = size
        self.cx, self.cy = centre
        self.a, self.b = axes
        self.cos, self.sin = float(np.cos(roll)), float(np.sin(roll))
        self.roll_deg = float(np.degrees(roll))
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
        dx, dy = xs - self.cx, ys - self.cy
        self.u = (dx * self.cos + dy * self.sin) / self.a
        self.v = (-dx * self.sin + dy * self.cos) / self.b

    def px(self, u: np.ndarray | float, v: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Face coordinates (u right, v down, in head half-axes) → pixel x, y."""
        x = self.cx + self.a * np.asarray(u) * self.cos - self.b * np.asarray(v) * self.sin
        y = self.cy + self.a * np.asarray(u) * self.sin + self.b * np.asarray(v) * self.cos
        return x, y

    def _blank(self) -> np.ndarray:
        return np.zeros((self.size, self.size), np.uint8)

    def polygon(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        x, y = self.px(u, v)
        pts = np.round(np.stack([x, y], axis=1) * _SCALE).astype(np.int32)
        canvas = self._blank()
        cv2.fillPoly(canvas, [pts], 255, cv2.LINE_AA, _SHIFT)
        return canvas.astype(np.float32) / 255.0

    def ellipse(
        self,
        u: float,
        v: float,
        half_u: float,
        half_v: float,
        *,
        start: float = 0,
        end: float = 360,
        thickness: int = -1,
    ) -> np.ndarray:
        x, y = self.px(u, v)
        centre = (int(round(float(x) * _SCALE)), int(round(float(y) * _SCALE)))
        axes = (max(1, int(round(half_u * self.a * _SCALE))), max(1, int(round(half_v * self.b * _SCALE))))
        canvas = self._blank()
        cv2.ellipse(canvas, centre, axes, self.roll_deg, start, end, 255, thickness, cv2.LINE_AA, _SHIFT)
        return canvas.astype(np.float32) / 255.0


def _paint(image: np.ndarray, alpha: np.ndarray, colour: tuple[float, float, float] | np.ndarray) -> None:
    """Alpha-composite a flat colour in place, touching only the rows and columns the alpha covers."""
    rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
    if len(rows) == 0:
        return
    box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    patch = image[box]
    patch += alpha[box][..., None] * (np.asarray(colour, np.float32) - patch)


@lru_cache(maxsize=16)
def _background(identity: Identity, size: int) -> np.ndarray:
    rng = np.random.default_rng(identity.background_seed)
    cells = int(rng.integers(2, 6))
    weights = cv2.resize(rng.random((cells, cells)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    weights = np.clip(weights, 0, 1)[..., None]
    first, second = (np.asarray(c, np.float32) for c in identity.background)
    image = first * weights + second * (1 - weights)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), rng.uniform(0.6, 2.0))
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    gradient = rng.uniform(-0.12, 0.12) * ramp[None, :] + rng.uniform(-0.12, 0.12) * ramp[:, None]
    background = (image * (1 + gradient[..., None]) + 0.04 * grain[..., None]).astype(np.float32)
    background.flags.writeable = False
    return background


@lru_cache(maxsize=16)
def _skin_texture(identity: Identity, size: int) -> np.ndarray:
    rng = np.random.default_rng(identity.skin_texture_seed)
    noise = rng.normal(0, 1, (size, size)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), max(0.6, size / 64))
    texture.flags.writeable = False
    return texture


def render_face(identity: Identity, pose: Pose, size: int) -> RenderedFace:
    """Draw one clean frame of ``identity`` in ``pose`` at ``size`` × ``size`` pixels."""
    centre = ((identity.centre_x + pose.shift_x) * size, (identity.centre_y + pose.shift_y) * size)
    axes = (identity.face_width * size, identity.face_height * size)
    cv_ = _Canvas(size, centre, axes, pose.roll)
    image = _background(identity, size).copy()  # cached per identity: constant over a video

    clothing = np.zeros((size, size), np.uint8)
    cv2.ellipse(
        clothing,
        (int(centre[0] * _SCALE), int(size * 1.12 * _SCALE)),
        (int(size * 0.42 * _SCALE), int(size * 0.28 * _SCALE)),
        0,
        0,
        360,
        255,
        -1,
        cv2.LINE_AA,
        _SHIFT,
    )
    _paint(image, clothing.astype(np.float32) / 255.0, identity.clothing)

    hair = identity.hair
    head = np.zeros((size, size), np.float32)
    if identity.long_hair:
        long_hair = cv_.ellipse(0, 0.35, identity.hair_volume * 1.05, 1.2)
        _paint(image, long_hair, hair)
        head = np.maximum(head, long_hair)
    skin = np.asarray(identity.skin, np.float32)
    neck = cv_.polygon(np.array([-0.42, 0.42, 0.48, -0.48]), np.array([0.5, 0.5, 1.9, 1.9]))
    _paint(image, neck, skin * 0.82)
    hair_back = cv_.ellipse(0, -0.18, identity.hair_volume, identity.hair_volume * 0.92)
    _paint(image, hair_back, hair)
    ears = np.maximum(cv_.ellipse(-0.98, -0.02, 0.14, 0.2), cv_.ellipse(0.98, -0.02, 0.14, 0.2))
    _paint(image, ears, skin * 0.9)
    head = np.maximum.reduce([head, neck, hair_back, ears])

    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    lower = np.clip(np.sin(t), 0, None)
    face = cv_.polygon(np.cos(t) * (1 - identity.jaw * lower**2), np.sin(t) * (1 + 0.05 * lower))
    _paint(image, face, skin)
    image += 0.025 * face[..., None] * _skin_texture(identity, size)[..., None]
    head = np.maximum(head, face)

    # Fringe: hair over the top of the face, with a wavy edge.
    edge = identity.hairline + identity.hair_wave * np.sin(7 * cv_.u + identity.background_seed % 7)
    fringe = face * np.clip((edge - cv_.v) / 0.06 + 0.5, 0, 1)
    _paint(image, fringe, hair)

    # Inner-face features; yaw shifts them sideways (nose more than eyes), pitch vertically.
    du, dv = 0.35 * pose.yaw, 0.25 * pose.pitch
    eye_half_h = 0.075 * identity.eye_open * pose.blink
    eyes = []
    for side in (-1, 1):
        eu, ev = side * identity.eye_spacing + du, identity.eye_height + dv
        width = identity.eye_width * (1 + 0.35 * side * pose.yaw)
        brow = cv_.ellipse(
            eu,
            ev - identity.brow_gap * 0.35,
            width * 1.25,
            identity.brow_gap,
            start=205,
            end=335,
            thickness=max(1, int(round(identity.brow_thickness * size / 64))),
        )
        _paint(image, brow * 0.85, np.asarray(hair) * 0.85)
        sclera = cv_.ellipse(eu, ev, width, eye_half_h)
        _paint(image, sclera, (0.86, 0.9, 0.93))
        iris = cv_.ellipse(eu + 0.4 * pose.yaw * width, ev, 0.5 * width, 0.8 * 0.075) * sclera
        _paint(image, iris, identity.iris)
        pupil = cv_.ellipse(eu + 0.4 * pose.yaw * width, ev, 0.22 * width, 0.36 * 0.075) * sclera
        _paint(image, pupil, (0.03, 0.03, 0.03))
        lid = cv_.ellipse(eu, ev, width, eye_half_h, start=180, end=360, thickness=1)
        _paint(image, lid * 0.6, skin * 0.35)
        eyes.append(cv_.px(eu, ev))

    nose_u = 1.4 * du
    nose_tip = identity.eye_height + 0.12 + identity.nose_length + dv
    bridge = cv_.polygon(
        np.array([nose_u - 0.03, nose_u + 0.03, nose_u + 0.05, nose_u - 0.05]),
        np.array([identity.eye_height + dv + 0.08, identity.eye_height + dv + 0.08, nose_tip, nose_tip]),
    )
    _paint(image, bridge * 0.25, skin * (0.75 if np.cos(identity.light_angle) > 0 else 1.15))
    for side in (-1, 1):
        nostril = cv_.ellipse(nose_u + side * identity.nose_width, nose_tip, 0.055, 0.03)
        _paint(image, nostril * 0.7, skin * 0.4)

    mu, mv = 1.2 * du, identity.mouth_height + dv
    x = np.linspace(-1, 1, 13)
    bulge = 1 - x**2
    corners = -0.06 * pose.smile * x**2
    lip_u = mu + identity.mouth_width * x
    opening = 0.1 * pose.mouth_open
    upper = mv + corners - identity.lip_thickness * bulge - 0.3 * opening * bulge
    lower = mv + corners + (identity.lip_thickness * 1.2 + opening) * bulge
    lips = cv_.polygon(np.concatenate([lip_u, lip_u[::-1]]), np.concatenate([upper, lower[::-1]]))
    _paint(image, lips, identity.lip)
    if opening > 0.015:
        gap_top = mv + corners - 0.3 * opening * bulge
        gap_bottom = mv + corners + opening * bulge
        inner = cv_.polygon(
            np.concatenate([lip_u * 0.85 + mu * 0.15, (lip_u * 0.85 + mu * 0.15)[::-1]]),
            np.concatenate([gap_top, gap_bottom[::-1]]),
        )
        _paint(image, inner, (0.12, 0.1, 0.25))
    else:
        seam = cv_.polygon(
            np.concatenate([lip_u, lip_u[::-1]]), np.concatenate([mv + corners - 0.01, (mv + corners + 0.01)[::-1]])
        )
        _paint(image, seam * 0.6, np.asarray(identity.lip) * 0.5)

    # Key light: Lambertian shading of the head as a half-ellipsoid, plus global gain and tint.
    angle = identity.light_angle + pose.light_jitter
    nz = np.sqrt(np.clip(1 - cv_.u**2 - cv_.v**2, 0, 1))
    lambert = np.clip(0.55 * (np.cos(angle) * cv_.u + np.sin(angle) * cv_.v) + 0.8 * nz, 0, 1)
    shade = 1 + identity.light_strength * (lambert - 0.6) * np.maximum(head, fringe)
    tint = np.array([1 - identity.colour_temperature, 1.0, 1 + identity.colour_temperature], np.float32)
    image = np.clip(image * shade[..., None] * tint * pose.gain, 0, 1).astype(np.float32)

    inner_face = cv_.ellipse(du, 0.2 + dv, 0.78, 0.72) * face
    eye_radius = identity.eye_width * axes[0] * 1.6
    mouth_radius = identity.mouth_width * axes[0] * 1.5
    return RenderedFace(
        image=image,
        face=face,
        inner_face=inner_face,
        local_u=cv_.u,
        local_v=cv_.v,
        eyes=tuple((float(ex), float(ey)) for ex, ey in eyes),
        mouth=tuple(float(c) for c in cv_.px(mu, mv)),
        eye_radius=float(eye_radius),
        mouth_radius=float(mouth_radius),
    )


def capture(image: np.ndarray, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """Optics blur then sensor noise (luminance plus weaker chroma noise)."""
    blurred = cv2.GaussianBlur(image, (0, 0), camera.blur_sigma)
    height, width = image.shape[:2]
    luminance = rng.standard_normal((height, width, 1), dtype=np.float32) * camera.noise_sigma
    chroma = rng.standard_normal((height, width, 3), dtype=np.float32) * (camera.noise_sigma * 0.4)
    return np.clip(blurred + luminance + chroma, 0, 1)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip through cv2.imencode; returns uint8 BGR."""
    ok, buffer = cv2.imencode(".jpg", to_uint8(image), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"cv2.imencode failed to JPEG-encode an image at quality {quality}")
    return cv2.imdecode(buffer, cv2.IMREAD_COLOR)
