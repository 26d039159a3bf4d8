"""One video's crops: mask videos cut with the face boxes, and no crops left by a video that fails."""

from pathlib import Path

import cv2
import pandas as pd
from test_preprocess import astronaut_clip, box_masks, write_video

from workbench.data import preprocess_video
from workbench.data.preprocess import preprocess_videos
from workbench.data.preprocess_video import PreprocessError


def test_mask_videos_are_cropped_with_the_face_boxes(tmp_path):
    frames, boxes = astronaut_clip()
    write_video(tmp_path / "videos" / "a" / "clip.avi", frames)
    write_video(tmp_path / "masks" / "a" / "clip.avi", box_masks(boxes))
    write_video(tmp_path / "videos" / "a" / "no_mask.avi", frames)
    out = tmp_path / "out"
    preprocess_videos(tmp_path / "videos", out, frames=3, size=40, masks_dir=tmp_path / "masks", progress=False)
    table = pd.read_csv(out / "frames.csv", dtype={"video": str})
    with_mask = table[table["video"] == "a/clip"]
    assert with_mask["mask_path"].tolist() == [f"masks/a/clip/{i:04d}.png" for i in (0, 6, 11)]
    assert table.loc[table["video"] == "a/no_mask", "mask_path"].isna().all()
    for rel in with_mask["mask_path"]:
        mask = cv2.imread(str(out / rel), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (40, 40)
        assert mask[20, 20] > 200 and mask[1, 1] < 50  # face in the middle, background at the edge


def test_mask_videos_are_found_whatever_the_case_of_their_extension(tmp_path):
    frames, boxes = astronaut_clip()
    write_video(tmp_path / "videos" / "clip.avi", frames).rename(tmp_path / "videos" / "clip.AVI")
    write_video(tmp_path / "masks" / "clip.avi", box_masks(boxes)).rename(tmp_path / "masks" / "clip.AVI")
    out = tmp_path / "out"
    preprocess_videos(tmp_path / "videos", out, frames=2, size=32, masks_dir=tmp_path / "masks", progress=False)
    assert pd.read_csv(out / "frames.csv")["mask_path"].tolist() == ["masks/clip/0000.png", "masks/clip/0011.png"]

    write_video(tmp_path / "masks" / "clip.mp4", box_masks(boxes))
    again = preprocess_videos(
        tmp_path / "videos", tmp_path / "out2", frames=2, size=32, masks_dir=tmp_path / "masks", progress=False
    )
    assert [video for video, _ in again.failed] == ["clip"]
    assert "several mask videos" in again.failed[0][1] and "clip.AVI" in again.failed[0][1]


def test_a_mask_video_of_another_size_fails_its_video_naming_both_sizes(tmp_path):
    frames, boxes = astronaut_clip()
    write_video(tmp_path / "videos" / "clip.avi", frames)
    write_video(tmp_path / "masks" / "clip.avi", box_masks(boxes, scale=0.5))
    out = tmp_path / "out"
    summary = preprocess_videos(
        tmp_path / "videos", out, frames=2, size=32, masks_dir=tmp_path / "masks", progress=False
    )
    [(video, error)] = summary.failed
    assert video == "clip"
    assert str(tmp_path / "masks" / "clip.avi") in error and "160x120" in error and "320x240" in error
    assert not (out / "frames" / "clip").exists() and not (out / "masks" / "clip").exists()


def test_a_video_that_fails_partway_leaves_no_crops(tmp_path, monkeypatch):
    frames, boxes = astronaut_clip()
    write_video(tmp_path / "videos" / "clip.avi", frames)
    write_video(tmp_path / "masks" / "clip.avi", box_masks(boxes))
    write_png = preprocess_video.write_png

    def disk_full_at_frame_6(path, image):
        if path.name == "0006.png":
            raise PreprocessError(f"cannot write {str(path)!r}")
        write_png(path, image)

    monkeypatch.setattr(preprocess_video, "write_png", disk_full_at_frame_6)
    out = tmp_path / "out"
    summary = preprocess_videos(
        tmp_path / "videos", out, frames=3, size=32, masks_dir=tmp_path / "masks", progress=False
    )
    assert [video for video, _ in summary.failed] == ["clip"]
    assert [path.name for path in out.iterdir() if path.is_dir()] == []  # no frames/, masks/, index/, incomplete/


def test_discarding_a_video_removes_its_index_so_a_rerun_redoes_it(tmp_path):
    """A worker can die after writing a video's index: its crops are deleted, so the index must go too."""
    out, rel = tmp_path / "out", Path("sub/clip.avi")
    for path in (preprocess_video.index_path(out, rel), out / "frames" / "sub" / "clip" / "0000.png"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    preprocess_video.discard_output(out, rel)
    assert not preprocess_video.index_path(out, rel).exists() and not (out / "frames" / "sub" / "clip").exists()
