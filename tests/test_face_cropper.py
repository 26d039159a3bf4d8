"""The face cropper shared by preprocess and predict: same boxes, same crops, by construction."""

import cv2
import numpy as np
import pandas as pd
import pytest
from test_faces import astronaut_bgr
from test_preprocess import astronaut_clip, write_video

from workbench.data.face_cropper import FaceCropper
from workbench.data.faces import Box, square_crop
from workbench.data.preprocess import preprocess_videos
from workbench.data.video import read_frames_at


class FixedBoxes:
    """A detector that returns the given boxes for every frame."""

    def __init__(self, boxes):
        self.boxes = boxes

    def detect(self, image_bgr):
        return list(self.boxes)


def test_faces_are_ordered_largest_first_and_cut_with_margin_and_size():
    frame = astronaut_bgr()
    small, large = Box(10, 10, 20, 20), Box(200, 50, 60, 80)
    cropper = FaceCropper(FixedBoxes([small, large]), margin=1.5, size=32)
    faces = cropper.faces(frame)
    assert [face.box for face in faces] == [large, small]
    np.testing.assert_array_equal(faces[0].image, square_crop(frame, large, 1.5, 32))
    assert cropper.largest(frame).box == large
    assert FaceCropper(FixedBoxes([])).largest(frame) is None


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="margin"):
        FaceCropper(FixedBoxes([]), margin=0.5)
    with pytest.raises(ValueError, match="size"):
        FaceCropper(FixedBoxes([]), size=4)
    with pytest.raises(ValueError, match="unknown face detector"):
        FaceCropper("nope")


def test_a_frame_cropped_by_the_cropper_equals_what_preprocess_writes(tmp_path):
    frames, _ = astronaut_clip()
    write_video(tmp_path / "videos" / "clip.avi", frames)
    preprocess_videos(tmp_path / "videos", tmp_path / "out", frames=3, size=64, margin=1.3, progress=False)
    written = pd.read_csv(tmp_path / "out" / "frames.csv")
    assert len(written) == 3
    decoded = read_frames_at(tmp_path / "videos" / "clip.avi", written["frame"])
    cropper = FaceCropper("haar", margin=1.3, size=64)
    for row in written.itertuples():
        crop = cropper.largest(decoded[row.frame])
        assert crop.box == Box(row.box_x, row.box_y, row.box_w, row.box_h)
        np.testing.assert_array_equal(crop.image, cv2.imread(str(tmp_path / "out" / row.path)))
