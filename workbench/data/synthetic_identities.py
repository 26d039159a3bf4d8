"""What a synthetic face video is made of, drawn from seeded generators: the :class:`Identity` (once per
video), a :class:`Pose` per frame (small jitter of head pose, expression and lighting) and the
:class:`Camera` that captures it; :mod:`workbench.data.synthetic_faces` draws them."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# BGR palettes (float, [0, 1]); sampled with jitter so identities vary continuously.
_SKIN_TONES = np.array(
    [
        [0.74, 0.82, 0.95],
        [0.62, 0.74, 0.89],
        [0.50, 0.63, 0.80],
        [0.36, 0.48, 0.66],
        [0.24, 0.33, 0.47],
        [0.56, 0.71, 0.86],
    ]
)

_HAIR_COLOURS = np.array(
    [
        [0.08, 0.08, 0.09],
        [0.12, 0.20, 0.30],
        [0.20, 0.35, 0.55],
        [0.45, 0.65, 0.85],
        [0.55, 0.55, 0.57],
        [0.10, 0.15, 0.45],
    ]
)

_IRIS_COLOURS = np.array(
    [[0.10, 0.20, 0.35], [0.60, 0.45, 0.30], [0.35, 0.50, 0.30], [0.45, 0.45, 0.45], [0.08, 0.12, 0.20]]
)


@dataclass(frozen=True)
class Identity:
    """Everything about a person and their recording set-up that stays fixed within a video."""

    face_width: float  # half-axes of the head as fractions of the image size
    face_height: float
    jaw: float  # 0 = oval, larger = narrower chin
    centre_x: float  # head centre as fractions of the image size
    centre_y: float
    skin: tuple[float, float, float]
    lip: tuple[float, float, float]
    hair: tuple[float, float, float]
    hair_volume: float
    hairline: float  # local v-coordinate of the fringe edge (negative = above the centre)
    hair_wave: float
    long_hair: bool
    eye_spacing: float  # local u of each eye centre
    eye_height: float  # local v of the eyes
    eye_width: float
    eye_open: float
    iris: tuple[float, float, float]
    brow_gap: float
    brow_thickness: float
    nose_length: float
    nose_width: float
    mouth_height: float
    mouth_width: float
    lip_thickness: float
    clothing: tuple[float, float, float]
    background: tuple[tuple[float, float, float], tuple[float, float, float]]
    background_seed: int
    skin_texture_seed: int
    light_angle: float  # radians, direction of the key light in the image plane
    light_strength: float
    colour_temperature: float


@dataclass(frozen=True)
class Pose:
    """Per-frame head pose, expression and lighting jitter."""

    yaw: float
    pitch: float
    roll: float  # radians
    shift_x: float  # fractions of the image size
    shift_y: float
    mouth_open: float
    smile: float
    blink: float  # multiplies eye openness
    light_jitter: float
    gain: float


@dataclass(frozen=True)
class Camera:
    """Capture and distribution settings of one video."""

    noise_sigma: float
    blur_sigma: float
    jpeg_quality: int


def _pick(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> tuple[float, float, float]:
    colour = palette[rng.integers(len(palette))] * (1.0 + rng.uniform(-jitter, jitter, 3))
    return tuple(float(c) for c in np.clip(colour, 0.0, 1.0))


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw a random identity (face geometry, colours, hair, background, lighting)."""
    skin = _pick(rng, _SKIN_TONES, 0.08)
    lip = tuple(
        float(c) for c in np.clip(np.array(skin) * np.array([0.70, 0.62, 1.02]) + rng.uniform(-0.04, 0.04, 3), 0, 1)
    )
    background = tuple(tuple(float(c) for c in rng.uniform(0.15, 0.9, 3)) for _ in range(2))
    return Identity(
        face_width=rng.uniform(0.20, 0.25),
        face_height=rng.uniform(0.27, 0.32),
        jaw=rng.uniform(0.05, 0.35),
        centre_x=rng.uniform(0.46, 0.54),
        centre_y=rng.uniform(0.47, 0.53),
        skin=skin,
        lip=lip,
        hair=_pick(rng, _HAIR_COLOURS, 0.15),
        hair_volume=rng.uniform(1.04, 1.22),
        hairline=rng.uniform(-0.72, -0.48),
        hair_wave=rng.uniform(0.0, 0.08),
        long_hair=bool(rng.random() < 0.45),
        eye_spacing=rng.uniform(0.34, 0.43),
        eye_height=rng.uniform(-0.16, -0.06),
        eye_width=rng.uniform(0.14, 0.19),
        eye_open=rng.uniform(0.75, 1.1),
        iris=_pick(rng, _IRIS_COLOURS, 0.15),
        brow_gap=rng.uniform(0.13, 0.2),
        brow_thickness=rng.uniform(0.8, 1.4),
        nose_length=rng.uniform(0.22, 0.32),
        nose_width=rng.uniform(0.08, 0.13),
        mouth_height=rng.uniform(0.46, 0.56),
        mouth_width=rng.uniform(0.24, 0.34),
        lip_thickness=rng.uniform(0.04, 0.07),
        clothing=tuple(float(c) for c in rng.uniform(0.05, 0.85, 3)),
        background=background,
        background_seed=int(rng.integers(2**31)),
        skin_texture_seed=int(rng.integers(2**31)),
        light_angle=rng.uniform(-np.pi, np.pi),
        light_strength=rng.uniform(0.15, 0.4),
        colour_temperature=rng.uniform(-0.06, 0.06),
    )


def transplant_inner_face(target: Identity, donor: Identity) -> Identity:
    """The target's head, hair and scene with the donor's inner face and skin (what a face swap pastes)."""
    inner = (
        "skin",
        "lip",
        "eye_spacing",
        "eye_height",
        "eye_width",
        "eye_open",
        "iris",
        "brow_gap",
        "brow_thickness",
        "nose_length",
        "nose_width",
        "mouth_height",
        "mouth_width",
        "lip_thickness",
    )
    return replace(target, **{name: getattr(donor, name) for name in inner})


def sample_poses(rng: np.random.Generator, n_frames: int) -> list[Pose]:
    """Smooth per-frame pose/expression/lighting trajectories (small jitter, occasional blink)."""
    phase = rng.uniform(0, 2 * np.pi, 10)
    speed = rng.uniform(0.3, 0.9, 10)
    base = dict(
        yaw=rng.uniform(-0.25, 0.25),
        pitch=rng.uniform(-0.1, 0.1),
        roll=rng.uniform(-0.12, 0.12),
        mouth_open=rng.uniform(0.0, 0.4),
        smile=rng.uniform(-0.2, 0.6),
    )
    poses = []
    for t in range(n_frames):
        wave = np.sin(phase + speed * t)
        poses.append(
            Pose(
                yaw=float(base["yaw"] + 0.08 * wave[0]),
                pitch=float(base["pitch"] + 0.05 * wave[1]),
                roll=float(base["roll"] + 0.04 * wave[2]),
                shift_x=float(0.012 * wave[3]),
                shift_y=float(0.010 * wave[4]),
                mouth_open=float(np.clip(base["mouth_open"] + 0.25 * wave[5], 0.0, 1.0)),
                smile=float(np.clip(base["smile"] + 0.2 * wave[6], -0.3, 1.0)),
                blink=float(0.25 if rng.random() < 0.1 else 1.0),
                light_jitter=float(0.15 * wave[7]),
                gain=float(1.0 + 0.05 * wave[8]),
            )
        )
    return poses


def sample_camera(rng: np.random.Generator, jpeg_quality: tuple[int, int] = (75, 95)) -> Camera:
    """Sensor noise, optics blur and JPEG quality of one recording."""
    return Camera(
        noise_sigma=float(rng.uniform(0.004, 0.014)),
        blur_sigma=float(rng.uniform(0.3, 0.6)),
        jpeg_quality=int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1)),
    )
