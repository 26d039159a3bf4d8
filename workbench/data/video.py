"""Read frames from video files: evenly spaced samples over the frames that actually decode.

Containers often misreport their frame count and some frames fail to decode. Frames keep their index
in the source video; undecodable ones are skipped and listed, never silently lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

import cv2
import numpy as np

# Past the container's frame count, this many failed grabs in a row end a video (before it, every
# frame is tried): an undecodable frame in the middle must not hide the frames after it.
UNREADABLE_RUN_LIMIT = 50

T = TypeVar("T")


class VideoError(RuntimeError):
    """A video that cannot be read as asked; the message names the file."""


class Decoded(NamedTuple):
    """What one pass over a video found: its length (up to its last decodable frame) and the frames that failed."""

    frame_count: int
    unreadable: list[int]


@dataclass
class SampledFrames(Generic[T]):
    """``handle(index, frame)`` of the sampled frames, in index order, and the frames that could not be decoded."""

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
    """Decode ``path`` once, calling ``handle`` on the frames in ``wanted``.

    A frame that fails to decode still takes its place, so later frames keep their index in the
    source; failures after the last decodable frame are the end of the video, not unreadable frames.
    """
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError(f"cannot open video {str(path)!r}")
        hint = _frame_count_hint(capture)
        position, unreadable, failing = 0, [], []
        while position < hint or len(failing) < UNREADABLE_RUN_LIMIT:
            if not capture.grab():
                failing.append(position)
            else:
                unreadable += failing
                failing = []
                if position in wanted:
                    ok, frame = capture.retrieve()
                    if not ok or frame is None:
                        raise VideoError(f"frame {position} of {str(path)!r} could not be decoded")
                    results[position] = handle(position, frame)
            position += 1
        return Decoded(position - len(failing), unreadable)
    finally:
        capture.release()


def sample_video(path: Path, frames: int, handle: Callable[[int, np.ndarray], T]) -> SampledFrames[T]:
    """Apply ``handle`` to ``frames`` frames evenly spaced over the video's decodable frames.

    The spacing is computed from the frames that actually decode, not from the container's count
    (often off by a few frames): the first pass already handles the frames the container's count
    points to, and a second pass handles any index that the true count moves. Frames that cannot be
    decoded are skipped (the indices stay those of the source video) and listed in the result.
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
    unreadable = set(decoded.unreadable)
    readable = [index for index in range(decoded.frame_count) if index not in unreadable]
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
        raise VideoError(
            f"{str(path)!r} has {decoded.frame_count} decodable frames; frame(s) {missing} are missing"
        )
    return results
