"""``python -m workbench preprocess``: face crops from a folder of videos (resumable, parallel)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from workbench.cli import add_command
from workbench.data.faces import DETECTORS
from workbench.data.preprocess import preprocess_videos
from workbench.data.preprocess_video import PreprocessError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``preprocess`` subcommand."""
    parser = add_command(
        subparsers,
        "preprocess",
        run,
        errors=(PreprocessError, ValueError),
        help="crop faces from videos into PNG frames and a frames index",
        description=(
            "Sample --frames frames evenly spaced over each video under --videos (recursively), detect "
            "faces, keep the largest, cut a square of --margin times the face box (zero-padded past the "
            "image border) and resize it to --size. Writes OUT/frames/<video>/<frame>.png, mask crops "
            "under OUT/masks/ when --masks is given, OUT/frames.csv (the index), OUT/no_face_report.csv "
            "(sampled frames without a face), OUT/unreadable_frames.csv (frames that could not be decoded, "
            "skipped) and OUT/failed_videos.csv (videos that could not be processed, or whose worker died). "
            "Rerunning skips finished videos. "
            "Labelled manifests are then made with `manifest build` (see data_manifests/README.md)."
        ),
    )
    parser.add_argument("--videos", type=Path, required=True, help="folder of videos (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; reused to resume)")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled per video (default: 32)")
    parser.add_argument("--size", type=int, default=256, help="side of the square crops in pixels (default: 256)")
    parser.add_argument("--margin", type=float, default=1.3, help="crop side / face box side (default: 1.3)")
    parser.add_argument(
        "--masks",
        type=Path,
        help="folder of mask videos with the same relative paths as --videos (e.g. FF++ masks/videos); "
        "their frames are cropped with the face boxes; videos without a mask video get none",
    )
    parser.add_argument("--detector", choices=sorted(DETECTORS), default="haar", help="face detector (default: haar)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="parallel processes (default: number of CPU cores)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Preprocess and print the summary; 1 if any video failed."""
    summary = preprocess_videos(
        args.videos,
        args.out,
        frames=args.frames,
        size=args.size,
        margin=args.margin,
        detector=args.detector,
        masks_dir=args.masks,
        workers=args.workers,
        progress=not args.no_progress,
    )
    print(summary.format())
    reports = ("frames.csv", "no_face_report.csv", "unreadable_frames.csv", "failed_videos.csv")
    print(f"wrote {', '.join(str(args.out / name) for name in reports)}")
    if summary.failed:
        print(f"error: {len(summary.failed)} video(s) failed (listed above); rerun to retry them", file=sys.stderr)
        return 1
    return 0
