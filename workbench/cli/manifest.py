"""``python -m workbench manifest``: labelled manifests from dataset frame trees or DeepfakeBench JSONs."""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

import pandas as pd

from workbench.cli import CommandError, add_command
from workbench.data.builders import BUILDERS, build_manifest, import_deepfakebench
from workbench.data.manifest import ManifestError, write_manifest

# command-line option -> builder keyword; each builder accepts a subset (checked before building)
BUILD_OPTIONS: dict[str, str] = {
    "compression": "--compression",
    "methods": "--methods",
    "splits_dir": "--splits",
    "version": "--version",
    "split": "--split",
    "include_train": "--include-train",
    "frames_per_video": "--frames-per-video",
    "allow_missing": "--allow-missing",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``manifest`` subcommand with ``build`` and ``import-deepfakebench``."""
    parser = subparsers.add_parser(
        "manifest",
        help="build a manifest CSV from a dataset's frames, or import a DeepfakeBench JSON",
        description="Make a validated manifest CSV (one row per frame; see data_manifests/schema.md).",
    )
    actions = parser.add_subparsers(dest="manifest_command", metavar="ACTION", required=True)

    build = add_command(
        actions,
        "build",
        run_build,
        errors=(ManifestError, ValueError),
        help="manifest of FF++, Celeb-DF, DFD, DFDC or DFDC-Preview from extracted frames",
        description=(
            "Read a dataset's frame tree in the layout described in data_manifests/README.md (as the dataset "
            "ships, with each video's frames in a frames/<video>/ folder, e.g. made by `preprocess`), label "
            "it from the dataset's own split/label files, check every file, and write the manifest."
        ),
    )
    build.add_argument("dataset", choices=sorted(BUILDERS), help="dataset family")
    build.add_argument("--root", type=Path, required=True, help="dataset root (the frame tree)")
    build.add_argument("--out", type=Path, required=True, help="manifest CSV to write")
    build.add_argument("--compression", choices=["raw", "c23", "c40"], help="ffpp, dfd: quality level (default: c23)")
    build.add_argument(
        "--methods", nargs="+", metavar="M", help="ffpp: manipulations DF F2F FS NT FSh (default: DF F2F FS NT)"
    )
    build.add_argument(
        "--splits", dest="splits_dir", type=Path, help="ffpp: folder with train/val/test.json (default: ROOT/splits)"
    )
    build.add_argument("--version", choices=["v1", "v2"], help="celebdf: Celeb-DF version (default: v2)")
    build.add_argument(
        "--split", choices=["train", "val", "test"], help="dfd, dfdc, dfdcp: put every video in this split"
    )
    build.add_argument(
        "--include-train", action="store_true", help="celebdf: add videos not in the test list as split train"
    )
    build.add_argument("--frames-per-video", type=int, help="keep this many evenly spaced frames per video")
    build.add_argument(
        "--allow-missing",
        action="store_true",
        help="leave out listed videos without frames (listed in OUT.missing.txt) instead of failing",
    )

    imported = add_command(
        actions,
        "import-deepfakebench",
        run_import,
        errors=(ManifestError, ValueError),
        help="convert a DeepfakeBench dataset JSON into a manifest",
        description=(
            "Convert {dataset: {label: {split: {[compression:] {video: {label, frames}}}}}} into a manifest: "
            "domain = label name, paths relative to --root (see data_manifests/schema.md)."
        ),
    )
    imported.add_argument("json", type=Path, help="DeepfakeBench dataset JSON")
    imported.add_argument("--root", type=Path, required=True, help="dataset root the frame paths are made relative to")
    imported.add_argument("--out", type=Path, required=True, help="manifest CSV to write")
    imported.add_argument(
        "--json-root", help="root as written in the JSON (when it was made on another machine); stripped from paths"
    )
    imported.add_argument("--compression", help="keep only this compression level (e.g. c23)")
    imported.add_argument("--frames-per-video", type=int, help="keep this many evenly spaced frames per video")


def _summary(df: pd.DataFrame) -> str:
    counts = df.groupby(["domain", "split", "label"]).agg(videos=("video", "nunique"), frames=("path", "size"))
    return counts.to_string()


def _write(df: pd.DataFrame, out: Path) -> None:
    """Write the manifest, print a summary, and list (or, when none, clear the listing of) missing videos."""
    write_manifest(df, out)
    print(_summary(df))
    print(f"wrote {out}: {len(df)} frames of {df['video'].nunique()} videos")
    missing = df.attrs.get("missing_videos", [])
    listing = out.with_name(out.name + ".missing.txt")
    if missing:
        listing.write_text("\n".join(missing) + "\n")
        print(f"warning: left out {len(missing)} video(s) without frames, listed in {listing}", file=sys.stderr)
    else:
        listing.unlink(missing_ok=True)  # a listing from an earlier run would describe another manifest


def run_build(args: argparse.Namespace) -> int:
    """Build the dataset's manifest."""
    accepted = inspect.signature(BUILDERS[args.dataset]).parameters
    # identity, not equality: 0 == False, and --frames-per-video 0 must reach the builder's check
    given = {key: getattr(args, key) for key in BUILD_OPTIONS}
    options = {key: value for key, value in given.items() if value is not None and value is not False}
    wrong = [BUILD_OPTIONS[key] for key in options if key not in accepted]
    if wrong:
        raise CommandError(f"{', '.join(wrong)} do(es) not apply to {args.dataset}")
    _write(build_manifest(args.dataset, args.root, **options), args.out)
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Convert the DeepfakeBench JSON."""
    df = import_deepfakebench(
        args.json,
        args.root,
        json_root=args.json_root,
        compression=args.compression,
        frames_per_video=args.frames_per_video,
    )
    _write(df, args.out)
    return 0
