"""Finding and reading the media predict scores: images, videos and folders of either."""

import cv2
import numpy as np
import pytest
from test_faces import grace_hopper_bgr

from workbench.data.media import (
    MediaError,
    MediaFile,
    find_media,
    media_frames,
    read_image,
)
from workbench.data.video import VideoError


def test_files_and_folders_are_found_by_kind_and_folders_sorted_recursively(tmp_path):
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    for name in ("dir/b.JPG", "dir/sub/a.mp4", "dir/notes.txt", "clip.avi"):
        (tmp_path / name).write_bytes(b"x")
    found = find_media([tmp_path / "clip.avi", tmp_path / "dir"])
    assert found == [
        MediaFile(tmp_path / "clip.avi", "video"),
        MediaFile(tmp_path / "dir" / "b.JPG", "image"),
        MediaFile(tmp_path / "dir" / "sub" / "a.mp4", "video"),
    ]


def test_bad_inputs_are_named(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MediaError, match="notes.txt.*neither an image"):
        find_media([tmp_path / "notes.txt"])
    with pytest.raises(MediaError, match="empty.*holds no images"):
        find_media([tmp_path / "empty"])
    with pytest.raises(MediaError, match="missing.png.*does not exist"):
        find_media([tmp_path / "missing.png"])


def test_an_image_is_one_frame_and_a_damaged_one_is_named(tmp_path):
    cv2.imwrite(str(tmp_path / "grace.png"), grace_hopper_bgr())
    frames = media_frames(MediaFile(tmp_path / "grace.png", "image"), 5, lambda index, frame: frame)
    assert list(frames) == [0]
    np.testing.assert_array_equal(frames[0], grace_hopper_bgr())
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(MediaError, match="bad.png"):
        read_image(tmp_path / "bad.png")


def test_a_video_gives_evenly_spaced_frames_and_a_damaged_one_is_named(tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for value in range(0, 250, 25):  # 10 frames of rising grey levels
        writer.write(np.full((24, 32, 3), value, np.uint8))
    writer.release()
    frames = media_frames(MediaFile(tmp_path / "v.avi", "video"), 4, lambda index, frame: int(frame.mean()))
    assert list(frames) == [0, 3, 6, 9]  # round(linspace(0, 9, 4))
    assert [round(value / 25) for value in frames.values()] == [0, 3, 6, 9]
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(VideoError, match="bad.mp4"):
        media_frames(MediaFile(tmp_path / "bad.mp4", "video"), 4, lambda index, frame: frame)
