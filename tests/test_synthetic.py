import argparse
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from workbench.cli import run_command, synth
from workbench.data.manifest import read_manifest
from workbench.data.synthetic import (
    COMPRESSED_DOMAIN,
    REAL_DOMAIN,
    SEAMLESS_DOMAIN,
    SOURCE_DOMAINS,
    STATE_NAME,
    generate_benchmark,
    plan_videos,
)
from workbench.data.synthetic_faces import render_face
from workbench.data.synthetic_forgeries import ForgeryStrengths
from workbench.data.synthetic_frames import prepare_video

N_VIDEOS, N_FRAMES, SIZE = 5, 2, 32
STRENGTHS = ForgeryStrengths()


def _build(out: Path, **overrides) -> Path:
    kwargs = dict(n_videos_per_domain=N_VIDEOS, frames_per_video=N_FRAMES, size=SIZE, seed=3, workers=2)
    kwargs.update(overrides)
    return generate_benchmark(out, **kwargs)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    manifest_path = _build(tmp_path_factory.mktemp("bench"))
    df, _ = read_manifest(manifest_path, check_files=True)
    return manifest_path, df


def test_manifest_is_valid_and_relative(bench):
    manifest_path, df = bench
    assert manifest_path.name == "manifest.csv"
    assert not any(Path(p).is_absolute() for p in df["path"])
    assert {"frame", "mask_path", "source_video", "compression"} <= set(df.columns)
    assert sorted(df["frame"].unique()) == list(range(N_FRAMES))


def test_counts_per_domain_and_split(bench):
    _, df = bench
    videos = df.groupby(["dataset", "domain", "label", "split"])["video"].nunique().to_dict()
    source_splits = {"train": 3, "val": 1, "test": 1}  # 60/20/20 of 5
    expected = {("SYN", REAL_DOMAIN, 0, split): n for split, n in source_splits.items()}
    for domain in SOURCE_DOMAINS:
        expected.update({("SYN", domain, 1, split): n for split, n in source_splits.items()})
    expected[("SYN", SEAMLESS_DOMAIN, 1, "test")] = N_VIDEOS
    expected[("SYN-C", COMPRESSED_DOMAIN, 0, "test")] = N_VIDEOS
    expected[("SYN-C", COMPRESSED_DOMAIN, 1, "test")] = N_VIDEOS
    assert videos == expected
    assert (df.groupby("video").size() == N_FRAMES).all()


def test_fakes_come_from_a_real_video_of_their_split(bench):
    _, df = bench
    reals = df[df["label"] == 0].groupby("video").agg(split=("split", "first"), dataset=("dataset", "first"))
    fakes = (
        df[df["label"] == 1]
        .groupby("video")
        .agg(
            split=("split", "first"),
            dataset=("dataset", "first"),
            source=("source_video", "first"),
            domain=("domain", "first"),
        )
    )
    assert fakes["source"].isin(reals.index).all()
    assert (reals.loc[fakes["source"], "split"].values == fakes["split"].values).all()
    assert (reals.loc[fakes["source"], "dataset"].values == fakes["dataset"].values).all()
    assert df[df["label"] == 0]["source_video"].isna().all()
    assert (df.groupby("video")["split"].nunique() == 1).all()
    assert set(fakes.loc[fakes["domain"] == COMPRESSED_DOMAIN, "source"].str.startswith(COMPRESSED_DOMAIN)) == {True}


def test_masks_exist_for_fakes_only_and_lie_on_the_face(bench):
    manifest_path, df = bench
    root = manifest_path.parent
    assert df.loc[df["label"] == 0, "mask_path"].isna().all()
    specs = {spec.video: spec for spec in plan_videos(N_VIDEOS, seed=3)}
    for row in df[df["label"] == 1].itertuples():
        mask = cv2.imread(str(root / row.mask_path), cv2.IMREAD_GRAYSCALE).astype(np.float64)
        assert mask.max() > 128, row.mask_path
        video = prepare_video(specs[row.video], N_FRAMES, seed=3, strengths=STRENGTHS)
        face = render_face(video.identity, video.poses[row.frame], SIZE).face
        head = cv2.dilate((face > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert mask[head].sum() / mask.sum() > 0.95, row.mask_path


def test_same_seed_gives_identical_bytes_whatever_the_workers(bench, tmp_path):
    manifest_path, _ = bench
    again = _build(tmp_path / "one_worker", workers=1)
    assert _digest(again.parent) == _digest(manifest_path.parent)


def test_other_seed_gives_other_images(bench, tmp_path):
    manifest_path, df = bench
    other = _build(tmp_path / "other", seed=4)
    first = df["path"].iloc[0]
    assert (other.parent / first).read_bytes() != (manifest_path.parent / first).read_bytes()


def test_finished_build_is_reused_and_changed_parameters_rebuild(tmp_path):
    manifest_path = _build(tmp_path, n_videos_per_domain=3, frames_per_video=1)
    state = json.loads((tmp_path / STATE_NAME).read_text())
    assert state["complete"] and state["parameters"]["frames_per_video"] == 1
    df, _ = read_manifest(manifest_path)
    removed = tmp_path / df["path"].iloc[0]
    removed.unlink()
    assert _build(tmp_path, n_videos_per_domain=3, frames_per_video=1, workers=1) == manifest_path
    assert not removed.exists()  # skipped: nothing was rendered again

    _build(tmp_path, n_videos_per_domain=3, frames_per_video=2)
    rebuilt, _ = read_manifest(manifest_path, check_files=True)
    assert len(rebuilt) == 2 * len(df) and removed.exists()


def test_unfinished_build_is_redone(tmp_path):
    manifest_path = _build(tmp_path, n_videos_per_domain=3, frames_per_video=1)
    state_path = tmp_path / STATE_NAME
    state = json.loads(state_path.read_text())
    state_path.write_text(json.dumps({**state, "complete": False}))
    df, _ = read_manifest(manifest_path)
    removed = tmp_path / df["path"].iloc[0]
    removed.unlink()
    _build(tmp_path, n_videos_per_domain=3, frames_per_video=1)
    assert removed.exists() and json.loads(state_path.read_text())["complete"]


def test_refuses_to_overwrite_folders_it_did_not_write(tmp_path):
    (tmp_path / "SYN").mkdir()
    with pytest.raises(FileExistsError, match="SYN"):
        _build(tmp_path)


@pytest.mark.parametrize(
    ("n_videos", "fractions", "message"),
    [(2, (0.6, 0.2, 0.2), "too small"), (10, (0.5, 0.2, 0.2), "summing to 1"), (0, (0.6, 0.2, 0.2), "positive")],
)
def test_plan_rejects_bad_sizes(n_videos, fractions, message):
    with pytest.raises(ValueError, match=message):
        plan_videos(n_videos, split_fractions=fractions)


def test_plan_splits_sixty_twenty_twenty():
    reals = [s for s in plan_videos(10) if s.domain == REAL_DOMAIN]
    assert pd.Series([s.split for s in reals]).value_counts().to_dict() == {"train": 6, "val": 2, "test": 2}


def test_changed_strengths_rebuild_the_fakes(tmp_path):
    manifest_path = _build(tmp_path, n_videos_per_domain=3, frames_per_video=1)
    df, _ = read_manifest(manifest_path)
    fake = tmp_path / df.loc[df["domain"] == "SYN-SWAP", "path"].iloc[0]
    before = fake.read_bytes()
    _build(tmp_path, n_videos_per_domain=3, frames_per_video=1, strengths=replace(STRENGTHS, seam=0.2))
    assert json.loads((tmp_path / STATE_NAME).read_text())["parameters"]["strengths"]["seam"] == 0.2
    assert fake.read_bytes() != before


def test_cli_renders_and_reports(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    synth.register(parser.add_subparsers())
    args = parser.parse_args(
        ["synth", "--out", str(tmp_path), "--videos-per-domain", "3", "--frames", "1", "--size", "32"]
    )
    assert run_command(args) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "manifest.csv") in printed
    assert SEAMLESS_DOMAIN in printed and COMPRESSED_DOMAIN in printed
    read_manifest(tmp_path / "manifest.csv", check_files=True)
