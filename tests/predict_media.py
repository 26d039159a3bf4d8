"""Media for the predict tests: short clips of the real face photos, a faceless clip, a damaged file."""

from pathlib import Path

import cv2
import numpy as np
from test_faces import grace_hopper_bgr
from test_preprocess import CANVAS, astronaut_clip, write_video

BLANK_FRAME = 4  # sampled when 6 of the 12 frames are (test_preprocess.SAMPLED)


def write_media(root: Path) -> dict[str, Path]:
    """``face``: a moving-astronaut AVI whose frame BLANK_FRAME is blank; ``blank``: a grey clip; ``grace``:
    a photo; ``corrupt``: an MP4 of zeros."""
    frames, _ = astronaut_clip()
    frames[BLANK_FRAME] = np.full((*CANVAS, 3), 127, np.uint8)
    paths = {
        "face": write_video(root / "face.avi", frames),
        "blank": write_video(root / "blank.avi", [np.full((*CANVAS, 3), 90, np.uint8)] * 4),
        "grace": root / "grace.png",
        "corrupt": root / "corrupt.mp4",
    }
    cv2.imwrite(str(paths["grace"]), cv2.resize(grace_hopper_bgr(), None, fx=0.5, fy=0.5))
    paths["corrupt"].write_bytes(bytes(256))
    return paths


def tiny_run(root: Path) -> Path:
    """A finished 6-step ERM run of ``test_resnet`` on 16-px frames of the tiny on-disk dataset."""
    from conftest import tiny_training_config, write_tiny_dataset

    from workbench.training import Trainer

    config = tiny_training_config(write_tiny_dataset(root / "data"), root / "runs", algorithm="erm")
    return Trainer(config, root / "run").fit()
