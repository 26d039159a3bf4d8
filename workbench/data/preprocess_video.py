"""One video's face crops: sample its frames, crop the largest face (and the mask frames with the same
boxes), stage the crops and move them into place, then write the video's index file (the layout is in
:mod:`workbench.data.preprocess`). Also the settings and result types the preprocessing shares."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np
import pandas as pd

from workbench.data.face_cropper import FaceCrop, FaceCropper
from workbench.data.faces import Box, FaceDetector, square_crop
from workbench.data.video import VIDEO_EXTENSIONS, read_frames_at, sample_video

INDEX_COLUMNS: tuple[str, ...] = ("video", "frame", "status", "path", "mask_path", "box_x", "box_y", "box_w", "box_h")
STAGING_DIR = "incomplete"
OUTPUT_TREES: tuple[str, ...] = ("masks", "frames")  # moved into place in this order: frames/<rel> comes last


class PreprocessError(RuntimeError):
    """Preprocessing cannot start or a video cannot be processed; the message says which and why."""


@dataclass(frozen=True)
class PreprocessConfig:
    """What decides the crops; a resumed run must use the same values (``masks``: the resolved folder)."""

    frames: int = 32
    size: int = 256
    margin: float = 1.3
    detector: str = "haar"
    masks: str | None = None

    def check(self) -> None:
        if self.frames < 1:
            raise ValueError(f"frames must be at least 1, got {self.frames}")
        if self.size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {self.size}")
        if self.margin < 1.0:
            raise ValueError(f"margin must be at least 1.0 (the face box itself), got {self.margin}")


@dataclass
class VideoResult:
    """What happened to one video: frames sampled, crops written, without a face, undecodable; or the error."""

    video: str
    sampled: int = 0
    written: int = 0
    no_face: int = 0
    unreadable: int = 0
    error: str | None = None


def write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise PreprocessError(f"cannot write {str(path)!r}")


def write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    df.to_csv(temporary, index=False)
    os.replace(temporary, path)


def find_mask_video(masks_dir: Path, rel: Path) -> Path | None:
    """The mask video with the same relative path as a video (any video extension, in any case), if any.

    Several candidates (``clip.avi`` and ``clip.mp4``) are an error naming them.
    """
    folder = (masks_dir / rel).parent
    name = rel.with_suffix("").name
    candidates = sorted(
        path
        for path in (folder.iterdir() if folder.is_dir() else ())
        if path.stem == name and path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()
    )
    if len(candidates) > 1:
        raise PreprocessError(f"several mask videos for {rel}: {', '.join(str(path) for path in candidates)}")
    return candidates[0] if candidates else None


def index_path(out_dir: Path, rel: Path) -> Path:
    """The per-video index file, whose presence marks the video as done."""
    return out_dir / "index" / rel.with_suffix(".csv")


def staging_dir(out_dir: Path, rel: Path) -> Path:
    """Where a video's ``frames``/``masks`` crops are written until it is done: one flat folder per video."""
    return out_dir / STAGING_DIR / quote(rel.with_suffix("").as_posix(), safe="")


def discard_output(out_dir: Path, rel: Path) -> None:
    """Delete a video's index (which marks it done) and its crops, staged and moved into place."""
    index_path(out_dir, rel).unlink(missing_ok=True)
    for folder in (staging_dir(out_dir, rel), *(out_dir / tree / rel.with_suffix("") for tree in OUTPUT_TREES)):
        if folder.exists():
            shutil.rmtree(folder)


def publish(out_dir: Path, rel: Path) -> None:
    """Move a finished video's staged crops to ``masks/<rel>`` and then ``frames/<rel>``."""
    staging = staging_dir(out_dir, rel)
    for tree in OUTPUT_TREES:
        if (staging / tree).is_dir():
            final = out_dir / tree / rel.with_suffix("")
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / tree, final)
    if staging.exists():
        staging.rmdir()


def _check_mask_sizes(
    mask_video: Path, masks: dict[int, np.ndarray], video: Path, frame_sizes: dict[int, tuple[int, int]]
) -> None:
    """Refuse mask frames whose size differs from their video frame's: the face boxes would not fit them."""
    for index, mask in masks.items():
        if mask.shape[:2] != frame_sizes[index]:
            (mask_h, mask_w), (frame_h, frame_w) = mask.shape[:2], frame_sizes[index]
            raise PreprocessError(
                f"mask video {str(mask_video)!r} is {mask_w}x{mask_h} but video {str(video)!r} is {frame_w}x{frame_h} "
                f"(frame {index}); masks must have their video's size for the face boxes to fit"
            )


def _mask_crop(mask: np.ndarray, box: Box, config: PreprocessConfig) -> np.ndarray:
    """The grey-level mask cut with a face box (nearest-neighbour resize: mask values stay as they are)."""
    mask = cv2.cvtColor(mask, cv2.COLOR_BGR2GRAY) if mask.ndim == 3 else mask
    return square_crop(mask, box, config.margin, config.size, cv2.INTER_NEAREST)


def process_video(
    videos_dir: Path,
    rel: Path,
    out_dir: Path,
    config: PreprocessConfig,
    detector: FaceDetector,
    masks_dir: Path | None = None,
) -> VideoResult:
    """Crop the faces of one video, move the crops into place and, last, write its index file.

    Errors propagate, and leave none of the video's crops behind.
    """
    discard_output(out_dir, rel)
    try:
        rows = _crop_video(videos_dir, rel, out_dir, config, detector, masks_dir)
        publish(out_dir, rel)
        write_csv_atomic(pd.DataFrame(rows, columns=list(INDEX_COLUMNS)), index_path(out_dir, rel))
    except BaseException:
        discard_output(out_dir, rel)
        raise
    statuses = [row["status"] for row in rows]
    return VideoResult(
        rel.with_suffix("").as_posix(),
        sampled=statuses.count("ok") + statuses.count("no_face"),
        written=statuses.count("ok"),
        no_face=statuses.count("no_face"),
        unreadable=statuses.count("unreadable"),
    )


def _crop_video(
    videos_dir: Path,
    rel: Path,
    out_dir: Path,
    config: PreprocessConfig,
    detector: FaceDetector,
    masks_dir: Path | None,
) -> list[dict[str, object]]:
    """Write one video's crops to its staging folder; return its index rows, in frame order."""
    video = rel.with_suffix("").as_posix()
    staging = staging_dir(out_dir, rel)
    frame_sizes: dict[int, tuple[int, int]] = {}
    cropper = FaceCropper(detector, config.margin, config.size)

    def crop_face(index: int, frame: np.ndarray) -> FaceCrop | None:
        frame_sizes[index] = frame.shape[:2]
        return cropper.largest(frame)

    sampled = sample_video(videos_dir / rel, config.frames, crop_face)
    mask_video = find_mask_video(masks_dir, rel) if masks_dir is not None else None
    with_face = [index for index, crop in sampled.frames.items() if crop is not None]
    mask_frames = read_frames_at(mask_video, with_face) if mask_video else {}
    if mask_video:
        _check_mask_sizes(mask_video, mask_frames, videos_dir / rel, frame_sizes)

    rows: list[dict[str, object]] = [{"video": video, "frame": i, "status": "unreadable"} for i in sampled.unreadable]
    for index, crop in sampled.frames.items():
        if crop is None:
            rows.append({"video": video, "frame": index, "status": "no_face"})
            continue
        box, image = crop.box, crop.image
        name = f"{index:04d}.png"
        write_png(staging / "frames" / name, image)
        mask_path = None
        if index in mask_frames:
            write_png(staging / "masks" / name, _mask_crop(mask_frames[index], box, config))
            mask_path = (Path("masks") / video / name).as_posix()
        rows.append(
            {
                "video": video,
                "frame": index,
                "status": "ok",
                "path": (Path("frames") / video / name).as_posix(),
                "mask_path": mask_path,
                "box_x": box.x,
                "box_y": box.y,
                "box_w": box.w,
                "box_h": box.h,
            }
        )
    return sorted(rows, key=lambda row: row["frame"])
