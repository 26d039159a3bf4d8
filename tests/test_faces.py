"""Face detection and cropping, checked against hand-annotated faces in public-domain photos."""

from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest
import skimage.data

from workbench.data.faces import (
    DETECTORS,
    Box,
    FaceDetector,
    HaarFaceDetector,
    create_detector,
    crop_window,
    largest_face,
    square_crop,
)

# Faces located by eye on a 50-pixel grid (brow to chin, ear to ear), independent of any detector.
ASTRONAUT_FACE = Box(175, 60, 95, 105)
GRACE_HOPPER_FACE = Box(165, 140, 195, 195)


def astronaut_bgr() -> np.ndarray:
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def grace_hopper_bgr() -> np.ndarray:
    return cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))


def iou(a: Box, b: Box) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    return inter / (a.area + b.area - inter)


@pytest.mark.parametrize("image, face", [(astronaut_bgr, ASTRONAUT_FACE), (grace_hopper_bgr, GRACE_HOPPER_FACE)])
def test_haar_finds_the_annotated_face(image, face):
    detector = create_detector("haar")
    assert isinstance(detector, FaceDetector)
    best = largest_face(detector.detect(image()))
    assert best is not None and iou(best, face) > 0.6


def test_haar_boxes_are_scaled_back_from_the_shrunk_image():
    image = cv2.resize(astronaut_bgr(), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    best = largest_face(HaarFaceDetector(max_side=512).detect(image))
    doubled = Box(*(2 * v for v in (ASTRONAUT_FACE.x, ASTRONAUT_FACE.y, ASTRONAUT_FACE.w, ASTRONAUT_FACE.h)))
    assert best is not None and iou(best, doubled) > 0.6


def test_haar_finds_nothing_in_a_blank_image():
    assert HaarFaceDetector().detect(np.full((240, 320, 3), 127, np.uint8)) == []


def test_unknown_detector_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown face detector 'nope'.*haar"):
        create_detector("nope")


def test_registered_detector_is_created_by_name(monkeypatch):
    class Fixed:
        def detect(self, image_bgr):
            return [Box(1, 2, 3, 4)]

    monkeypatch.setitem(DETECTORS, "fixed", Fixed)
    assert create_detector("fixed").detect(np.zeros((5, 5, 3), np.uint8)) == [Box(1, 2, 3, 4)]


def test_largest_face_by_area_and_none_for_no_faces():
    assert largest_face([Box(0, 0, 10, 10), Box(5, 5, 30, 5), Box(2, 2, 12, 12)]) == Box(5, 5, 30, 5)
    assert largest_face([]) is None


def test_crop_window_is_a_centred_square_scaled_by_the_margin():
    # Box centre (30, 45), longer side 20 -> side 26 around the centre.
    assert crop_window(Box(20, 40, 20, 10), 1.3) == Box(17, 32, 26, 26)


def test_square_crop_inside_the_image_equals_the_slice():
    image = np.arange(60 * 80 * 3, dtype=np.uint32).reshape(60, 80, 3).astype(np.uint8)
    crop = square_crop(image, Box(30, 20, 10, 10), margin=2.0, size=20)
    np.testing.assert_array_equal(crop, image[15:35, 25:45])


def test_square_crop_pads_outside_the_image_with_zeros():
    image = np.full((40, 40), 200, np.uint8)
    # Window: side 20 centred on (5, 5) -> x, y in [-5, 15): 5 pixels of padding on the top and left.
    crop = square_crop(image, Box(0, 0, 10, 10), margin=2.0, size=20, interpolation=cv2.INTER_NEAREST)
    assert crop.shape == (20, 20)
    assert (crop[:5, :] == 0).all() and (crop[:, :5] == 0).all()
    assert (crop[5:, 5:] == 200).all()


def test_square_crop_resizes_to_the_requested_size():
    crop = square_crop(astronaut_bgr(), ASTRONAUT_FACE, margin=1.3, size=64)
    assert crop.shape == (64, 64, 3)


def test_square_crop_rejects_a_window_outside_the_image():
    with pytest.raises(ValueError, match="outside"):
        square_crop(np.zeros((10, 10), np.uint8), Box(50, 50, 4, 4), margin=1.0, size=8)


def test_haar_drops_weakly_supported_boxes_and_rescales(monkeypatch):
    class StubCascade:
        def detectMultiScale2(self, gray, **kwargs):
            assert gray.shape == (320, 640)  # 1280x640 shrunk to max_side 640
            return np.array([[10, 10, 40, 40], [100, 50, 60, 60], [300, 80, 30, 30]]), [20, 9, 10]

    detector = HaarFaceDetector(max_side=640, min_relative_support=0.5)
    monkeypatch.setattr(detector, "_cascade", StubCascade())
    boxes = detector.detect(np.zeros((640, 1280, 3), np.uint8))
    # Support 9 < 0.5 * 20 is dropped; the others are scaled back by 2.
    assert boxes == [Box(20, 20, 80, 80), Box(600, 160, 60, 60)]
