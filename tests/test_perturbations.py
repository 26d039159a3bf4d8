"""DeeperForensics-1.0 perturbations: published levels, each operation against a value computed apart, and
determinism."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import av
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.ndimage import correlate1d

from workbench.data.images import FrameDataset
from workbench.data.perturbations import (
    BLOCK_GREY,
    PERTURBATIONS,
    PerturbedFrames,
    block_count,
    check_levels,
    frame_generator,
    parse_perturbations,
    perturb,
)

# DeeperForensics-1.0, perturbation/add_distortion_to_video.py: get_distortion_parameter, levels 1-5.
PUBLISHED = {
    "CS": (0.4, 0.3, 0.2, 0.1, 0.0),
    "CC": (0.85, 0.725, 0.6, 0.475, 0.35),
    "BW": (16, 32, 48, 64, 80),
    "GNC": (0.001, 0.002, 0.005, 0.01, 0.05),
    "GB": (7, 9, 13, 17, 21),
    "JPEG": (2, 3, 4, 5, 6),
    "VC": (30, 32, 35, 38, 40),
}


def random_image(height: int = 40, width: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def bt601(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, Cb, Cr (full range, chroma centred on 0) of an RGB image, from the BT.601 formulas."""
    r, g, b = (image[..., c].astype(np.float64) for c in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return y, 0.564 * (b - y), 0.713 * (r - y)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0**2 / mse)


def test_every_perturbation_has_the_published_levels() -> None:
    assert {p.code: p.parameters for p in PERTURBATIONS.values()} == PUBLISHED


def test_color_saturation_scales_chroma_around_luma() -> None:
    image = random_image()
    luma = bt601(image)[0][..., None]
    for level, factor in enumerate(PUBLISHED["CS"], start=1):
        expected = luma + factor * (image - luma)  # Pillow rounds the grey image and truncates the blend
        assert np.abs(perturb(image, "color_saturation", level, "f").astype(float) - expected).max() < 1.5
    grey = perturb(image, "color_saturation", 5, "f")
    assert (grey == grey[..., :1]).all()  # factor 0: no colour left


def test_color_contrast_multiplies_pixel_values() -> None:
    image = random_image()
    for level, factor in enumerate(PUBLISHED["CC"], start=1):
        expected = np.floor(image.astype(np.float32) * np.float32(factor))  # DeeperForensics truncates
        np.testing.assert_array_equal(perturb(image, "color_contrast", level, "f"), expected)


def test_block_count_is_per_256_px_of_the_shorter_side_and_never_zero() -> None:
    assert block_count(256, 256, 16) == 16
    assert block_count(300, 512, 16) == 16
    assert block_count(512, 768, 32) == 64
    assert block_count(32, 32, 80) == 80


def test_block_wise_paints_grey_8px_squares_where_the_frame_generator_puts_them() -> None:
    image = np.zeros((64, 48, 3), dtype=np.uint8)
    out = perturb(image, "block_wise", 1, "video/000.png")
    rng = frame_generator("video/000.png", "block_wise", 1)
    expected = image.copy()
    for _ in range(16):
        left, top = int(rng.integers(0, 48 - 8)), int(rng.integers(0, 64 - 8))
        expected[top : top + 8, left : left + 8] = BLOCK_GREY
    np.testing.assert_array_equal(out, expected)
    assert set(np.unique(out)) == {0, BLOCK_GREY} and (out == BLOCK_GREY).all(axis=2).sum() >= 64
    with pytest.raises(ValueError, match="larger than 8 px; got 8 x 20"):
        perturb(np.zeros((20, 8, 3), np.uint8), "block_wise", 1, "f")


@pytest.mark.parametrize("level", [2, 4])
def test_gaussian_noise_has_the_published_variance_in_studio_range_ycbcr(level: int) -> None:
    image = np.full((256, 256, 3), 128, dtype=np.uint8)  # mid-grey: no clipping at these levels
    y, cb, cr = bt601(perturb(image, "gaussian_noise", level, "f"))
    sigma = 255.0 * math.sqrt(PUBLISHED["GNC"][level - 1])  # std in 8-bit studio-range units
    assert y.std() == pytest.approx(sigma * 255 / 219, rel=0.03)
    assert cb.std() == pytest.approx(sigma * 255 / 224, rel=0.03)
    assert cr.std() == pytest.approx(sigma * 255 / 224, rel=0.03)
    assert abs(np.corrcoef(y.ravel(), cb.ravel())[0, 1]) < 0.05


def test_gaussian_blur_is_the_published_gaussian_kernel() -> None:
    image = random_image(48, 40)
    for level, size in enumerate(PUBLISHED["GB"], start=1):
        sigma = size / 6
        taps = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma**2))
        taps /= taps.sum()
        expected = image.astype(np.float64)
        for axis in (0, 1):
            expected = correlate1d(expected, taps, axis=axis, mode="mirror")  # OpenCV's default border
        error = np.abs(perturb(image, "gaussian_blur", level, "f") - expected)  # OpenCV: fixed-point uint8 taps
        assert error.max() < 2.0 and error.mean() < 0.5


def test_jpeg_level_1_halves_and_doubles_bilinearly() -> None:
    row = np.array([0, 40, 80, 120], dtype=np.uint8)
    image = np.repeat(np.tile(row, (4, 1))[..., None], 3, axis=2)
    # shrink: pixel pairs averaged -> [20, 100]; enlarge: pixel centres at -1/4, 1/4, 3/4, 5/4 of the small row
    expected = np.array([20, 0.75 * 20 + 0.25 * 100, 0.25 * 20 + 0.75 * 100, 100])
    np.testing.assert_array_equal(perturb(image, "jpeg", 1, "f")[..., 0], np.tile(expected, (4, 1)))
    with pytest.raises(ValueError, match="cannot shrink a 5 x 5 image by a factor of 6"):
        perturb(random_image(5, 5), "jpeg", 5, "f")


def smooth_image(size: int = 64) -> np.ndarray:
    x, y = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size))
    channels = [128 + 100 * np.sin(6 * x + 3 * y), 128 + 90 * np.cos(5 * y), 128 + 80 * np.sin(4 * x * y)]
    return np.stack(channels, axis=2).astype(np.uint8)


def test_video_compression_equals_ffmpeg_muxed_h264_and_degrades_with_level(tmp_path) -> None:
    image = smooth_image()
    path = tmp_path / "frame.mp4"
    with av.open(str(path), "w") as container:  # the container path ffmpeg's command line takes
        stream = container.add_stream("libx264", rate=25, options={"crf": "35", "threads": "1"})
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    with av.open(str(path)) as container:
        decoded = next(container.decode(video=0)).to_ndarray(format="rgb24")
    np.testing.assert_array_equal(perturb(image, "video_compression", 3, "f"), decoded)
    quality = [psnr(image, perturb(image, "video_compression", level, "f")) for level in range(1, 6)]
    assert quality == sorted(quality, reverse=True) and quality[-1] < quality[0]
    odd = perturb(random_image(15, 17), "video_compression", 1, "f")
    assert odd.shape == (15, 17, 3)


def test_perturbations_repeat_for_a_key_and_differ_between_keys() -> None:
    image = random_image()
    for name in PERTURBATIONS:
        np.testing.assert_array_equal(perturb(image, name, 3, "a.png"), perturb(image, name, 3, "a.png"))
    for name in ("block_wise", "gaussian_noise"):
        assert not np.array_equal(perturb(image, name, 3, "a.png"), perturb(image, name, 3, "b.png"))


def test_frame_generator_is_the_same_in_another_process() -> None:
    code = (
        "from workbench.data.perturbations import frame_generator; "
        "print(frame_generator('v/1.png', 'gaussian_noise', 2).integers(0, 2**62))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert int(other.stdout) == frame_generator("v/1.png", "gaussian_noise", 2).integers(0, 2**62)


def test_names_and_levels_are_checked() -> None:
    assert parse_perturbations(["all"]) == list(PERTURBATIONS)
    assert parse_perturbations(["jpeg", "color_saturation", "jpeg"]) == ["color_saturation", "jpeg"]
    with pytest.raises(ValueError, match="unknown perturbation 'blur'"):
        parse_perturbations(["jpeg", "blur"])
    assert check_levels([5, 1, 5]) == [1, 5]
    with pytest.raises(ValueError, match="severity level 6 is not one of"):
        check_levels([1, 6])
    with pytest.raises(ValueError, match="uint8 RGB"):
        perturb(np.zeros((8, 8), np.uint8), "jpeg", 1, "f")


def test_perturbed_frames_perturb_each_frame_by_its_manifest_path(tmp_path) -> None:
    paths = []
    for i in range(2):
        paths.append(f"v{i}/000.png")
        (tmp_path / f"v{i}").mkdir()
        Image.fromarray(random_image(16, 16, seed=i)).save(tmp_path / paths[-1])
    manifest = pd.DataFrame({"path": paths, "label": [0, 1]})
    frames = FrameDataset(manifest, tmp_path, image_size=16)
    perturbed = PerturbedFrames(frames, "gaussian_noise", 2)
    assert len(perturbed) == 2
    for index in range(2):
        image, label, row = perturbed[index]
        clean = frames[index][0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), perturb(clean, "gaussian_noise", 2, paths[index]))
        assert (int(label), row) == (index, index)
    with pytest.raises(ValueError, match="severity level 0"):
        PerturbedFrames(frames, "jpeg", 0)
