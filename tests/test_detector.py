"""A detector loaded from a run folder or a weights file scores crops as training reads them."""

import cv2
import numpy as np
import pytest
import torch
from predict_media import tiny_run
from safetensors.torch import save_file
from test_faces import astronaut_bgr

from workbench.analysis.detector import load_detector
from workbench.data.augment import normalize
from workbench.data.images import load_image
from workbench.models.factory import input_normalization
from workbench.training.runs import load_run_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("detector"))


def test_a_run_scores_a_crop_as_training_reads_its_png(run, tmp_path):
    detector = load_detector(run)
    assert detector.image_size == 16
    crop = cv2.resize(astronaut_bgr(), (40, 40), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "crop.png"), crop)
    model = load_run_model(run)
    x = normalize(load_image(tmp_path / "crop.png", 16)[None], *input_normalization(model))
    with torch.no_grad():
        expected = torch.softmax(model(x), dim=1)[:, 1].numpy()
    np.testing.assert_allclose(detector.prob_fake([crop]), expected, rtol=1e-6)
    maps = detector.gradcam([crop, crop])
    assert maps.shape == (2, 16, 16) and maps.min() >= 0 and maps.max() <= 1


def test_a_weights_file_needs_its_backbone_and_a_missing_model_is_named(run, tmp_path):
    model = load_run_model(run)
    save_file(model.state_dict(), tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="--arch"):
        load_detector(tmp_path / "w.safetensors")
    detector = load_detector(tmp_path / "w.safetensors", architecture="test_resnet", image_size=16)
    crop = np.full((16, 16, 3), 80, np.uint8)
    np.testing.assert_allclose(detector.prob_fake([crop]), load_detector(run).prob_fake([crop]), rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_detector(tmp_path / "nowhere")
