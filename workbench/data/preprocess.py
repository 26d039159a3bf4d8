"""Turn a folder of videos into square face crops: evenly spaced frames, largest face, margin, resize.

Output layout under ``out`` (``<rel>`` is a video's path relative to the videos folder, without
its extension; ``NNNN`` is the frame's index in the source video):

- ``frames/<rel>/NNNN.png`` — face crops; ``masks/<rel>/NNNN.png`` — mask crops cut with the same boxes;
- ``index/<rel>.csv`` — one row per sampled frame (its status, paths and face box); written last, so
  its presence marks the video as done and a rerun skips it;
- ``frames.csv`` — every written crop: video, frame, path, mask_path, box (paths relative to ``out``);
- ``no_face_report.csv`` — every sampled frame without a face (video, frame, reason);
- ``failed_videos.csv`` — videos of the last run that could not be processed, with the error;
- ``preprocess_config.json`` — the settings, so that a resumed run cannot mix two settings.

Labels, domains and splits are not known from videos alone: the dataset builders in
:mod:`workbench.data.builders` turn extracted frame trees into labelled manifests.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.data.faces import Box, FaceDetector, detector_factory, largest_face, square_crop

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
INDEX_COLUMNS: tuple[str, ...] = ("video", "frame", "status", "path", "mask_path", "box_x", "box_y", "box_w", "box_h")
FRAMES_COLUMNS: tuple[str, ...] = ("video", "frame", "path", "mask_path", "box_x", "box_y", "box_w", "box_h")
REPORT_COLUMNS: tuple[str, ...] = ("video", "frame", "reason")
NO_FACE = "no face detected"
CONFIG_FILE = "preprocess_config.json"

T = TypeVar("T")


class PreprocessError(RuntimeError):
    """Preprocessing cannot start or a video cannot be processed; the message says which and why."""


@dataclass(frozen=True)
class PreprocessConfig:
    """What decides the crops; a resumed run must use the same values."""

    frames: int = 32
    size: int = 256
    margin: float = 1.3
    detector: str = "haar"
    masks: bool = False

    def check(self) -> None:
        if self.frames < 1:
            raise ValueError(f"frames must be at least 1, got {self.frames}")
        if self.size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {self.size}")
        if self.margin < 1.0:
            raise ValueError(f"margin must be at least 1.0 (the face box itself), got {self.margin}")


@dataclass
class VideoResult:
    """What happened to one video: frames sampled, crops written, frames without a face, or the error."""

    video: str
    sampled: int = 0
    written: int = 0
    no_face: int = 0
    error: str | None = None


@dataclass
class PreprocessSummary:
    """Counts for one run; ``failed`` lists (video, error) for videos that could not be processed."""

    videos_found: int
    videos_skipped: int
    videos_processed: int = 0
    frames_sampled: int = 0
    frames_written: int = 0
    frames_without_face: int = 0
    videos_without_face: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        """Sampled frames (decoded, searched for a face and, if found, cropped) per wall-clock second."""
        return self.frames_sampled / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        lines = [
            f"videos: {self.videos_found} found, {self.videos_skipped} already done (skipped), "
            f"{self.videos_processed} processed, {len(self.failed)} failed",
            f"frames: {self.frames_written} crops written, {self.frames_without_face} without a face "
            f"({self.videos_without_face} videos with no face at all)",
            f"time: {self.seconds:.1f} s ({self.frames_per_second:.1f} frames/s)",
        ]
        lines += [f"FAILED {video}: {error}" for video, error in self.failed]
        return "\n".join(lines)


def sample_indices(frame_count: int, frames: int) -> np.ndarray:
    """``frames`` indices evenly spaced over ``[0, frame_count - 1]`` (all frames if there are fewer)."""
    if frame_count <= 0:
        return np.zeros(0, dtype=int)
    return np.linspace(0, frame_count - 1, num=min(frames, frame_count)).round().astype(int)


def find_videos(videos_dir: Path) -> list[Path]:
    """Video files under ``videos_dir`` (recursively), as sorted paths relative to it.

    Each video's crops go to ``frames/<path without extension>/``, which a rerun of that video empties
    first. So two videos may not share an output folder (``a.mp4``, ``a.avi``), and no video's folder
    may hold another's (``clip.avi`` and ``clip/take2.avi``): both are errors naming the videos.
    """
    videos = sorted(
        path.relative_to(videos_dir)
        for path in videos_dir.rglob("*")
        if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS
    )
    owners: dict[Path, Path] = {}
    for rel in videos:
        other = owners.setdefault(rel.with_suffix(""), rel)
        if other != rel:
            raise PreprocessError(
                f"{str(videos_dir)!r}: {other} and {rel} would share the output folder {rel.with_suffix('')}"
            )
    for folder, rel in owners.items():
        outer = next((parent for parent in folder.parents if parent in owners), None)
        if outer is not None:
            raise PreprocessError(
                f"{str(videos_dir)!r}: {owners[outer]} and {rel} would nest their output folders (frames/{outer} "
                f"holds frames/{folder}, and processing {owners[outer]} empties it); rename or move one of them"
            )
    return videos


def _frame_count_hint(capture: cv2.VideoCapture) -> int:
    """The container's frame count, which may be wrong or missing; only used to pick frames early."""
    return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))


def _decode(path: Path, wanted: set[int], handle: Callable[[int, np.ndarray], T], results: dict[int, T]) -> int:
    """Decode ``path`` once, calling ``handle`` on the frames in ``wanted``; return the decodable frame count."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise PreprocessError(f"cannot open video {str(path)!r}")
        count = 0
        while capture.grab():
            if count in wanted:
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    raise PreprocessError(f"frame {count} of {str(path)!r} could not be decoded")
                results[count] = handle(count, frame)
            count += 1
        return count
    finally:
        capture.release()


def sample_video(path: Path, frames: int, handle: Callable[[int, np.ndarray], T]) -> dict[int, T]:
    """Apply ``handle`` to ``frames`` frames evenly spaced over the video's decodable frames.

    The spacing is computed from the number of frames that actually decode, not from the
    container's count (often off by a few frames): the first pass already handles the frames the
    container's count points to, and a second pass handles any index that the true count moves.
    Returns ``{frame index: handle(index, frame)}`` in index order.
    """
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise PreprocessError(f"cannot open video {str(path)!r}")
        hint = _frame_count_hint(capture)
    finally:
        capture.release()
    results: dict[int, T] = {}
    count = _decode(path, set(sample_indices(hint, frames).tolist()), handle, results)
    if count == 0:
        raise PreprocessError(f"video {str(path)!r} has no decodable frames")
    final = sample_indices(count, frames).tolist()
    missing = set(final) - results.keys()
    if missing:
        _decode(path, missing, handle, results)
    return {index: results[index] for index in final}


def read_frames_at(path: Path, indices: Iterable[int]) -> dict[int, np.ndarray]:
    """The frames at ``indices`` of a video (e.g. a mask video); a missing index is an error."""
    wanted = set(indices)
    results: dict[int, np.ndarray] = {}
    count = _decode(path, wanted, lambda _, frame: frame, results)
    missing = sorted(wanted - results.keys())
    if missing:
        raise PreprocessError(f"{str(path)!r} has {count} decodable frames; frame(s) {missing} are missing")
    return results


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise PreprocessError(f"cannot write {str(path)!r}")


def _write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    df.to_csv(temporary, index=False)
    os.replace(temporary, path)


def find_mask_video(masks_dir: Path, rel: Path) -> Path | None:
    """The mask video with the same relative path as a video (any video extension), if there is one."""
    stem = masks_dir / rel.with_suffix("")
    for extension in VIDEO_EXTENSIONS:
        candidate = stem.parent / (stem.name + extension)
        if candidate.is_file():
            return candidate
    return None


def index_path(out_dir: Path, rel: Path) -> Path:
    """The per-video index file, whose presence marks the video as done."""
    return out_dir / "index" / rel.with_suffix(".csv")


def process_video(
    videos_dir: Path,
    rel: Path,
    out_dir: Path,
    config: PreprocessConfig,
    detector: FaceDetector,
    masks_dir: Path | None = None,
) -> VideoResult:
    """Crop the faces of one video, write the PNGs and, last, its index file; errors propagate."""
    video = rel.with_suffix("").as_posix()
    frames_rel = Path("frames") / rel.with_suffix("")
    masks_rel = Path("masks") / rel.with_suffix("")
    for stale in (out_dir / frames_rel, out_dir / masks_rel):
        if stale.exists():
            shutil.rmtree(stale)

    def crop_face(index: int, frame: np.ndarray) -> tuple[Box, np.ndarray] | None:
        box = largest_face(detector.detect(frame))
        return None if box is None else (box, square_crop(frame, box, config.margin, config.size))

    crops = sample_video(videos_dir / rel, config.frames, crop_face)
    mask_video = find_mask_video(masks_dir, rel) if masks_dir is not None else None
    mask_frames = read_frames_at(mask_video, [i for i, c in crops.items() if c is not None]) if mask_video else {}

    rows = []
    for index, crop in crops.items():
        if crop is None:
            rows.append({"video": video, "frame": index, "status": "no_face"})
            continue
        box, image = crop
        path = frames_rel / f"{index:04d}.png"
        _write_png(out_dir / path, image)
        mask_path = None
        if index in mask_frames:
            mask = mask_frames[index]
            mask = cv2.cvtColor(mask, cv2.COLOR_BGR2GRAY) if mask.ndim == 3 else mask
            mask_path = masks_rel / f"{index:04d}.png"
            _write_png(out_dir / mask_path, square_crop(mask, box, config.margin, config.size, cv2.INTER_NEAREST))
        rows.append(
            {
                "video": video,
                "frame": index,
                "status": "ok",
                "path": path.as_posix(),
                "mask_path": mask_path.as_posix() if mask_path else None,
                "box_x": box.x,
                "box_y": box.y,
                "box_w": box.w,
                "box_h": box.h,
            }
        )
    _write_csv_atomic(pd.DataFrame(rows, columns=list(INDEX_COLUMNS)), index_path(out_dir, rel))
    written = sum(row["status"] == "ok" for row in rows)
    return VideoResult(video, sampled=len(rows), written=written, no_face=len(rows) - written)


_worker: dict[str, object] = {}


def _init_worker(
    videos_dir: Path,
    out_dir: Path,
    config: PreprocessConfig,
    masks_dir: Path | None,
    factory: Callable[[], FaceDetector],
) -> None:
    # The detector is built on first use, inside the error handling: a pool initializer that raises
    # makes multiprocessing start replacement workers forever.
    _worker.update(videos_dir=videos_dir, out_dir=out_dir, config=config, masks_dir=masks_dir, factory=factory)
    _worker["detector"] = None


def _init_pool_worker(*initargs: object) -> None:
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would oversubscribe
    _init_worker(*initargs)


def _process_safely(rel: Path) -> VideoResult:
    """Process one video in a worker; any failure becomes a reported result instead of ending the run."""
    try:
        if _worker["detector"] is None:
            _worker["detector"] = _worker["factory"]()
        return process_video(
            _worker["videos_dir"], rel, _worker["out_dir"], _worker["config"], _worker["detector"], _worker["masks_dir"]
        )
    except Exception as exc:  # noqa: BLE001 — one bad video must not stop the others; the error is reported
        return VideoResult(rel.with_suffix("").as_posix(), error=f"{type(exc).__name__}: {exc}")


def _check_config(out_dir: Path, config: PreprocessConfig) -> None:
    path = out_dir / CONFIG_FILE
    if path.is_file():
        previous = json.loads(path.read_text())
        if previous != asdict(config):
            raise PreprocessError(
                f"{out_dir} was made with settings {previous}, not {asdict(config)}; "
                "resume with the same settings or choose another --out"
            )
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(config), indent=2) + "\n")


def collect_index(out_dir: Path, videos: Iterable[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gather the per-video index files of ``videos`` into the frames table and the no-face report."""
    parts = [pd.read_csv(path, dtype={"video": str}) for rel in videos if (path := index_path(out_dir, rel)).is_file()]
    index = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(INDEX_COLUMNS))
    found = index[index["status"] == "ok"]
    frames = found[list(FRAMES_COLUMNS)].astype({c: int for c in ("frame", "box_x", "box_y", "box_w", "box_h")})
    missing = index[index["status"] == "no_face"].assign(reason=NO_FACE)[list(REPORT_COLUMNS)]
    return frames.reset_index(drop=True), missing.reset_index(drop=True)


def preprocess_videos(
    videos_dir: str | Path,
    out_dir: str | Path,
    *,
    frames: int = 32,
    size: int = 256,
    margin: float = 1.3,
    detector: str = "haar",
    masks_dir: str | Path | None = None,
    workers: int = 1,
    progress: bool = True,
) -> PreprocessSummary:
    """Crop faces from every video under ``videos_dir`` into ``out_dir``; resumable and parallel.

    Videos whose index file exists are skipped. A video that cannot be read is listed in
    ``failed_videos.csv`` and in the summary; the others carry on. See the module docstring for
    the output layout. With ``workers > 1`` the workers are spawned processes: a calling script
    needs the usual ``if __name__ == "__main__":`` guard (notebooks and ``python -m workbench`` are fine).
    """
    started = time.perf_counter()
    videos_dir, out_dir = Path(videos_dir), Path(out_dir)
    masks_dir = Path(masks_dir) if masks_dir is not None else None
    if not videos_dir.is_dir():
        raise PreprocessError(f"videos folder {str(videos_dir)!r} does not exist")
    if masks_dir is not None and not masks_dir.is_dir():
        raise PreprocessError(f"masks folder {str(masks_dir)!r} does not exist")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    config = PreprocessConfig(frames=frames, size=size, margin=margin, detector=detector, masks=masks_dir is not None)
    config.check()
    factory = detector_factory(detector)
    factory()  # fail now, not once per video in the workers
    if workers > 1 and getattr(factory, "__module__", None) == "__main__":
        raise PreprocessError(
            f"detector {detector!r} is defined in __main__ (a script or notebook), which spawned workers cannot "
            "import; define it in a module, or use workers=1"
        )
    videos = find_videos(videos_dir)
    if not videos:
        raise PreprocessError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) under {str(videos_dir)!r}")
    _check_config(out_dir, config)
    todo = [rel for rel in videos if not index_path(out_dir, rel).is_file()]
    summary = PreprocessSummary(videos_found=len(videos), videos_skipped=len(videos) - len(todo))

    initargs = (videos_dir, out_dir, config, masks_dir, factory)
    bar = tqdm(total=len(todo), desc="preprocess", unit="video", disable=not progress)
    if workers == 1 or len(todo) <= 1:
        _init_worker(*initargs)
        results: Iterable[VideoResult] = map(_process_safely, todo)
        _tally(results, summary, bar)
    else:
        # Spawned, not forked: forking a process whose OpenCV/FFmpeg threads have run can deadlock the
        # child (seen here: a forked worker hung in cv2.setNumThreads after the parent had used Haar).
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(workers, len(todo)), initializer=_init_pool_worker, initargs=initargs) as pool:
            _tally(pool.imap_unordered(_process_safely, todo), summary, bar)
    bar.close()

    frames_table, report = collect_index(out_dir, videos)
    _write_csv_atomic(frames_table, out_dir / "frames.csv")
    _write_csv_atomic(report, out_dir / "no_face_report.csv")
    failed = pd.DataFrame(sorted(summary.failed), columns=["video", "error"])
    _write_csv_atomic(failed, out_dir / "failed_videos.csv")
    summary.seconds = time.perf_counter() - started
    return summary


def _tally(results: Iterable[VideoResult], summary: PreprocessSummary, bar: tqdm) -> None:
    for result in results:
        if result.error is not None:
            summary.failed.append((result.video, result.error))
        else:
            summary.videos_processed += 1
            summary.frames_sampled += result.sampled
            summary.frames_written += result.written
            summary.frames_without_face += result.no_face
            summary.videos_without_face += result.written == 0
        bar.update(1)
