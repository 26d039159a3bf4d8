"""A short sample clip of a real face photo, for trying ``predict`` and notebook 07 without a dataset.

The photo is scikit-image's ``astronaut`` (public domain, shipped in its wheel): it slides and grows across
a grey canvas, and one frame (index ``frames // 3``) is left blank, so the clip also shows a frame without a face.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage import data as skimage_data

CANVAS = (240, 320)  # height, width


def write_sample_clip(path: str | Path, frames: int = 12, fps: int = 10) -> Path:
    """Write the sample clip (MJPG AVI) to ``path``; frame ``frames // 3`` is blank. Returns the path."""
    if frames < 3:
        raise ValueError(f"the sample clip needs at least 3 frames, got {frames}")
    path = Path(path)
    if path.suffix.lower() != ".avi":
        raise ValueError(f"the sample clip is an MJPG AVI; name it *.avi, not {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    photo = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    height, width = CANVAS
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for index, t in enumerate(np.linspace(0, 1, frames)):
        frame = np.full((height, width, 3), 127, np.uint8)
        if index != frames // 3:
            scaled = cv2.resize(photo, None, fx=0.3 + 0.15 * t, fy=0.3 + 0.15 * t, interpolation=cv2.INTER_AREA)
            ox, oy = round(10 + 110 * t), round(5 + 35 * t)
            h, w = min(scaled.shape[0], height - oy), min(scaled.shape[1], width - ox)
            frame[oy : oy + h, ox : ox + w] = scaled[:h, :w]
        writer.write(frame)
    writer.release()
    return path
