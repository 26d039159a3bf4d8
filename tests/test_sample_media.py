"""The sample clip: the astronaut's face in every frame but the blank one."""

import pytest

from workbench.data.face_cropper import FaceCropper
from workbench.data.sample_media import write_sample_clip
from workbench.data.video import sample_video


def test_the_sample_clip_has_a_face_in_every_frame_but_the_middle_one(tmp_path):
    path = write_sample_clip(tmp_path / "clip.avi", frames=8)
    cropper = FaceCropper(size=32)
    found = sample_video(path, 8, lambda index, frame: cropper.largest(frame) is not None).frames
    assert found == {index: index != 2 for index in range(8)}  # 8 // 3


def test_bad_sample_clip_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 3"):
        write_sample_clip(tmp_path / "clip.avi", frames=2)
    with pytest.raises(ValueError, match="clip.mp4"):
        write_sample_clip(tmp_path / "clip.mp4")
