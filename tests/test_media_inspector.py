"""The frame slider of notebook 07: each frame shows its crop, its Grad-CAM map and its place on the timeline."""

import numpy as np
import pytest
from predict_media import BLANK_FRAME, tiny_run, write_media

from workbench.analysis.detector import load_detector
from workbench.analysis.media_scores import score_media
from workbench.data.face_cropper import FaceCropper
from workbench.data.media import find_media
from workbench.viz.media_inspector import MediaInspector


@pytest.fixture(scope="module")
def inspected(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspector")
    detector, media = load_detector(tiny_run(root)), write_media(root / "media")
    scores = score_media(detector, FaceCropper(size=64), find_media([media["face"]]), frames=6, progress=False)
    return MediaInspector(scores, detector, media["face"]), scores, detector


def test_moving_the_slider_shows_that_frames_crop_map_and_score(inspected):
    inspector, scores, detector = inspected
    assert [value for _, value in inspector.slider.options] == [0, 2, 4, 7, 9, 11]
    inspector.slider.value = 7
    row = inspector.rows.loc[7]
    crop = scores.crops[(inspector.media, 7)]
    np.testing.assert_array_equal(inspector.figure.data[0].z, detector.rgb(crop))
    np.testing.assert_allclose(inspector.figure.data[2].z, detector.gradcam([crop])[0], rtol=1e-5, atol=1e-6)
    assert list(inspector.figure.data[5].x) == [7, 7]
    assert inspector.figure.layout.title.text == f"face.avi · frame 7 · P(fake) = {row['prob_fake']:.3f}"
    assert list(inspector.figure.data[3].x) == [0, 2, 7, 9, 11] and list(inspector.figure.data[4].x) == [BLANK_FRAME]


def test_a_faceless_frame_shows_empty_panels_and_an_unknown_file_is_refused(inspected):
    inspector, scores, detector = inspected
    inspector.slider.value = BLANK_FRAME
    assert inspector.figure.layout.title.text.endswith("no face: not scored")
    assert np.asarray(inspector.figure.data[2].z).max() == 0
    with pytest.raises(ValueError, match="other.mp4"):
        MediaInspector(scores, detector, "other.mp4")
