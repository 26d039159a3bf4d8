"""``python -m workbench synth``: render the embedded synthetic face-forgery benchmark."""

from __future__ import annotations

import argparse

import pandas as pd

from workbench.cli import add_command
from workbench.data.manifest import read_manifest
from workbench.data.synthetic import generate_benchmark


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "synth",
        run,
        help="render the synthetic multi-domain face-forgery benchmark",
        description=(
            "Render the procedural face-forgery benchmark (SYN: reals + SWAP/REENACT/GAN/NT source domains; "
            "held-out SYN-SEAMLESS and SYN-COMPRESS) as PNG frames, masks and manifest.csv. "
            "A finished build with the same parameters is reused."
        ),
    )
    parser.add_argument("--out", required=True, help="output folder (the dataset root of the manifest)")
    parser.add_argument(
        "--videos-per-domain", type=int, default=100, help="real SYN videos, and fakes per source domain"
    )
    parser.add_argument(
        "--target-videos",
        type=int,
        default=None,
        help="videos of SYN-SEAMLESS and real + fake videos each of SYN-COMPRESS (default: --videos-per-domain)",
    )
    parser.add_argument("--frames", type=int, default=8, help="frames per video")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes; the output does not depend on it")


def run(args: argparse.Namespace) -> int:
    manifest_path = generate_benchmark(
        args.out,
        n_videos_per_domain=args.videos_per_domain,
        frames_per_video=args.frames,
        size=args.size,
        seed=args.seed,
        workers=args.workers,
        n_target_videos=args.target_videos,
    )
    df, _ = read_manifest(manifest_path, check_files=False)
    print(f"manifest: {manifest_path}")
    counts = pd.crosstab([df["dataset"], df["domain"], df["label"]], df["split"], margins=True, margins_name="total")
    print("images per domain and split:")
    print(counts.to_string())
    return 0
