"""The ``preprocess`` and ``manifest`` subcommands, run through their own argument parsers."""

import argparse
import json

import pandas as pd
import pytest
from test_builders import PAIRS, dfb_tree, make_ffpp_tree, write_splits
from test_preprocess import astronaut_clip, write_video

from workbench.cli import manifest as manifest_cli
from workbench.cli import preprocess as preprocess_cli
from workbench.cli import run_command
from workbench.data.manifest import read_manifest


def run(module, argv):
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return run_command(args)


def test_preprocess_command_writes_crops_and_reports_failures(tmp_path, capsys):
    frames, _ = astronaut_clip()
    write_video(tmp_path / "videos" / "clip.avi", frames)
    argv = [
        "preprocess",
        "--videos",
        str(tmp_path / "videos"),
        "--out",
        str(tmp_path / "out"),
        "--frames",
        "3",
        "--size",
        "32",
        "--workers",
        "1",
        "--no-progress",
    ]
    assert run(preprocess_cli, argv) == 0
    assert "3 crops written, 0 without a face" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "out" / "frames.csv")["frame"].tolist() == [0, 6, 11]

    (tmp_path / "videos" / "bad.mp4").write_bytes(b"not a video")
    assert run(preprocess_cli, argv) == 1
    captured = capsys.readouterr()
    assert "1 already done (skipped)" in captured.out and "FAILED bad" in captured.out
    assert "1 video(s) failed" in captured.err


def test_preprocess_command_reports_bad_input(tmp_path, capsys):
    argv = ["preprocess", "--videos", str(tmp_path / "none"), "--out", str(tmp_path / "out"), "--no-progress"]
    assert run(preprocess_cli, argv) == 1
    assert "does not exist" in capsys.readouterr().err


def test_manifest_build_writes_a_valid_manifest(tmp_path, capsys):
    root = make_ffpp_tree(tmp_path / "ffpp")
    out = tmp_path / "manifests" / "ffpp_c23.csv"
    argv = [
        "manifest",
        "build",
        "ffpp",
        "--root",
        str(root),
        "--out",
        str(out),
        "--methods",
        "DF",
        "NT",
        "--frames-per-video",
        "2",
    ]
    assert run(manifest_cli, argv) == 0
    df, _ = read_manifest(out, root)
    assert set(df["domain"]) == {"FF-real", "FF-DF", "FF-NT"}
    assert len(df) == (6 + 2 * 6) * 2
    assert f"wrote {out}: {len(df)} frames of 18 videos" in capsys.readouterr().out


def test_manifest_build_rejects_options_of_other_datasets(tmp_path, capsys):
    out = str(tmp_path / "m.csv")
    argv = ["manifest", "build", "celebdf", "--root", str(tmp_path), "--out", out, "--methods", "DF"]
    assert run(manifest_cli, argv) == 1
    assert "--methods do(es) not apply to celebdf" in capsys.readouterr().err


def test_manifest_build_errors_and_allowed_missing_videos(tmp_path, capsys):
    root = make_ffpp_tree(tmp_path / "ffpp")
    (root / "splits" / "val.json").write_text(json.dumps(PAIRS["val"] + [["006", "007"]]))
    out = tmp_path / "m.csv"
    argv = ["manifest", "build", "ffpp", "--root", str(root), "--out", str(out)]
    assert run(manifest_cli, argv) == 1
    assert "have no frames: youtube/c23/006" in capsys.readouterr().err
    assert not out.exists()
    assert run(manifest_cli, argv + ["--allow-missing"]) == 0
    listed = (tmp_path / "m.csv.missing.txt").read_text().splitlines()
    assert len(listed) == 2 + 2 * 4 and listed[0].startswith("youtube/c23/006 ")
    assert "left out 10 video(s)" in capsys.readouterr().err
    write_splits(root / "splits", PAIRS)
    assert run(manifest_cli, argv + ["--allow-missing"]) == 0
    assert not (tmp_path / "m.csv.missing.txt").exists()  # the listing of the earlier run is gone


def test_manifest_build_rejects_zero_frames_per_video(tmp_path, capsys):
    root = make_ffpp_tree(tmp_path / "ffpp")
    out = tmp_path / "m.csv"
    argv = ["manifest", "build", "ffpp", "--root", str(root), "--out", str(out), "--frames-per-video", "0"]
    assert run(manifest_cli, argv) == 1
    assert "frames per video must be at least 1, got 0" in capsys.readouterr().err
    assert not out.exists()


def test_manifest_import_deepfakebench(tmp_path, capsys):
    path = tmp_path / "FF.json"
    path.write_text(json.dumps(dfb_tree(tmp_path / "data")))
    out = tmp_path / "ff.csv"
    argv = ["manifest", "import-deepfakebench", str(path), "--root", str(tmp_path / "data"), "--out", str(out)]
    assert run(manifest_cli, argv) == 0
    df, _ = read_manifest(out, tmp_path / "data")
    assert set(df["domain"]) == {"FF-real", "FF-DF"} and len(df) == 9
    path.write_text(path.read_text().replace(str(tmp_path / "data"), "/elsewhere"))
    assert run(manifest_cli, argv) == 1
    assert run(manifest_cli, argv + ["--json-root", "/elsewhere"]) == 0
    assert read_manifest(out, tmp_path / "data")[0]["path"].str.startswith("FF/c23/frames/").all()
    path.write_text("[]")
    assert run(manifest_cli, argv) == 1
    assert "expected an object of datasets" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["manifest", "build", "--help"], ["preprocess", "--help"]])
def test_help_describes_the_commands(argv, capsys):
    module = manifest_cli if argv[0] == "manifest" else preprocess_cli
    with pytest.raises(SystemExit):
        run(module, argv)
    assert "data_manifests/README.md" in capsys.readouterr().out
