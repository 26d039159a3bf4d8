"""Read frames from video files: evenly spaced samples over the frames that actually decode.

Containers often misreport their frame count, and damaged videos have frames that fail to decode.
A frame's index is its position in the decoded stream, which is only known up to the first frame that
fails: with inter-frame codecs one failed grab can swallow several source frames. Frames from there on
are never used (a face crop and its mask would come from different frames); when more video follows a
failure, those frames are listed as unusable, never silently lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

import cv2
import numpy as np

VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4",
    ".avi",
    ".mov",
    ".mkv",
    ".webm",
    ".m4v",
    ".mpg",
    ".mpeg",
)  # the files treated as videos

# This many failed grabs in a row end a video (whatever its container claims); fewer, followed by a
# decodable frame, were damage in the middle of the video.
UNREADABLE_RUN_LIMIT = 50

T = TypeVar("T")


class VideoError(RuntimeError):
    """A video that cannot be read as asked; the message names the file."""


class Decoded(NamedTuple):
    """What one pass over a video found: its usable length (up to the first failed grab) and the unusable
    stream positions after it (empty when the failure was the end of the video)."""

    frame_count: int
    unreadable: list[int]


@dataclass
class SampledFrames(Generic[T]):
    """``handle(index, frame)`` of the sampled frames, in index order, and the unusable positions (:class:`Decoded`)."""

    frames: dict[int, T]
    unreadable: list[int]


def sample_indices(frame_count: int, frames: int) -> np.ndarray:
    """``frames`` indices evenly spaced over ``[0, frame_count - 1]`` (all frames if there are fewer)."""
    if frame_count <= 0:
        return np.zeros(0, dtype=int)
    return np.linspace(0, frame_count - 1, num=min(frames, frame_count)).round().astype(int)


def _frame_count_hint(capture: cv2.VideoCapture) -> int:
    """The container's frame count, which may be wrong or missing; only used to pick frames early."""
    return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))


def _decode(path: Path, wanted: set[int], handle: Callable[[int, np.ndarray], T], results: dict[int, T]) -> Decoded:
    """Decode ``path`` once, calling ``handle`` on the frames in ``wanted`` before the first failed grab.

    Decoding goes on past a failure only to tell the end of the video (:data:`UNREADABLE_RUN_LIMIT`
    failures in a row) from damage with more video after it; the stream positions from the first
    failure to the last decodable frame are then returned as unusable.
    """
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError(f"cannot open video {str(path)!r}")
        position, first_failure, last_decoded, failing = 0, None, -1, 0
        while failing < UNREADABLE_RUN_LIMIT:
            if not capture.grab():
                failing += 1
                first_failure = position if first_failure is None else first_failure
            else:
                failing, last_decoded = 0, position
                if first_failure is None and position in wanted:
                    ok, frame = capture.retrieve()
                    if not ok or frame is None:
                        raise VideoError(f"frame {position} of {str(path)!r} could not be decoded")
                    results[position] = handle(position, frame)
            position += 1
        usable = last_decoded + 1 if first_failure is None else first_failure
        return Decoded(usable, list(range(usable, last_decoded + 1)))
    finally:
        capture.release()


def sample_video(path: Path, frames: int, handle: Callable[[int, np.ndarray], T]) -> SampledFrames[T]:
    """Apply ``handle`` to ``frames`` frames evenly spaced over the video's decodable frames.

    The spacing is computed from the frames that actually decode, not from the container's count
    (often off by a few frames): the first pass already handles the frames the container's count
    points to, and a second pass handles any index that the true count moves. In a damaged video only
    the frames before the first undecodable one are sampled; the unusable positions after it are
    listed in the result (see the module docstring).
    """
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError(f"cannot open video {str(path)!r}")
        hint = _frame_count_hint(capture)
    finally:
        capture.release()
    results: dict[int, T] = {}
    decoded = _decode(path, set(sample_indices(hint, frames).tolist()), handle, results)
    readable = list(range(decoded.frame_count))
    if not readable:
        raise VideoError(f"video {str(path)!r} has no decodable frames")
    final = [readable[i] for i in sample_indices(len(readable), frames)]
    missing = set(final) - results.keys()
    if missing:
        _decode(path, missing, handle, results)
    lost = sorted(set(final) - results.keys())
    if lost:
        raise VideoError(f"frame(s) {lost} of {str(path)!r} decoded in one pass but not in the next")
    return SampledFrames({index: results[index] for index in final}, decoded.unreadable)


def read_frames_at(path: Path, indices: Iterable[int]) -> dict[int, np.ndarray]:
    """The frames at ``indices`` of a video (e.g. a mask video); a missing index is an error."""
    wanted = set(indices)
    results: dict[int, np.ndarray] = {}
    decoded = _decode(path, wanted, lambda _, frame: frame, results)
    missing = sorted(wanted - results.keys())
    if missing:
        raise VideoError(f"{str(path)!r} has {decoded.frame_count} decodable frames; frame(s) {missing} are missing")
    return results
