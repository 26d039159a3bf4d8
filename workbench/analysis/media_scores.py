"""Score images and videos with a detector: a fake probability per frame, a score per file.

Every sampled frame is cut by the :class:`~workbench.data.face_cropper.FaceCropper` ``preprocess`` uses.
With several faces in a frame each is scored and the frame keeps the most suspicious one (the highest
fake probability: one manipulated face makes the frame fake). A frame without a face gets no score and
is listed with status ``no_face``; a file's score is the mean over its scored frames (none: no score,
status ``no_face``). A file that cannot be read is listed with its error; the others are still scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.analysis.detector import Detector
from workbench.data.face_cropper import FaceCrop, FaceCropper
from workbench.data.media import MediaError, MediaFile, media_frames
from workbench.data.video import VideoError

FRAME_COLUMNS: tuple[str, ...] = (
    "media",
    "kind",
    "frame",
    "status",
    "faces",
    "prob_fake",
    "box_x",
    "box_y",
    "box_w",
    "box_h",
)
MEDIA_COLUMNS: tuple[str, ...] = (
    "media",
    "kind",
    "status",
    "frames",
    "frames_scored",
    "frames_without_face",
    "score",
    "error",
)


@dataclass
class MediaScores:
    """``frames``: one row per sampled frame (:data:`FRAME_COLUMNS`); ``media``: one row per file
    (:data:`MEDIA_COLUMNS`); ``crops``: the scored crop (BGR) of each frame with a face, by (media, frame)."""

    frames: pd.DataFrame
    media: pd.DataFrame
    crops: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)

    def most_suspicious(self, count: int) -> pd.DataFrame:
        """The ``count`` scored frames with the highest fake probability, highest first."""
        scored = self.frames[self.frames["status"] == "ok"]
        return scored.sort_values("prob_fake", ascending=False, kind="stable").head(count).reset_index(drop=True)

    @property
    def failed(self) -> pd.DataFrame:
        """The files that could not be read, with their errors."""
        return self.media[self.media["status"] == "error"][["media", "error"]].reset_index(drop=True)


def _frame_row(media: MediaFile, index: int, faces: Sequence[FaceCrop], probs: np.ndarray) -> dict[str, object]:
    row: dict[str, object] = {"media": str(media.path), "kind": media.kind, "frame": index, "faces": len(faces)}
    if not faces:
        return {**row, "status": "no_face", "prob_fake": np.nan}
    best = int(np.argmax(probs))
    box = faces[best].box
    return {
        **row,
        "status": "ok",
        "prob_fake": float(probs[best]),
        "box_x": box.x,
        "box_y": box.y,
        "box_w": box.w,
        "box_h": box.h,
    }


def _media_row(media: MediaFile, rows: list[dict[str, object]], error: str | None) -> dict[str, object]:
    scores = [row["prob_fake"] for row in rows if row["status"] == "ok"]
    if error is not None:
        status = "error"
    else:
        status = "ok" if scores else "no_face"
    return {
        "media": str(media.path),
        "kind": media.kind,
        "status": status,
        "frames": len(rows),
        "frames_scored": len(scores),
        "frames_without_face": len(rows) - len(scores),
        "score": float(np.mean(scores)) if scores else np.nan,
        "error": error,
    }


def score_media(
    detector: Detector,
    cropper: FaceCropper,
    files: Sequence[MediaFile],
    frames: int = 32,
    progress: bool = True,
) -> MediaScores:
    """Score ``files`` (images, and ``frames`` evenly spaced frames of each video) with ``detector``."""
    frame_rows: list[dict[str, object]] = []
    media_rows: list[dict[str, object]] = []
    crops: dict[tuple[str, int], np.ndarray] = {}
    for media in tqdm(files, desc="predict", unit="file", disable=not progress):

        def score_frame(index: int, frame: np.ndarray, media: MediaFile = media) -> dict[str, object]:
            faces = cropper.faces(frame)
            probs = detector.prob_fake([face.image for face in faces])
            row = _frame_row(media, index, faces, probs)
            if faces:
                crops[(str(media.path), index)] = faces[int(np.argmax(probs))].image
            return row

        try:
            rows = list(media_frames(media, frames, score_frame).values())
            error = None
        except (MediaError, VideoError) as exc:
            rows, error = [], str(exc)
        frame_rows += rows
        media_rows.append(_media_row(media, rows, error))
    frame_table = pd.DataFrame(frame_rows, columns=list(FRAME_COLUMNS))
    frame_table = frame_table.astype({"frame": int, "faces": int, "prob_fake": float})
    return MediaScores(frame_table, pd.DataFrame(media_rows, columns=list(MEDIA_COLUMNS)), crops)
