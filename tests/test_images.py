"""Frame decoding: 16-bit files scaled to 8 bits, unsupported files refused with their path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workbench.data.frames import load_mask
from workbench.data.images import load_image, row_roots
from workbench.data.manifest import ManifestError

RAMP_8BIT = [17 * i for i in range(16)]  # 0, 17, …, 255


@pytest.fixture
def ramp_16bit(tmp_path):
    """A 16×16 greyscale PNG of 16-bit values 0, 4369, …, 65535 (= 257 × the 8-bit ramp)."""
    path = tmp_path / "ramp16.png"
    values = np.tile(np.array([257 * v for v in RAMP_8BIT], dtype=np.uint16), (16, 1))
    Image.fromarray(values).save(path)
    assert Image.open(path).mode in ("I;16", "I")
    return path


def test_16_bit_greyscale_frames_and_masks_are_scaled_not_clipped(ramp_16bit):
    image = load_image(ramp_16bit, 16)
    assert image[:, 0].tolist() == [RAMP_8BIT] * 3
    np.testing.assert_allclose(load_mask(ramp_16bit, 16)[0] * 255, RAMP_8BIT, atol=1e-9)


def test_float_images_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "float.tiff"
    Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)).save(path)
    with pytest.raises(ManifestError, match=r"float.tiff.*32-bit float"):
        load_image(path, 4)


def test_each_row_is_read_from_its_manifests_root(tmp_path):
    rows = pd.DataFrame({"path": ["a.png", "b.png", "c.png"], "root_index": [1, 0, 1]})
    assert row_roots(rows, [tmp_path / "x", tmp_path / "y"]) == [tmp_path / "y", tmp_path / "x", tmp_path / "y"]
    assert row_roots(rows.drop(columns="root_index"), tmp_path) == [tmp_path] * 3
    with pytest.raises(ValueError, match="2 dataset roots but the rows have no 'root_index'"):
        row_roots(rows.drop(columns="root_index"), [tmp_path / "x", tmp_path / "y"])
