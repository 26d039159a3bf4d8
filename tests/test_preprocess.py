"""Face preprocessing on short videos made here from public-domain photos (moved and rescaled)."""

import argparse
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from test_faces import ASTRONAUT_FACE, GRACE_HOPPER_FACE, astronaut_bgr, grace_hopper_bgr, iou

from workbench.cli import preprocess as preprocess_cli
from workbench.cli import run_command
from workbench.data.faces import DETECTORS, Box, HaarFaceDetector, crop_window, square_crop
from workbench.data.preprocess import find_videos, preprocess_videos
from workbench.data.preprocess_video import PreprocessError
from workbench.data.video import read_frames_at

CANVAS = (240, 320)  # height, width
N_FRAMES = 12
SAMPLED = [0, 2, 4, 7, 9, 11]  # round(linspace(0, 11, 6)) = round(0, 2.2, 4.4, 6.6, 8.8, 11)
FOURCC = {".avi": "MJPG", ".mp4": "mp4v"}


def place(photo, face, scale, offset):
    """Paste the photo, scaled, at ``offset`` on a grey canvas; return the frame and the face's box in it."""
    scaled = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((*CANVAS, 3), 127, np.uint8)
    ox, oy = offset
    h, w = min(scaled.shape[0], CANVAS[0] - oy), min(scaled.shape[1], CANVAS[1] - ox)
    frame[oy : oy + h, ox : ox + w] = scaled[:h, :w]
    box = Box(round(face.x * scale + ox), round(face.y * scale + oy), round(face.w * scale), round(face.h * scale))
    return frame, box


def moving_face(photo, face, scales, start, end):
    """N_FRAMES frames of the photo moving from ``start`` to ``end`` while its scale changes."""
    frames, boxes = [], []
    for t in np.linspace(0, 1, N_FRAMES):
        offset = (round(start[0] + (end[0] - start[0]) * t), round(start[1] + (end[1] - start[1]) * t))
        frame, box = place(photo, face, scales[0] + (scales[1] - scales[0]) * t, offset)
        frames.append(frame)
        boxes.append(box)
    return frames, boxes


def box_masks(boxes, scale: float = 1.0):
    """Mask frames of CANVAS size times ``scale``: white inside each face box, black elsewhere."""
    masks = []
    for box in boxes:
        mask = np.zeros((round(CANVAS[0] * scale), round(CANVAS[1] * scale)), np.uint8)
        top, left = round(box.y * scale), round(box.x * scale)
        mask[top : top + round(box.h * scale), left : left + round(box.w * scale)] = 255
        masks.append(mask)
    return masks


def corrupt_frame(path: Path, index: int) -> None:
    """Zero frame ``index``'s JPEG (not the last frame's) in an MJPG AVI, so that this frame no longer decodes."""
    data = bytearray(path.read_bytes())
    starts = [match.start() for match in re.finditer(b"\xff\xd8\xff", data)]
    assert len(starts) > index + 1, f"{path} holds {len(starts)} JPEG frames"
    end = starts[index + 1] - 16  # up to the next frame's AVI chunk header
    data[starts[index] : end] = bytes(end - starts[index])
    path.write_bytes(bytes(data))


def run_cli(argv) -> int:
    parser = argparse.ArgumentParser()
    preprocess_cli.register(parser.add_subparsers(required=True))
    args = parser.parse_args(["preprocess", *argv])
    return run_command(args)


def write_video(path: Path, frames) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC[path.suffix]), 10, (width, height))
    for frame in frames:
        writer.write(frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


# Haar picks a false positive (larger than the face) in about 1 frame in 70 of such clips; these two
# motions are free of them, so that the tests below check the pipeline rather than Haar's accuracy.
def astronaut_clip():
    return moving_face(astronaut_bgr(), ASTRONAUT_FACE, scales=(0.3, 0.45), start=(10, 5), end=(120, 40))


def grace_clip():
    return moving_face(grace_hopper_bgr(), GRACE_HOPPER_FACE, scales=(0.5, 0.35), start=(100, 30), end=(0, 0))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two clips in a nested tree, with the hand-annotated face box of every frame."""
    root = tmp_path_factory.mktemp("videos")
    truth = {}
    for rel, clip in (("astronaut.avi", astronaut_clip), ("sub/grace.mp4", grace_clip)):
        frames, boxes = clip()
        write_video(root / rel, frames)
        truth[Path(rel).with_suffix("").as_posix()] = boxes
    return root, truth


@pytest.fixture(scope="module")
def processed(videos, tmp_path_factory):
    root, truth = videos
    out = tmp_path_factory.mktemp("crops")
    summary = preprocess_videos(root, out, frames=6, size=64, progress=False)
    return out, summary


def test_find_videos_is_recursive_and_sorted(videos):
    root, _ = videos
    assert find_videos(root) == [Path("astronaut.avi"), Path("sub/grace.mp4")]


def test_undecodable_frames_are_reported_and_the_crops_come_from_the_right_frames(tmp_path):
    frames, boxes = astronaut_clip()
    corrupt_frame(write_video(tmp_path / "in" / "clip.avi", frames), 9)
    out = tmp_path / "out"
    summary = preprocess_videos(tmp_path / "in", out, frames=6, size=32, progress=False)
    assert (summary.frames_written, summary.frames_unreadable, summary.unreadable) == (6, 3, [("clip", 3)])
    assert "UNREADABLE clip: 3 frame(s) from an undecodable one on were not used" in summary.format()
    table = pd.read_csv(out / "frames.csv", dtype={"video": str})
    assert table["frame"].tolist() == [0, 2, 3, 5, 6, 8]  # evenly over the 9 frames before the damage
    for row in table.itertuples():
        assert iou(Box(row.box_x, row.box_y, row.box_w, row.box_h), boxes[row.frame]) > 0.5, row.frame
    unreadable = pd.read_csv(out / "unreadable_frames.csv", dtype={"video": str})
    assert list(zip(unreadable["video"], unreadable["frame"])) == [("clip", 9), ("clip", 10), ("clip", 11)]
    assert pd.read_csv(out / "failed_videos.csv").empty
    preprocess_videos(tmp_path / "in", out, frames=6, size=32, progress=False)  # skips the video, keeps the report
    pd.testing.assert_frame_equal(pd.read_csv(out / "unreadable_frames.csv", dtype={"video": str}), unreadable)


def test_crops_are_written_for_evenly_spaced_frames(processed):
    out, summary = processed
    assert (summary.videos_found, summary.videos_processed, summary.videos_skipped) == (2, 2, 0)
    assert (summary.frames_sampled, summary.frames_written, summary.frames_without_face) == (12, 12, 0)
    assert summary.failed == []
    table = pd.read_csv(out / "frames.csv", dtype={"video": str})
    assert sorted(table["video"].unique()) == ["astronaut", "sub/grace"]
    for name, rows in table.groupby("video"):
        assert rows["frame"].tolist() == SAMPLED
        assert rows["path"].tolist() == [f"frames/{name}/{i:04d}.png" for i in SAMPLED]
        assert rows["mask_path"].isna().all()
    assert pd.read_csv(out / "no_face_report.csv").empty
    assert pd.read_csv(out / "failed_videos.csv").empty


def test_crops_contain_the_annotated_face(processed, videos):
    out, _ = processed
    root, truth = videos
    table = pd.read_csv(out / "frames.csv", dtype={"video": str})
    for row in table.itertuples():
        face = truth[row.video][row.frame]
        box = Box(row.box_x, row.box_y, row.box_w, row.box_h)
        assert iou(box, face) > 0.5, (row.video, row.frame)
        window = crop_window(box, 1.3)
        cx, cy = face.center
        assert window.x + window.w / 4 < cx < window.x + 3 * window.w / 4
        assert window.y + window.h / 4 < cy < window.y + 3 * window.h / 4
        crop = cv2.imread(str(out / row.path))
        assert crop.shape == (64, 64, 3)


def test_each_crop_is_cut_from_its_own_source_frame(processed, videos):
    out, _ = processed
    root, _ = videos
    table = pd.read_csv(out / "frames.csv", dtype={"video": str})
    rows = table[table["video"] == "astronaut"]
    decoded = read_frames_at(root / "astronaut.avi", rows["frame"])
    for row in rows.itertuples():
        expected = square_crop(decoded[row.frame], Box(row.box_x, row.box_y, row.box_w, row.box_h), 1.3, 64)
        np.testing.assert_array_equal(cv2.imread(str(out / row.path)), expected)


def test_rerun_skips_finished_videos_and_redoes_unfinished_ones(videos, tmp_path):
    root, _ = videos
    out = tmp_path / "crops"
    preprocess_videos(root, out, frames=4, size=32, progress=False)
    first = pd.read_csv(out / "frames.csv")
    crop = out / first.loc[0, "path"]
    stamp = crop.stat().st_mtime_ns

    again = preprocess_videos(root, out, frames=4, size=32, progress=False)
    assert (again.videos_skipped, again.videos_processed, again.frames_written) == (2, 0, 0)
    assert crop.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(pd.read_csv(out / "frames.csv"), first)

    (out / "index" / "sub" / "grace.csv").unlink()  # as if the run had stopped inside this video
    resumed = preprocess_videos(root, out, frames=4, size=32, progress=False)
    assert (resumed.videos_skipped, resumed.videos_processed, resumed.frames_written) == (1, 1, 4)
    pd.testing.assert_frame_equal(pd.read_csv(out / "frames.csv"), first)


def test_resuming_with_other_settings_is_refused(videos, tmp_path):
    root, _ = videos
    preprocess_videos(root, tmp_path, frames=2, size=32, progress=False)
    with pytest.raises(PreprocessError, match="resume with the same settings"):
        preprocess_videos(root, tmp_path, frames=3, size=32, progress=False)


def test_frames_without_a_face_are_reported_not_lost(tmp_path):
    frames, _ = astronaut_clip()
    blank = np.full_like(frames[0], 127)
    write_video(tmp_path / "in" / "gaps.avi", [blank if i in (4, 7) else f for i, f in enumerate(frames)])
    write_video(tmp_path / "in" / "empty.avi", [blank] * N_FRAMES)
    summary = preprocess_videos(tmp_path / "in", tmp_path / "out", frames=6, size=32, progress=False)
    assert (summary.frames_written, summary.frames_without_face, summary.videos_without_face) == (4, 8, 1)
    report = pd.read_csv(tmp_path / "out" / "no_face_report.csv")
    expected = [("empty", i) for i in SAMPLED] + [("gaps", 4), ("gaps", 7)]
    assert list(zip(report["video"], report["frame"])) == expected
    assert (report["reason"] == "no face detected").all()
    table = pd.read_csv(tmp_path / "out" / "frames.csv")
    assert table["frame"].tolist() == [0, 2, 9, 11]
    assert "no face at all" in summary.format()


def test_an_unreadable_video_is_reported_and_the_others_are_processed(videos, tmp_path):
    root, _ = videos
    tree = tmp_path / "in"
    shutil.copytree(root, tree)
    (tree / "broken.mp4").write_bytes(b"this is not a video")
    summary = preprocess_videos(tree, tmp_path / "out", frames=2, size=32, progress=False)
    assert summary.videos_processed == 2 and summary.frames_written == 4
    assert [video for video, _ in summary.failed] == ["broken"]
    failed = pd.read_csv(tmp_path / "out" / "failed_videos.csv")
    assert failed["video"].tolist() == ["broken"] and "broken.mp4" in failed.loc[0, "error"]
    assert "FAILED broken" in summary.format()
    retry = preprocess_videos(tree, tmp_path / "out", frames=2, size=32, progress=False)
    assert retry.videos_skipped == 2 and [video for video, _ in retry.failed] == ["broken"]


@pytest.mark.slow  # spawning workers re-imports the package (torch included): about 10 s
def test_parallel_workers_give_the_same_result(videos, processed, tmp_path):
    root, _ = videos
    out, _ = processed
    summary = preprocess_videos(root, tmp_path, frames=6, size=64, workers=2, progress=False)
    assert summary.frames_written == 12
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "frames.csv"), pd.read_csv(out / "frames.csv"))


def test_bad_arguments_are_rejected_with_the_reason(videos, tmp_path):
    root, _ = videos
    with pytest.raises(PreprocessError, match="does not exist"):
        preprocess_videos(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PreprocessError, match="no videos"):
        preprocess_videos(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ValueError, match="margin"):
        preprocess_videos(root, tmp_path / "out", margin=0.5)
    with pytest.raises(ValueError, match="unknown face detector"):
        preprocess_videos(root, tmp_path / "out", detector="nope")


def test_videos_differing_only_in_extension_are_refused(tmp_path):
    frames, _ = astronaut_clip()
    write_video(tmp_path / "in" / "clip.v1.avi", frames[:2])
    write_video(tmp_path / "in" / "clip.v1.mp4", frames[:2])
    with pytest.raises(PreprocessError, match="would share the output folder clip.v1"):
        preprocess_videos(tmp_path / "in", tmp_path / "out")


def test_a_video_whose_output_folder_would_hold_anothers_is_refused(tmp_path):
    for rel in ("clip.avi", "clip/take2.avi", "clip2.avi"):
        (tmp_path / "in" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / rel).write_bytes(b"")
    expected = r"clip.avi and clip/take2.avi would nest their output folders \(frames/clip holds frames/clip/take2"
    with pytest.raises(PreprocessError, match=expected):
        find_videos(tmp_path / "in")
    with pytest.raises(PreprocessError, match=expected):
        preprocess_videos(tmp_path / "in", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_parallel_run_refuses_a_detector_that_workers_cannot_import(videos, tmp_path, monkeypatch):
    root, _ = videos

    def notebook_detector():
        return HaarFaceDetector()

    notebook_detector.__module__ = "__main__"
    monkeypatch.setitem(DETECTORS, "mine", notebook_detector)
    with pytest.raises(PreprocessError, match="defined in __main__"):
        preprocess_videos(root, tmp_path, detector="mine", workers=2, progress=False)
    assert preprocess_videos(root, tmp_path, detector="mine", frames=1, workers=1, progress=False).frames_written == 2


def test_resuming_with_another_masks_folder_is_refused_naming_both(tmp_path):
    frames, boxes = astronaut_clip()
    write_video(tmp_path / "videos" / "clip.avi", frames[:2])
    for name in ("masks_a", "masks_b"):
        write_video(tmp_path / name / "clip.avi", box_masks(boxes[:2]))
    out = tmp_path / "out"
    preprocess_videos(tmp_path / "videos", out, frames=1, size=32, masks_dir=tmp_path / "masks_a", progress=False)
    old, new = str((tmp_path / "masks_a").resolve()), str((tmp_path / "masks_b").resolve())
    assert json.loads((out / "preprocess_config.json").read_text())["masks"] == old
    with pytest.raises(PreprocessError, match=re.escape(f"masks was {old!r}, now {new!r}")):
        preprocess_videos(tmp_path / "videos", out, frames=1, size=32, masks_dir=tmp_path / "masks_b", progress=False)
    with pytest.raises(PreprocessError, match=re.escape(f"masks was {old!r}, now None")):
        preprocess_videos(tmp_path / "videos", out, frames=1, size=32, progress=False)


def test_settings_saved_before_the_masks_folder_was_recorded_still_resume_without_masks(tmp_path):
    write_video(tmp_path / "videos" / "clip.avi", astronaut_clip()[0][:2])
    settings = {"frames": 1, "size": 32, "margin": 1.3, "detector": "haar", "masks": False}
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "preprocess_config.json").write_text(json.dumps(settings))
    assert (
        preprocess_videos(tmp_path / "videos", tmp_path / "out", frames=1, size=32, progress=False).frames_written == 1
    )


def test_settings_saved_with_masks_before_the_folder_was_recorded_resume_with_a_masks_folder(tmp_path):
    write_video(tmp_path / "videos" / "clip.avi", astronaut_clip()[0][:2])
    (tmp_path / "masks").mkdir()
    settings = {"frames": 1, "size": 32, "margin": 1.3, "detector": "haar", "masks": True}
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "preprocess_config.json").write_text(json.dumps(settings))
    with pytest.raises(PreprocessError, match="masks was True, now None"):  # dropping the masks is a change
        preprocess_videos(tmp_path / "videos", tmp_path / "out", frames=1, size=32, progress=False)
    preprocess_videos(
        tmp_path / "videos", tmp_path / "out", masks_dir=tmp_path / "masks", frames=1, size=32, progress=False
    )
    saved = json.loads((tmp_path / "out" / "preprocess_config.json").read_text())
    assert saved["masks"] == str((tmp_path / "masks").resolve())  # the folder is recorded from now on


def test_an_output_folder_that_is_a_file_is_an_input_error(videos, tmp_path, capsys):
    root, _ = videos
    (tmp_path / "taken").write_text("")
    for out in (tmp_path / "taken", tmp_path / "taken" / "sub"):
        assert run_cli(["--videos", str(root), "--out", str(out), "--workers", "1", "--no-progress"]) == 1
        assert f"error: output folder {str(out)!r} cannot be made: {str(tmp_path / 'taken')!r} is a file" in (
            capsys.readouterr().err
        )
