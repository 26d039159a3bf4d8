"""Embedded multi-domain face-forgery benchmark: generated on demand, deterministic, no download.

Layout of the benchmark (domain names are a contract other code and configs rely on):

* dataset ``SYN``: reals ``SYN-real`` (videos split train/val/test, 60/20/20 by default) and four
  source forgery domains ``SYN-SWAP``, ``SYN-REENACT``, ``SYN-GAN``, ``SYN-NT``, one fake video per
  real video, made from that video's frames (``source_video``) and in its split, so no identity
  crosses splits. Held-out target ``SYN-SEAMLESS`` (test only): colour-matched swaps with a very
  soft boundary, made from the test reals. Swap donors are fresh identities used nowhere else.
* dataset ``SYN-C``: held-out target ``SYN-COMPRESS`` (test only) with reals and fakes of its own
  identities, both strongly JPEG-compressed (quality 25-40, vs 75-95 in SYN) and blurred; fakes
  cycle through the four source manipulations, so the shift is in acquisition, not in manipulation.

Manifest rows carry the required columns of data_manifests/schema.md plus ``frame``, ``compression``
(JPEG quality), ``source_video`` and ``mask_path`` (soft mask of the changed pixels; empty for reals)
and an extra ``manipulation`` column (swap, reenact, gan, neural_texture, seamless; empty for reals).

Every random draw comes from a generator seeded by (seed, pool or domain, video, purpose[, frame]),
so the output is byte-identical for a seed whatever the number of workers.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from workbench.data.manifest import write_manifest
from workbench.data.synthetic_faces import to_uint8
from workbench.data.synthetic_forgeries import ForgeryStrengths
from workbench.data.synthetic_frames import COMPRESSED_DATASET, VideoSpec, prepare_video, render_frame, seeded_rng

GENERATOR_VERSION = 1
SOURCE_DATASET = "SYN"
REAL_DOMAIN = "SYN-real"
SOURCE_DOMAINS: dict[str, str] = {
    "SYN-SWAP": "swap",
    "SYN-REENACT": "reenact",
    "SYN-GAN": "gan",
    "SYN-NT": "neural_texture",
}
SEAMLESS_DOMAIN = "SYN-SEAMLESS"
COMPRESSED_DOMAIN = "SYN-COMPRESS"
TARGET_DOMAINS: tuple[str, ...] = (SEAMLESS_DOMAIN, COMPRESSED_DOMAIN)
MANIFEST_NAME = "manifest.csv"
STATE_NAME = "benchmark.json"


def _split_sizes(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    if len(fractions) != 3 or min(fractions) <= 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"split_fractions must be three positive numbers summing to 1, got {fractions}")
    n_val, n_test = max(1, round(n * fractions[1])), max(1, round(n * fractions[2]))
    sizes = (n - n_val - n_test, n_val, n_test)
    if sizes[0] < 1:
        raise ValueError(f"n_videos_per_domain={n} is too small to give every split a video with fractions {fractions}")
    return sizes


def plan_videos(
    n_videos_per_domain: int,
    *,
    seed: int = 0,
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    n_target_videos: int | None = None,
) -> list[VideoSpec]:
    """Every video of the benchmark, in manifest order (see the module docstring for the layout)."""
    if n_videos_per_domain < 1:
        raise ValueError(f"n_videos_per_domain must be positive, got {n_videos_per_domain}")
    n_target = n_videos_per_domain if n_target_videos is None else n_target_videos
    if n_target < 1:
        raise ValueError(f"n_target_videos must be positive, got {n_target_videos}")
    sizes = _split_sizes(n_videos_per_domain, split_fractions)
    order = seeded_rng(seed, "splits").permutation(n_videos_per_domain)
    split_of = {}
    for split, chunk in zip(("train", "val", "test"), np.split(order, np.cumsum(sizes)[:2])):
        split_of.update({int(i): split for i in chunk})

    def real_id(i: int) -> str:
        return f"{REAL_DOMAIN}_{i:04d}"

    specs = [
        VideoSpec(SOURCE_DATASET, REAL_DOMAIN, real_id(i), split_of[i], 0, SOURCE_DATASET, i)
        for i in range(n_videos_per_domain)
    ]
    for domain, manipulation in SOURCE_DOMAINS.items():
        specs += [
            VideoSpec(
                SOURCE_DATASET,
                domain,
                f"{domain}_{i:04d}",
                split_of[i],
                1,
                SOURCE_DATASET,
                i,
                manipulation,
                real_id(i),
                i,
            )
            for i in range(n_videos_per_domain)
        ]
    test_reals = [i for i in range(n_videos_per_domain) if split_of[i] == "test"]
    for j in range(n_target):
        i = test_reals[j % len(test_reals)]
        specs.append(
            VideoSpec(
                SOURCE_DATASET,
                SEAMLESS_DOMAIN,
                f"{SEAMLESS_DOMAIN}_{j:04d}",
                "test",
                1,
                SOURCE_DATASET,
                i,
                "seamless",
                real_id(i),
                j,
            )
        )
    manipulations = list(SOURCE_DOMAINS.values())
    for j in range(n_target):
        real = f"{COMPRESSED_DOMAIN}_real_{j:04d}"
        specs.append(VideoSpec(COMPRESSED_DATASET, COMPRESSED_DOMAIN, real, "test", 0, COMPRESSED_DATASET, j))
        specs.append(
            VideoSpec(
                COMPRESSED_DATASET,
                COMPRESSED_DOMAIN,
                f"{COMPRESSED_DOMAIN}_fake_{j:04d}",
                "test",
                1,
                COMPRESSED_DATASET,
                j,
                manipulations[j % len(manipulations)],
                real,
                j,
            )
        )
    return specs


@dataclass(frozen=True)
class _Job:
    spec: VideoSpec
    out_dir: str
    n_frames: int
    size: int
    seed: int
    strengths: ForgeryStrengths


def _frame_paths(spec: VideoSpec, frame: int) -> tuple[str, str]:
    folder = f"{spec.dataset}/{spec.domain}/{spec.video}"
    return f"{folder}/{frame:03d}.png", f"{folder}/{frame:03d}_mask.png"


def _render_video(job: _Job) -> list[dict]:
    spec = job.spec
    video = prepare_video(spec, job.n_frames, seed=job.seed, strengths=job.strengths)
    (Path(job.out_dir) / spec.dataset / spec.domain / spec.video).mkdir(parents=True, exist_ok=True)
    rows = []
    for frame in range(job.n_frames):
        image, mask = render_frame(video, frame, seed=job.seed, size=job.size, strengths=job.strengths)
        path, mask_path = _frame_paths(spec, frame)
        _write_png(Path(job.out_dir) / path, image)
        if mask is not None:
            _write_png(Path(job.out_dir) / mask_path, to_uint8(mask))
        rows.append(
            dict(
                path=path,
                label=spec.label,
                domain=spec.domain,
                video=spec.video,
                split=spec.split,
                dataset=spec.dataset,
                mask_path=mask_path if mask is not None else None,
                frame=frame,
                compression=f"jpeg{video.camera.jpeg_quality}",
                source_video=spec.source_video,
                manipulation=spec.manipulation,
            )
        )
    return rows


def _write_png(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"cv2.imwrite could not write {path}")


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers forked from a clean server process: a plain fork of a parent that already ran OpenCV or
    PyTorch thread pools can deadlock; the preload keeps start-up cheap."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _worker_init() -> None:
    cv2.setNumThreads(1)


def _is_finished(state_path: Path, parameters: dict) -> bool:
    try:
        state = json.loads(state_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return bool(state.get("complete")) and state.get("parameters") == parameters


def _clear_previous(out_dir: Path) -> None:
    """Remove a previous build's outputs; refuse to overwrite dataset folders this module did not write."""
    ours = [out_dir / SOURCE_DATASET, out_dir / COMPRESSED_DATASET, out_dir / MANIFEST_NAME]
    if not (out_dir / STATE_NAME).is_file():
        existing = [str(p) for p in ours if p.exists()]
        if existing:
            raise FileExistsError(f"{existing} exist but {out_dir / STATE_NAME} does not: refusing to overwrite them")
        return
    for path in ours:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def generate_benchmark(
    out_dir: str | Path,
    *,
    n_videos_per_domain: int,
    frames_per_video: int,
    size: int = 64,
    seed: int = 0,
    workers: int = 2,
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    n_target_videos: int | None = None,
    strengths: ForgeryStrengths | None = None,
) -> Path:
    """Render the benchmark into ``out_dir`` (PNG frames, PNG masks, ``manifest.csv``); return the manifest path.

    ``n_videos_per_domain`` real SYN videos (each with one fake per source manipulation);
    ``n_target_videos`` (default: the same) videos of SYN-SEAMLESS and real + fake videos each of
    SYN-COMPRESS. A finished build with the same parameters is reused (``benchmark.json``); any
    other build there is replaced. ``workers`` only changes the speed, never the output.
    """
    if frames_per_video < 1:
        raise ValueError(f"frames_per_video must be positive, got {frames_per_video}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    if workers < 1:
        raise ValueError(f"workers must be positive, got {workers}")
    strengths = strengths or ForgeryStrengths()
    out_dir = Path(out_dir)
    manifest_path = out_dir / MANIFEST_NAME
    state_path = out_dir / STATE_NAME
    parameters = dict(
        generator_version=GENERATOR_VERSION,
        n_videos_per_domain=n_videos_per_domain,
        frames_per_video=frames_per_video,
        size=size,
        seed=seed,
        split_fractions=list(split_fractions),
        n_target_videos=n_target_videos,
        strengths=strengths.as_dict(),
    )
    if _is_finished(state_path, parameters) and manifest_path.is_file():
        return manifest_path
    specs = plan_videos(
        n_videos_per_domain, seed=seed, split_fractions=split_fractions, n_target_videos=n_target_videos
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(out_dir)
    state_path.write_text(json.dumps({"parameters": parameters, "complete": False}, indent=2))
    jobs = [_Job(spec, str(out_dir), frames_per_video, size, seed, strengths) for spec in specs]
    if workers == 1:
        per_video = [_render_video(job) for job in jobs]
    else:
        with _worker_context().Pool(workers, initializer=_worker_init) as pool:
            per_video = pool.map(_render_video, jobs, chunksize=max(1, len(jobs) // (workers * 8)))
    write_manifest(pd.DataFrame([row for rows in per_video for row in rows]), manifest_path)
    state_path.write_text(json.dumps({"parameters": parameters, "complete": True}, indent=2))
    return manifest_path
