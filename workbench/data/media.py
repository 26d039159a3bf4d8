"""The media ``predict`` scores: image and video files, given one by one or as folders of either.

Images are read with OpenCV (BGR, as the face detector and ``preprocess`` see frames); videos are sampled
with :func:`workbench.data.video.sample_video`, the same evenly spaced frames ``preprocess`` takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from workbench.data.video import VIDEO_EXTENSIONS, sample_video

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

T = TypeVar("T")


class MediaError(RuntimeError):
    """An input that cannot be read; the message names the file."""


@dataclass(frozen=True)
class MediaFile:
    """One input file and its kind (``"image"`` or ``"video"``)."""

    path: Path
    kind: str


def media_kind(path: Path) -> str | None:
    """``"image"`` or ``"video"`` by the file's extension, None for anything else."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return None


def find_media(inputs: Iterable[str | Path]) -> list[MediaFile]:
    """The image and video files among ``inputs`` and, recursively and sorted, inside the folders among them.

    A named file of another kind, a missing path and a folder without media are errors naming the path.
    """
    found: list[MediaFile] = []
    for item in map(Path, inputs):
        if item.is_dir():
            inside = [
                MediaFile(path, kind)
                for path in sorted(item.rglob("*"))
                if path.is_file() and (kind := media_kind(path)) is not None
            ]
            if not inside:
                raise MediaError(
                    f"folder {str(item)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}) "
                    f"or videos ({', '.join(VIDEO_EXTENSIONS)})"
                )
            found += inside
        elif item.is_file():
            kind = media_kind(item)
            if kind is None:
                raise MediaError(
                    f"{str(item)!r} is neither an image ({', '.join(IMAGE_EXTENSIONS)}) "
                    f"nor a video ({', '.join(VIDEO_EXTENSIONS)})"
                )
            found.append(MediaFile(item, kind))
        else:
            raise MediaError(f"input {str(item)!r} does not exist")
    return found


def read_image(path: Path) -> np.ndarray:
    """An image file as a BGR ``uint8`` array; an unreadable file is a :class:`MediaError` naming it."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(f"cannot read image {str(path)!r} (damaged or not an image)")
    return image


def media_frames(media: MediaFile, frames: int, handle: Callable[[int, np.ndarray], T]) -> dict[int, T]:
    """``handle(index, frame_bgr)`` of an image (index 0) or of ``frames`` evenly spaced frames of a video."""
    if media.kind == "image":
        return {0: handle(0, read_image(media.path))}
    return sample_video(media.path, frames, handle).frames
