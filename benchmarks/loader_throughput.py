"""Decoded images per second of the frame loader, per DataLoader worker count, for PNG or JPEG face crops.

    python -m benchmarks.loader_throughput --format png --size 256 --workers 0 1 2 --images 512

Writes ``--images`` face-like crops into a temporary folder (the synthetic benchmark's procedural
renderer: skin, hair, eyes, optics blur, sensor noise and a JPEG round trip, 32 frames per identity,
so the files compress like real face crops rather than like noise), then reads all of them through
``workbench.data.FrameDataset`` (no caching) and a ``torch.utils.data.DataLoader`` (``--batch``,
``collate_frames``, in order) once per worker count. The files were just written, so they come from
the page cache: the rate is decoding plus tensor conversion, not disk reads. ``workers=0`` decodes in
the calling process, which is how the trainer reads its training batches; there the tensor conversion
runs with PyTorch's intra-op threads (``--torch-threads``; DataLoader workers always use one).

One JSON line per worker count: ``format``, ``size``, ``images``, ``batch``, ``workers``, ``seconds``
(the whole pass, worker start-up included), ``img_s``, ``img_s_per_worker`` (``img_s`` over
``max(workers, 1)``), ``first_batch_s``, ``steady_img_s`` (images after the first batch over the time
after it; null with a single batch), ``mean_file_kib``, ``torch_threads`` (of the calling process),
``cpu_count`` and ``load_avg_1min`` (other processes compete for the cores; the rate is only as good
as the machine was idle).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from workbench.data.images import FrameDataset, collate_frames
from workbench.data.synthetic_faces import capture, jpeg, render_face
from workbench.data.synthetic_identities import sample_camera, sample_identity, sample_poses

FORMATS: dict[str, str] = {"png": ".png", "jpeg": ".jpg"}
FRAMES_PER_IDENTITY = 32


def face_crops(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` uint8 BGR face crops ``[size, size, 3]``: one rendered identity per 32 frames, pose varying."""
    rng = np.random.default_rng(seed)
    crops: list[np.ndarray] = []
    while len(crops) < n:
        identity, camera = sample_identity(rng), sample_camera(rng)
        for pose in sample_poses(rng, min(FRAMES_PER_IDENTITY, n - len(crops))):
            image = capture(render_face(identity, pose, size).image, camera, rng)
            crops.append(jpeg(image, camera.jpeg_quality))
    return crops


def write_crops(
    folder: str | Path, crops: Sequence[np.ndarray], image_format: str, jpeg_quality: int = 95
) -> pd.DataFrame:
    """Write the crops as ``<folder>/frames/NNNNN.<ext>`` and return a manifest of them (labels all 0).

    PNGs are written with OpenCV's default settings, as ``workbench preprocess`` writes its crops.
    """
    if image_format not in FORMATS:
        raise ValueError(f"image format {image_format!r} is not one of {sorted(FORMATS)}")
    folder = Path(folder)
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if image_format == "jpeg" else []
    rows = []
    for i, crop in enumerate(crops):
        path = f"frames/{i:05d}{FORMATS[image_format]}"
        if not cv2.imwrite(str(folder / path), crop, params):
            raise OSError(f"cv2.imwrite could not write {folder / path}")
        rows.append(
            {
                "path": path,
                "label": 0,
                "domain": "BENCH",
                "video": f"v{i // FRAMES_PER_IDENTITY}",
                "split": "train",
                "dataset": "BENCH",
            }
        )
    return pd.DataFrame(rows)


def measure(dataset: FrameDataset, workers: int, batch: int) -> dict:
    """Read every item of ``dataset`` once through a DataLoader with ``workers`` processes; time it."""
    loader = DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=workers, collate_fn=collate_frames)
    seen, first_batch_images, first_batch_s = 0, 0, 0.0
    start = time.perf_counter()
    for images, _, _ in loader:
        seen += len(images)
        if not first_batch_images:
            first_batch_s, first_batch_images = time.perf_counter() - start, len(images)
    seconds = time.perf_counter() - start
    if seen != len(dataset):
        raise RuntimeError(f"the loader returned {seen} images, expected {len(dataset)}")
    steady_s = seconds - first_batch_s
    steady = (seen - first_batch_images) / steady_s if seen > first_batch_images and steady_s > 0 else None
    img_s = seen / seconds
    return {
        "workers": workers,
        "seconds": seconds,
        "img_s": img_s,
        "img_s_per_worker": img_s / max(workers, 1),
        "first_batch_s": first_batch_s,
        "steady_img_s": steady,
    }


def run(args: argparse.Namespace, emit: Callable[[dict], None]) -> list[dict]:
    """Write the crops (into ``args.dir`` or a temporary folder), then measure each worker count."""
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    crops = face_crops(args.images, args.size, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="loader_bench_") as scratch:
        folder = Path(args.dir) if args.dir else Path(scratch)
        manifest = write_crops(folder, crops, args.format, args.jpeg_quality)
        mean_kib = float(np.mean([(folder / p).stat().st_size for p in manifest["path"]])) / 1024.0
        dataset = FrameDataset(manifest, folder, args.size, cache=False)
        results = []
        for workers in args.workers:
            result = {
                "format": args.format,
                "size": args.size,
                "images": args.images,
                "batch": args.batch,
                **measure(dataset, workers, args.batch),
                "mean_file_kib": mean_kib,
                "torch_threads": torch.get_num_threads(),
                "cpu_count": os.cpu_count(),
                "load_avg_1min": os.getloadavg()[0],
            }
            emit(result)
            results.append(result)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.loader_throughput",
        description="Write face-like crops, then time decoding them through FrameDataset + DataLoader for each "
        "worker count; print one JSON line per worker count.",
    )
    parser.add_argument("--format", default="png", choices=sorted(FORMATS), help="file format of the crops")
    parser.add_argument("--size", type=int, default=256, help="crop side in pixels (read at this size, no resize)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader worker counts to time")
    parser.add_argument("--images", type=int, default=512, help="number of crops written and read per worker count")
    parser.add_argument("--batch", type=int, default=32, help="DataLoader batch size")
    parser.add_argument("--jpeg-quality", type=int, default=95, help="quality of --format jpeg files")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="PyTorch intra-op threads of this process (default 0: leave PyTorch's default)",
    )
    parser.add_argument("--dir", help="write the crops here and keep them (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.torch_threads < 0:
        parser.error(f"--torch-threads {args.torch_threads} must be >= 0")
    if any(w < 0 for w in args.workers):
        parser.error(f"--workers {args.workers}: worker counts must be >= 0")
    for name in ("size", "images", "batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)} must be >= 1")
    if not 1 <= args.jpeg_quality <= 100:
        parser.error(f"--jpeg-quality {args.jpeg_quality} must be in 1..100")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    run(parse_args(argv), emit=lambda r: print(json.dumps(r), flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
