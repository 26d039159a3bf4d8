"""Face detection and square face crops for preprocessing deepfake videos.

Detectors are pluggable: anything with ``detect(image_bgr) -> list[Box]`` is a :class:`FaceDetector`,
and :data:`DETECTORS` maps a name to a zero-argument factory. The default, ``"haar"``, is OpenCV's
frontal-face Haar cascade, which ships with ``opencv-python-headless`` and so needs no download.
A better detector is added by putting its factory in :data:`DETECTORS`; for parallel preprocessing
the factory must be importable from a module (worker processes are spawned, not forked).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import cv2
import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixel coordinates: top-left corner ``(x, y)``, width ``w``, height ``h``."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in a BGR image (as OpenCV reads it); returns one box per face, in image pixels."""

    def detect(self, image_bgr: np.ndarray) -> list[Box]: ...


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (Viola–Jones).

    Large frames are shrunk so that their longer side is at most ``max_side`` pixels before
    detection (Haar cost grows with the pixel count, and faces in deepfake datasets are large);
    boxes are scaled back to the original image. ``min_size_fraction`` sets the smallest face
    searched for, as a fraction of the (shrunk) image's shorter side.

    Each box comes with its support: how many overlapping raw detections were merged into it.
    Boxes with less than ``min_relative_support`` times the strongest box's support are dropped:
    on the test clips, false positives had a support of 6–7 against 8–36 for the face, and the
    largest-face rule would otherwise pick such a box whenever it is bigger than the face.
    """

    CASCADE_FILE = "haarcascade_frontalface_default.xml"

    def __init__(
        self,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size_fraction: float = 0.08,
        max_side: int = 640,
        min_relative_support: float = 0.5,
    ) -> None:
        path = cv2.data.haarcascades + self.CASCADE_FILE
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"cannot load the Haar cascade {path!r} (is opencv-python-headless installed intact?)")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size_fraction = min_size_fraction
        self.max_side = max_side
        self.min_relative_support = min_relative_support

    def detect(self, image_bgr: np.ndarray) -> list[Box]:
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
        height, width = gray.shape
        scale = min(1.0, self.max_side / max(height, width))
        if scale < 1.0:
            gray = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        min_side = max(1, round(min(gray.shape) * self.min_size_fraction))
        found, support = self._cascade.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_side, min_side)
        )
        if len(found) == 0:
            return []
        keep = np.asarray(support) >= self.min_relative_support * max(support)
        return [Box(*(round(int(v) / scale) for v in rect)) for rect, kept in zip(found, keep) if kept]


DETECTORS: dict[str, Callable[[], FaceDetector]] = {"haar": HaarFaceDetector}


def detector_factory(name: str) -> Callable[[], FaceDetector]:
    """The factory registered under ``name`` in :data:`DETECTORS`."""
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; available: {sorted(DETECTORS)}")
    return DETECTORS[name]


def create_detector(name: str) -> FaceDetector:
    """Build the detector registered under ``name`` in :data:`DETECTORS`."""
    return detector_factory(name)()


def largest_face(boxes: Sequence[Box]) -> Box | None:
    """The box with the largest area (the subject, in datasets with one manipulated face), or None."""
    return max(boxes, key=lambda box: box.area, default=None)


def crop_window(box: Box, margin: float) -> Box:
    """The square window centred on ``box`` whose side is ``margin`` times the box's longer side.

    The window may reach past the image borders; :func:`square_crop` pads those parts.
    """
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    side = max(1, round(max(box.w, box.h) * margin))
    cx, cy = box.center
    return Box(round(cx - side / 2), round(cy - side / 2), side, side)


def square_crop(
    image: np.ndarray,
    box: Box,
    margin: float,
    size: int,
    interpolation: int | None = None,
) -> np.ndarray:
    """Cut the square :func:`crop_window` around ``box`` and resize it to ``size`` × ``size``.

    Parts of the window outside the image are padded with zeros (black; "no manipulation" in
    a mask) rather than shifting the window inside the image, so the face stays centred and its
    scale relative to the crop is the same everywhere in the frame. ``interpolation`` defaults to
    area averaging when shrinking and bicubic when enlarging; pass ``cv2.INTER_NEAREST`` for masks.
    """
    window = crop_window(box, margin)
    height, width = image.shape[:2]
    x0, y0 = max(window.x, 0), max(window.y, 0)
    x1, y1 = min(window.x + window.w, width), min(window.y + window.h, height)
    if x0 >= x1 or y0 >= y1:
        raise ValueError(f"crop window {window} lies outside the {width}x{height} image")
    crop = cv2.copyMakeBorder(
        image[y0:y1, x0:x1],
        top=y0 - window.y,
        bottom=window.y + window.h - y1,
        left=x0 - window.x,
        right=window.x + window.w - x1,
        borderType=cv2.BORDER_CONSTANT,
        value=0,
    )
    if interpolation is None:
        interpolation = cv2.INTER_AREA if window.w >= size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interpolation)
