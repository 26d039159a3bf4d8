"""Frame sampling and reading on short videos written here, some with a frame made undecodable."""

import numpy as np
import pytest
from test_preprocess import N_FRAMES, SAMPLED, corrupt_frame, write_video

from workbench.data import video
from workbench.data.video import VideoError, read_frames_at, sample_indices, sample_video


def test_sample_indices_are_evenly_spaced_over_the_whole_video():
    assert sample_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert sample_indices(100, 5).tolist() == [0, 25, 50, 74, 99]
    assert sample_indices(12, 6).tolist() == SAMPLED
    assert sample_indices(3, 5).tolist() == [0, 1, 2]
    assert sample_indices(0, 4).tolist() == []


def test_sample_video_hands_over_the_right_frames_even_if_the_container_count_is_wrong(tmp_path, monkeypatch):
    # Frame i is a flat grey of level 20 * i, so the mean identifies the frame.
    path = write_video(tmp_path / "levels.avi", [np.full((32, 32, 3), 20 * i, np.uint8) for i in range(N_FRAMES)])
    for wrong_count in (0, 7, 30):
        monkeypatch.setattr(video, "_frame_count_hint", lambda capture, n=wrong_count: n)
        means = sample_video(path, 6, lambda index, frame: float(frame.mean())).frames
        assert list(means) == SAMPLED
        np.testing.assert_allclose(list(means.values()), [20 * i for i in SAMPLED], atol=3)


def test_frames_after_an_undecodable_one_are_listed_as_unusable_not_sampled(tmp_path, monkeypatch):
    """Past a failed grab stream positions are unknown (inter-frame codecs can lose several frames), so
    sampling covers the frames before it and the positions after it are reported."""
    path = write_video(tmp_path / "levels.avi", [np.full((32, 32, 3), 20 * i, np.uint8) for i in range(N_FRAMES)])
    corrupt_frame(path, 5)
    expected = [0, 1, 2, 3, 4]  # the frames before the damage, all of them (fewer than 6)
    for wrong_count in (None, 0, 7, 30, 10**6):
        if wrong_count is not None:
            monkeypatch.setattr(video, "_frame_count_hint", lambda capture, n=wrong_count: n)
        sampled = sample_video(path, 6, lambda index, frame: float(frame.mean()))
        assert sampled.unreadable == list(range(5, N_FRAMES))
        assert list(sampled.frames) == expected
        np.testing.assert_allclose(list(sampled.frames.values()), [20 * i for i in expected], atol=3)


def test_read_frames_at_names_missing_frames(tmp_path):
    path = write_video(tmp_path / "short.avi", [np.zeros((16, 16, 3), np.uint8)] * 3)
    with pytest.raises(VideoError, match=r"3 decodable frames; frame\(s\) \[5\] are missing"):
        read_frames_at(path, [1, 5])
