"""Preprocessing in worker processes: a worker that dies fails the videos in flight, and the run goes on."""

import os

import numpy as np
import pandas as pd
import pytest
from test_preprocess import astronaut_clip, write_video

from workbench.data.faces import DETECTORS, HaarFaceDetector
from workbench.data.preprocess import preprocess_videos


class CrashOnBlankFrame(HaarFaceDetector):
    """Kills its process on a frame without any detail, as a segfaulting decoder or the OOM killer would."""

    def detect(self, image_bgr):
        if image_bgr.std() < 1:
            os._exit(139)
        return super().detect(image_bgr)


@pytest.mark.slow  # two pools of spawned workers, each re-importing the package
@pytest.mark.timeout(120)
def test_a_worker_that_dies_fails_the_videos_in_flight_and_the_run_goes_on(tmp_path, monkeypatch):
    frames, _ = astronaut_clip()
    write_video(tmp_path / "in" / "a_blank.avi", [np.full_like(frames[0], 127)] * 4)
    for name in ("b", "c", "d"):
        write_video(tmp_path / "in" / f"{name}.avi", frames[:4])
    monkeypatch.setitem(DETECTORS, "crash", CrashOnBlankFrame)
    out = tmp_path / "out"
    summary = preprocess_videos(tmp_path / "in", out, frames=2, size=32, detector="crash", workers=2, progress=False)
    failed = dict(summary.failed)
    assert "a_blank" in failed and "worker process died" in failed["a_blank"]
    assert len(failed) <= 2  # at most one other video was in flight with it
    assert all("in flight with a_blank.avi" in error for video, error in failed.items() if video != "a_blank")
    assert summary.videos_processed == 4 - len(failed)
    assert pd.read_csv(out / "failed_videos.csv")["video"].tolist() == sorted(failed)
    assert sorted(set(pd.read_csv(out / "frames.csv")["video"])) == sorted({"b", "c", "d"} - set(failed))
    assert not (out / "incomplete").exists()
