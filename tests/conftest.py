"""Shared fixtures: a tiny on-disk dataset with a manifest, built by the tests themselves."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One intra-op thread: the tiny test models gain nothing from more, and OpenMP oversubscription on a
# shared 2-core machine can make them orders of magnitude slower.
torch.set_num_threads(1)

SOURCE = ["D-A", "D-B", "D-C"]
TARGET = "D-T"


def write_tiny_dataset(root: Path, size: int = 16, frames: int = 2, videos: int = 3) -> Path:
    """Reals (domain R) and three fake domains in train/val/test, plus a fake-only target domain.

    Fakes carry a bright square whose position depends on the domain, so a model can learn them.
    """
    rng = np.random.default_rng(0)
    rows = []

    def add(domain: str, label: int, split: str, video: str, source: str | None) -> None:
        for f in range(frames):
            image = rng.integers(60, 120, (size, size, 3), dtype=np.uint8)
            if label:
                offset = {"D-A": 0, "D-B": size // 3, "D-C": size // 2, TARGET: size // 4}[domain]
                image[offset : offset + 4, offset : offset + 4] = 250
            rel = f"{domain}/{video}/{f:03d}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / rel)
            rows.append(
                dict(
                    path=rel,
                    label=label,
                    domain=domain,
                    video=video,
                    split=split,
                    dataset="TINY",
                    frame=f,
                    source_video=source,
                )
            )

    for split in ("train", "val", "test"):
        for v in range(videos):
            real = f"{split}-r{v}"
            add("R", 0, split, real, real)
            for domain in SOURCE:
                add(domain, 1, split, f"{split}-{domain}-{v}", real)
    for v in range(videos):
        add(TARGET, 1, "test", f"test-T-{v}", f"test-r{v}")
    manifest = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


@pytest.fixture
def tiny_manifest(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "data")


def tiny_training_config(manifest: Path, runs: Path, algorithm: str = "roga") -> dict:
    """A 6-step run of ``test_resnet`` on 16-px frames of the tiny dataset at ``manifest``, run directories under
    ``runs``."""
    from workbench.config import load_config

    return load_config(
        overrides={
            "run": {"dir": str(runs)},
            "data": {
                "manifest": str(manifest),
                "source_domains": SOURCE,
                "target_domains": [TARGET],
                "image_size": 16,
                "batch_size": 12,
                "eval_batch_size": 64,
            },
            "model": {"name": "test_resnet"},
            "algorithm": {"name": algorithm, "hparams": {"lr": 1e-3}},
            "train": {"steps": 6, "eval_every": 3, "seed": 0, "device": "cpu", "progress": False},
        }
    )


@pytest.fixture
def tiny_config(tiny_manifest: Path, tmp_path: Path) -> dict:
    return tiny_training_config(tiny_manifest, tmp_path / "runs")
