"""``python -m workbench predict MODEL INPUT... --out DIR``: score images and videos with a trained detector."""

from __future__ import annotations

import argparse
import sys

from workbench.analysis.detector import load_detector
from workbench.analysis.media_scores import score_media
from workbench.cli import USER_ERRORS, CommandError, add_command
from workbench.data.face_cropper import FaceCropper
from workbench.data.faces import DETECTORS
from workbench.data.media import MediaError, find_media
from workbench.data.preprocess_video import PreprocessConfig
from workbench.training.runs import CHECKPOINT_SELECTIONS
from workbench.viz.media_summary import write_summary

DEFAULTS = PreprocessConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "predict",
        run,
        errors=(*USER_ERRORS, MediaError, ValueError),
        help="score images and videos (fake probability per frame and per video)",
        description=(
            "Find and crop faces as `preprocess` does (same detector, margin and crop size), score every sampled "
            "frame with the model (with several faces, the most suspicious one), a video by the mean over its "
            "frames. Frames without a face and unreadable files are reported, never scored. Writes "
            "frame_scores.csv, media_scores.csv, scores.json, timelines/*.png, suspicious_frames.png (Grad-CAM) "
            "and summary.html under --out."
        ),
    )
    parser.add_argument("model", help="a run folder (its selected checkpoint) or a weights file (with --arch)")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="images, videos, or folders of either")
    parser.add_argument("--out", required=True, help="output folder")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument(
        "--selection",
        choices=CHECKPOINT_SELECTIONS,
        default="source_val",
        help="for a run folder: the selection rule whose kept model scores (default source_val)",
    )
    chosen.add_argument("--checkpoint", help="for a run folder: a file name under checkpoints/ instead")
    parser.add_argument("--arch", help="for a weights file: its backbone (a timm or deepfakebench_* name)")
    parser.add_argument("--image-size", type=int, help="model input size (default: the run's, or the backbone's)")
    parser.add_argument(
        "--frames",
        type=int,
        default=DEFAULTS.frames,
        help=f"evenly spaced frames scored per video (default {DEFAULTS.frames}, as preprocess)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=DEFAULTS.size,
        help=f"face crop size in pixels, as given to preprocess (default {DEFAULTS.size})",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=DEFAULTS.margin,
        help=f"crop side ÷ face box side, as given to preprocess (default {DEFAULTS.margin})",
    )
    parser.add_argument(
        "--detector",
        choices=sorted(DETECTORS),
        default=DEFAULTS.detector,
        help=f"face detector, as given to preprocess (default {DEFAULTS.detector})",
    )
    parser.add_argument("--top", type=int, default=6, help="suspicious frames shown with Grad-CAM (default 6)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Score the inputs and write the outputs; 2 when some files could not be read (the others are scored and
    written)."""
    if args.frames < 1 or args.top < 1:
        raise CommandError(f"--frames and --top must be at least 1, got {args.frames} and {args.top}")
    files = find_media(args.inputs)
    cropper = FaceCropper(args.detector, args.margin, args.size)
    detector = load_detector(
        args.model,
        checkpoint=args.checkpoint,
        selection=args.selection,
        architecture=args.arch,
        image_size=args.image_size,
        device=args.device,
    )
    scores = score_media(detector, cropper, files, args.frames, args.progress)
    page = write_summary(scores, detector, args.out, args.top)
    media = scores.media
    print(media[["media", "status", "frames_scored", "frames_without_face", "score"]].to_string(index=False))
    for row in scores.failed.itertuples():
        print(f"UNREADABLE {row.media}: {row.error}", file=sys.stderr)
    print(f"wrote {page}")
    return 2 if not scores.failed.empty else 0
