"""The loader benchmark: realistic crops, an exact round trip through the loader, and its JSON lines."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmarks.loader_throughput import face_crops, main, parse_args, write_crops
from workbench.data.images import FrameDataset

KEYS = {
    "format",
    "size",
    "images",
    "batch",
    "workers",
    "seconds",
    "img_s",
    "img_s_per_worker",
    "first_batch_s",
    "steady_img_s",
    "mean_file_kib",
    "torch_threads",
    "cpu_count",
    "load_avg_1min",
}


def test_crops_are_face_like_not_noise(tmp_path):
    crops = face_crops(6, 48, seed=1)
    assert len(crops) == 6 and all(c.shape == (48, 48, 3) and c.dtype == np.uint8 for c in crops)
    manifest = write_crops(tmp_path, crops, "png")
    mean_bytes = np.mean([(tmp_path / p).stat().st_size for p in manifest["path"]])
    assert mean_bytes < 0.8 * 48 * 48 * 3  # smooth content compresses; uniform noise would not
    assert not np.array_equal(crops[0], crops[1])  # poses differ from frame to frame


@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_loader_decodes_what_was_written(tmp_path, image_format):
    crops = face_crops(3, 32)
    manifest = write_crops(tmp_path, crops, image_format, jpeg_quality=100)
    dataset = FrameDataset(manifest, tmp_path, 32)
    for i, crop in enumerate(crops):
        expected = torch.from_numpy(np.ascontiguousarray(crop[:, :, ::-1].transpose(2, 0, 1)))  # BGR -> RGB CHW
        error = (dataset.image(i).int() - expected.int()).abs().float().mean()
        assert error == 0 if image_format == "png" else error < 3


def test_cli_prints_one_json_line_per_worker_count(capsys):
    assert main(["--format", "png", "--size", "32", "--images", "10", "--batch", "4", "--workers", "0", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["workers"] for r in lines] == [0, 1]
    for r in lines:
        assert set(r) == KEYS
        assert (r["format"], r["size"], r["images"], r["batch"]) == ("png", 32, 10, 4)
        assert r["img_s"] == pytest.approx(10 / r["seconds"])
        assert r["img_s_per_worker"] == pytest.approx(r["img_s"] / max(r["workers"], 1))
        assert 0 < r["first_batch_s"] <= r["seconds"] and r["steady_img_s"] > 0 and r["mean_file_kib"] > 0


def test_bad_arguments_name_the_value(capsys):
    for argv, fault in (
        (["--workers", "1", "-2"], "-2"),
        (["--images", "0"], "--images 0"),
        (["--jpeg-quality", "101"], "101"),
        (["--format", "gif"], "gif"),
    ):
        with pytest.raises(SystemExit):
            parse_args(argv)
        assert fault in capsys.readouterr().err
    with pytest.raises(ValueError, match="gif"):
        write_crops(".", [], "gif")
