"""The frames of one planned video of the synthetic benchmark: its draws (identity, camera, poses, donor
and seam for swaps) and each frame rendered, manipulated and captured, with its mask.

Every draw comes from :func:`seeded_rng` of (seed, pool or domain, video, purpose[, frame]), so a frame
is the same whichever process renders it."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import cv2
import numpy as np

from workbench.data.synthetic_faces import RenderedFace, capture, jpeg, render_face
from workbench.data.synthetic_forgeries import (
    ForgeryStrengths,
    add_blending_seam,
    expression_reenactment,
    gan_resynthesis,
    identity_swap,
    neural_texture,
)
from workbench.data.synthetic_identities import (
    Camera,
    Identity,
    Pose,
    sample_camera,
    sample_identity,
    sample_poses,
    transplant_inner_face,
)

COMPRESSED_DATASET = "SYN-C"
SOURCE_JPEG_QUALITY = (75, 95)
COMPRESSED_JPEG_QUALITY = (25, 40)
COMPRESSED_BLUR_SIGMA = (0.5, 0.9)  # pixels at 64 px


@dataclass(frozen=True)
class VideoSpec:
    """One video to render: whose frames (pool, identity_index), which manipulation, where it goes."""

    dataset: str
    domain: str
    video: str
    split: str
    label: int
    pool: str  # identity pool the frames come from ("SYN" or "SYN-C")
    identity_index: int
    manipulation: str | None = None
    source_video: str | None = None
    fake_index: int = 0  # index among the fakes of its domain, keys the manipulation's random draws


def _key(part: str | int) -> int:
    return zlib.crc32(part.encode()) if isinstance(part, str) else int(part)


def seeded_rng(seed: int, *parts: str | int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([_key(seed), *(_key(p) for p in parts)]))


@dataclass(frozen=True)
class VideoDraws:
    """The per-video draws every frame of a video shares."""

    spec: VideoSpec
    identity: Identity
    poses: list[Pose]
    camera: Camera
    degrade_blur: float  # extra distribution blur (compressed regime), 0 for none
    donor: Identity | None
    donor_camera: Camera | None
    seam: float


def prepare_video(spec: VideoSpec, n_frames: int, *, seed: int, strengths: ForgeryStrengths) -> VideoDraws:
    """Draw a video's identity, poses, camera and manipulation parameters (for :func:`render_frame`)."""
    pool, index = spec.pool, spec.identity_index
    compressed = pool == COMPRESSED_DATASET
    identity = sample_identity(seeded_rng(seed, pool, index, "identity"))
    camera = sample_camera(
        seeded_rng(seed, pool, index, "camera"), COMPRESSED_JPEG_QUALITY if compressed else SOURCE_JPEG_QUALITY
    )
    degrade_blur = (
        float(seeded_rng(seed, pool, index, "degrade").uniform(*COMPRESSED_BLUR_SIGMA)) if compressed else 0.0
    )
    donor = donor_camera = None
    seam = 0.0
    if spec.manipulation is not None:
        key = (seed, spec.domain, spec.fake_index)
        if spec.manipulation in ("swap", "seamless"):
            # Donors resemble the target's skin tone about halfway, as face-swap pipelines pick similar donors.
            donor = sample_identity(seeded_rng(*key, "donor"))
            donor = replace(donor, skin=tuple(0.5 * (d + t) for d, t in zip(donor.skin, identity.skin)))
            donor_camera = (
                camera if spec.manipulation == "seamless" else sample_camera(seeded_rng(*key, "donor-camera"))
            )
        draw = seeded_rng(*key, "seam")
        seam = float(strengths.seam * draw.choice([-1.0, 1.0]) * draw.uniform(0.8, 1.2))
    return VideoDraws(
        spec=spec,
        identity=identity,
        poses=sample_poses(seeded_rng(seed, pool, index, "poses"), n_frames),
        camera=camera,
        degrade_blur=degrade_blur,
        donor=donor,
        donor_camera=donor_camera,
        seam=seam,
    )


def _manipulate(
    video: VideoDraws, frame: int, scene: RenderedFace, image: np.ndarray, seed: int, strengths: ForgeryStrengths
) -> tuple[np.ndarray, np.ndarray]:
    spec = video.spec
    size = image.shape[0]
    # One generator per video, re-created for every frame: manipulation parameters stay fixed within a video.
    rng = seeded_rng(seed, spec.domain, spec.fake_index, "forgery")
    kind = spec.manipulation
    if kind in ("swap", "seamless"):
        donor_scene = render_face(transplant_inner_face(video.identity, video.donor), video.poses[frame], size)
        donor = capture(
            donor_scene.image, video.donor_camera, seeded_rng(seed, spec.domain, spec.fake_index, "donor-noise", frame)
        )
        seamless = kind == "seamless"
        fake, mask = identity_swap(
            image,
            donor,
            scene.inner_face,
            rng,
            edge_sigma=strengths.seamless_edge_sigma if seamless else strengths.swap_edge_sigma,
            colour_shift=strengths.swap_colour_shift,
            colour_match=seamless,
        )
    elif kind == "reenact":
        fake, mask = expression_reenactment(
            image, scene, rng, displacement=strengths.reenact_displacement, blur=strengths.reenact_blur
        )
    elif kind == "gan":
        fake, mask = gan_resynthesis(
            image, scene, rng, checkerboard=strengths.gan_checkerboard, factor=strengths.gan_factor
        )
    elif kind == "neural_texture":
        fake, mask = neural_texture(image, scene, rng, amplitude=strengths.nt_texture, period=strengths.nt_period)
    else:
        raise ValueError(f"video {spec.video!r}: unknown manipulation {kind!r}")
    return add_blending_seam(fake, mask, video.seam), mask


def render_frame(
    video: VideoDraws, frame: int, *, seed: int, size: int, strengths: ForgeryStrengths, manipulate: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Final uint8 BGR frame and, for a manipulated frame, its float mask of changed pixels.

    ``manipulate=False`` renders the untouched source frame of a fake (same identity, pose and noise).
    """
    spec = video.spec
    scene = render_face(video.identity, video.poses[frame], size)
    image = capture(scene.image, video.camera, seeded_rng(seed, spec.pool, spec.identity_index, "noise", frame))
    mask = None
    if manipulate and spec.manipulation is not None:
        image, mask = _manipulate(video, frame, scene, image, seed, strengths)
    if video.degrade_blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), video.degrade_blur * size / 64)
    return jpeg(image, video.camera.jpeg_quality), mask
