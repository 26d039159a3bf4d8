"""Scores per frame and per file: the most suspicious face, faceless frames reported, damaged files named."""

import numpy as np
import pandas as pd
import pytest
from predict_media import BLANK_FRAME, tiny_run, write_media

from workbench.analysis.detector import load_detector
from workbench.analysis.media_scores import score_media
from workbench.data.face_cropper import FaceCropper
from workbench.data.faces import Box
from workbench.data.media import find_media, read_image


class FixedBoxes:
    def __init__(self, boxes):
        self.boxes = boxes

    def detect(self, image_bgr):
        return list(self.boxes) if image_bgr.std() > 1 else []


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("scores")
    return load_detector(tiny_run(root)), write_media(root / "media")


def test_every_file_frame_and_failure_is_accounted_for(setting):
    detector, media = setting
    files = find_media([media["face"], media["blank"], media["grace"], media["corrupt"]])
    scores = score_media(detector, FaceCropper("haar", size=64), files, frames=6, progress=False)
    table = scores.media.set_index("media")
    face, blank, grace, corrupt = (table.loc[str(media[key])] for key in ("face", "blank", "grace", "corrupt"))
    assert corrupt["status"] == "error" and "corrupt.mp4" in corrupt["error"]
    assert blank["status"] == "no_face" and blank["frames_without_face"] == 4 and np.isnan(blank["score"])
    assert grace["status"] == "ok" and grace["frames"] == 1
    face_frames = scores.frames[scores.frames["media"] == str(media["face"])]
    assert face_frames["frame"].tolist() == [0, 2, 4, 7, 9, 11]
    no_face = face_frames[face_frames["status"] == "no_face"]
    assert no_face["frame"].tolist() == [BLANK_FRAME] and no_face["prob_fake"].isna().all()
    assert face["frames"] == 6 and face["frames_without_face"] == 1 and face["frames_scored"] == 5
    scored = face_frames[face_frames["status"] == "ok"]
    assert face["score"] == pytest.approx(scored["prob_fake"].mean())
    assert scores.failed["media"].tolist() == [str(media["corrupt"])]
    top = scores.most_suspicious(2)
    assert top["prob_fake"].tolist() == sorted(scores.frames["prob_fake"].dropna(), reverse=True)[:2]
    key = (top.loc[0, "media"], int(top.loc[0, "frame"]))
    assert detector.prob_fake([scores.crops[key]])[0] == pytest.approx(top.loc[0, "prob_fake"])


def test_a_frame_keeps_its_most_suspicious_face(setting):
    detector, media = setting
    boxes = [Box(20, 20, 80, 80), Box(150, 100, 40, 40), Box(60, 120, 50, 50)]
    cropper = FaceCropper(FixedBoxes(boxes), size=32)
    scores = score_media(detector, cropper, find_media([media["grace"]]), progress=False)
    row = scores.frames.iloc[0]
    faces = cropper.faces(read_image(media["grace"]))
    probs = detector.prob_fake([face.image for face in faces])
    best = faces[int(np.argmax(probs))].box
    assert row["faces"] == 3 and row["prob_fake"] == pytest.approx(probs.max())
    assert (row["box_x"], row["box_y"], row["box_w"], row["box_h"]) == (best.x, best.y, best.w, best.h)
    assert isinstance(scores.media, pd.DataFrame) and scores.media.loc[0, "score"] == pytest.approx(probs.max())
