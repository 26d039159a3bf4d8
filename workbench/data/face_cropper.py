"""One object that finds and crops faces, shared by ``preprocess`` (training crops) and ``predict``.

Both commands build a :class:`FaceCropper` from the same settings (detector name, margin, size), so a
frame that ``predict`` scores is cut exactly as ``preprocess`` cut the frames a detector trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.data.faces import Box, FaceDetector, create_detector, square_crop


@dataclass(frozen=True)
class FaceCrop:
    """A face box in frame pixels and its square crop (BGR, ``size`` × ``size``, as OpenCV holds images)."""

    box: Box
    image: np.ndarray


class FaceCropper:
    """Finds faces with ``detector`` and cuts each into a square of ``margin`` × its box, resized to ``size``."""

    def __init__(self, detector: FaceDetector | str = "haar", margin: float = 1.3, size: int = 256) -> None:
        if margin < 1.0:
            raise ValueError(f"margin must be at least 1.0 (the face box itself), got {margin}")
        if size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {size}")
        self.detector = create_detector(detector) if isinstance(detector, str) else detector
        self.margin = margin
        self.size = size

    def crop(self, frame_bgr: np.ndarray, box: Box) -> FaceCrop:
        """The crop of ``frame_bgr`` around ``box``."""
        return FaceCrop(box, square_crop(frame_bgr, box, self.margin, self.size))

    def faces(self, frame_bgr: np.ndarray) -> list[FaceCrop]:
        """Every face found in ``frame_bgr``, largest first (empty when there is none)."""
        boxes = sorted(self.detector.detect(frame_bgr), key=lambda box: box.area, reverse=True)
        return [self.crop(frame_bgr, box) for box in boxes]

    def largest(self, frame_bgr: np.ndarray) -> FaceCrop | None:
        """The largest face (the subject, in datasets with one manipulated face), or None; what preprocess keeps."""
        faces = self.faces(frame_bgr)
        return faces[0] if faces else None
