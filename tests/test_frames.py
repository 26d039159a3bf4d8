"""Frames in memory: seeded, video-diverse picks, and images with masks standardised like training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from workbench.data.frames import Frames, load_frames, load_mask, pick_frames, showcase_rows
from workbench.data.manifest import ManifestError


def test_pick_frames_prefers_distinct_videos_and_is_seeded() -> None:
    rows = [
        dict(path=f"{d}/{v}/{f}.png", label=1, domain=d, video=f"{d}{v}", split="test", dataset="X")
        for d in ("A", "B")
        for v in range(3)
        for f in range(4)
    ]
    manifest = pd.DataFrame(rows)
    picked = pick_frames(manifest, 5, ["B", "A"], split="test", label=1, seed=0)
    assert list(picked["domain"]) == ["B"] * 5 + ["A"] * 5
    for _, domain_rows in picked.groupby("domain"):
        assert domain_rows["video"].iloc[:3].nunique() == 3  # one frame of every video before any repeat
        assert domain_rows["path"].is_unique
    assert picked.equals(pick_frames(manifest, 5, ["B", "A"], split="test", label=1, seed=0))
    alone = pick_frames(manifest, 5, ["A"], split="test", label=1, seed=0)
    assert list(alone["path"]) == list(picked[picked["domain"] == "A"]["path"])  # independent of the other domains
    assert not picked.equals(pick_frames(manifest, 5, ["B", "A"], split="test", label=1, seed=1))
    with pytest.raises(ManifestError, match=r"\['C'\]"):
        pick_frames(manifest, 1, ["C"])
    with pytest.raises(ManifestError, match="domain 'A' has no frames"):
        pick_frames(manifest, 1, ["A"], label=0)


def test_showcase_rows_show_fakes_where_a_domain_has_them_and_reals_otherwise() -> None:
    manifest = pd.DataFrame(
        [
            dict(path="r.png", label=0, domain="R", video="r", split="test", dataset="X"),
            dict(path="f.png", label=1, domain="F", video="f", split="test", dataset="X"),
            dict(path="m0.png", label=0, domain="M", video="m0", split="test", dataset="X"),
            dict(path="m1.png", label=1, domain="M", video="m1", split="test", dataset="X"),
        ]
    )
    assert list(showcase_rows(manifest)["path"]) == ["r.png", "f.png", "m1.png"]
    with pytest.raises(ManifestError, match="split 'val'"):
        showcase_rows(manifest, split="val")


def test_load_frames_reads_images_and_masks_and_standardises_with_given_statistics(tmp_path) -> None:
    image = np.full((8, 8, 3), 51, dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(image).save(tmp_path / "b.png")
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[:4] = 255
    Image.fromarray(mask).save(tmp_path / "a_mask.png")
    rows = pd.DataFrame(
        {"path": ["a.png", "b.png"], "mask_path": ["a_mask.png", None], "label": [1, 0], "domain": ["F", "R"]}
    )
    frames = load_frames(rows, tmp_path, 8)
    assert frames.images.dtype == torch.uint8 and frames.images.shape == (2, 3, 8, 8)
    assert frames.masks[0, :4].min() == 1.0 and frames.masks[0, 4:].max() == 0.0 and frames.masks[1].max() == 0.0
    x = frames.inputs((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert torch.allclose(x, torch.full_like(x, (51 / 255 - 0.5) / 0.5))
    assert frames.labels.tolist() == [1, 0] and frames.domains == ["F", "R"]
    part = frames.subset([1])
    assert part.domains == ["R"] and torch.equal(part.images[0], frames.images[1])
    assert Frames(
        rows.iloc[[0, 0, 1]].reset_index(drop=True), frames.images[[0, 0, 1]], frames.masks[[0, 0, 1]]
    ).first_per_domain() == [0, 2]
    with pytest.raises(ManifestError, match="missing.png"):
        load_mask(tmp_path / "missing.png", 8)
    with pytest.raises(ValueError, match="no rows"):
        load_frames(rows.iloc[:0], tmp_path, 8)
