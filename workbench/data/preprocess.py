"""Turn a folder of videos into square face crops: evenly spaced frames, largest face, margin, resize.

Output layout under ``out`` (``<rel>`` is a video's path relative to the videos folder, without
its extension; ``NNNN`` is the frame's index in the source video):

- ``frames/<rel>/NNNN.png`` — face crops; ``masks/<rel>/NNNN.png`` — mask crops cut with the same boxes.
  A video's crops are written under ``incomplete/`` and moved into place only when the video is done,
  so a video that fails leaves no folder there;
- ``index/<rel>.csv`` — one row per sampled frame (its status, paths and face box) and per frame that
  could not be decoded; written last, so its presence marks the video as done and a rerun skips it;
- ``frames.csv`` — every written crop: video, frame, path, mask_path, box (paths relative to ``out``);
- ``no_face_report.csv`` — every sampled frame without a face (video, frame, reason);
- ``unreadable_frames.csv`` — in a damaged video, the stream positions from its first undecodable frame
  to its last decodable one, which are not used (video, frame; see :mod:`workbench.data.video`);
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
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.data.face_cropper import FaceCrop, FaceCropper
from workbench.data.faces import Box, FaceDetector, detector_factory, square_crop
from workbench.data.video import read_frames_at, sample_video

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
INDEX_COLUMNS: tuple[str, ...] = ("video", "frame", "status", "path", "mask_path", "box_x", "box_y", "box_w", "box_h")
FRAMES_COLUMNS: tuple[str, ...] = ("video", "frame", "path", "mask_path", "box_x", "box_y", "box_w", "box_h")
REPORT_COLUMNS: tuple[str, ...] = ("video", "frame", "reason")
UNREADABLE_COLUMNS: tuple[str, ...] = ("video", "frame")
NO_FACE = "no face detected"
CONFIG_FILE = "preprocess_config.json"
STAGING_DIR = "incomplete"
OUTPUT_TREES: tuple[str, ...] = ("masks", "frames")  # moved into place in this order: frames/<rel> comes last


class PreprocessError(RuntimeError):
    """Preprocessing cannot start or a video cannot be processed; the message says which and why."""


@dataclass(frozen=True)
class PreprocessConfig:
    """What decides the crops; a resumed run must use the same values (``masks``: the resolved folder)."""

    frames: int = 32
    size: int = 256
    margin: float = 1.3
    detector: str = "haar"
    masks: str | None = None

    def check(self) -> None:
        if self.frames < 1:
            raise ValueError(f"frames must be at least 1, got {self.frames}")
        if self.size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {self.size}")
        if self.margin < 1.0:
            raise ValueError(f"margin must be at least 1.0 (the face box itself), got {self.margin}")


@dataclass
class VideoResult:
    """What happened to one video: frames sampled, crops written, without a face, undecodable; or the error."""

    video: str
    sampled: int = 0
    written: int = 0
    no_face: int = 0
    unreadable: int = 0
    error: str | None = None


@dataclass
class PreprocessSummary:
    """Counts for one run; ``failed`` lists (video, error), ``unreadable`` (video, undecodable frames)."""

    videos_found: int
    videos_skipped: int
    videos_processed: int = 0
    frames_sampled: int = 0
    frames_written: int = 0
    frames_without_face: int = 0
    videos_without_face: int = 0
    frames_unreadable: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[tuple[str, int]] = field(default_factory=list)
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
            f"({self.videos_without_face} videos with no face at all), {self.frames_unreadable} unusable (undecodable)",
            f"time: {self.seconds:.1f} s ({self.frames_per_second:.1f} frames/s)",
        ]
        lines += [
            f"UNREADABLE {video}: {count} frame(s) from an undecodable one on were not used (see unreadable_frames.csv)"
            for video, count in self.unreadable
        ]
        lines += [f"FAILED {video}: {error}" for video, error in self.failed]
        return "\n".join(lines)


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
    """The mask video with the same relative path as a video (any video extension, in any case), if any.

    Several candidates (``clip.avi`` and ``clip.mp4``) are an error naming them.
    """
    folder = (masks_dir / rel).parent
    name = rel.with_suffix("").name
    candidates = sorted(
        path
        for path in (folder.iterdir() if folder.is_dir() else ())
        if path.stem == name and path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()
    )
    if len(candidates) > 1:
        raise PreprocessError(f"several mask videos for {rel}: {', '.join(str(path) for path in candidates)}")
    return candidates[0] if candidates else None


def index_path(out_dir: Path, rel: Path) -> Path:
    """The per-video index file, whose presence marks the video as done."""
    return out_dir / "index" / rel.with_suffix(".csv")


def _staging_dir(out_dir: Path, rel: Path) -> Path:
    """Where a video's ``frames``/``masks`` crops are written until it is done: one flat folder per video."""
    return out_dir / STAGING_DIR / quote(rel.with_suffix("").as_posix(), safe="")


def _discard_output(out_dir: Path, rel: Path) -> None:
    """Delete a video's index (which marks it done) and its crops, staged and moved into place."""
    index_path(out_dir, rel).unlink(missing_ok=True)
    for folder in (_staging_dir(out_dir, rel), *(out_dir / tree / rel.with_suffix("") for tree in OUTPUT_TREES)):
        if folder.exists():
            shutil.rmtree(folder)


def _publish(out_dir: Path, rel: Path) -> None:
    """Move a finished video's staged crops to ``masks/<rel>`` and then ``frames/<rel>``."""
    staging = _staging_dir(out_dir, rel)
    for tree in OUTPUT_TREES:
        if (staging / tree).is_dir():
            final = out_dir / tree / rel.with_suffix("")
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / tree, final)
    if staging.exists():
        staging.rmdir()


def _check_mask_sizes(
    mask_video: Path, masks: dict[int, np.ndarray], video: Path, frame_sizes: dict[int, tuple[int, int]]
) -> None:
    """Refuse mask frames whose size differs from their video frame's: the face boxes would not fit them."""
    for index, mask in masks.items():
        if mask.shape[:2] != frame_sizes[index]:
            (mask_h, mask_w), (frame_h, frame_w) = mask.shape[:2], frame_sizes[index]
            raise PreprocessError(
                f"mask video {str(mask_video)!r} is {mask_w}x{mask_h} but video {str(video)!r} is {frame_w}x{frame_h} "
                f"(frame {index}); masks must have their video's size for the face boxes to fit"
            )


def _mask_crop(mask: np.ndarray, box: Box, config: PreprocessConfig) -> np.ndarray:
    """The grey-level mask cut with a face box (nearest-neighbour resize: mask values stay as they are)."""
    mask = cv2.cvtColor(mask, cv2.COLOR_BGR2GRAY) if mask.ndim == 3 else mask
    return square_crop(mask, box, config.margin, config.size, cv2.INTER_NEAREST)


def process_video(
    videos_dir: Path,
    rel: Path,
    out_dir: Path,
    config: PreprocessConfig,
    detector: FaceDetector,
    masks_dir: Path | None = None,
) -> VideoResult:
    """Crop the faces of one video, move the crops into place and, last, write its index file.

    Errors propagate, and leave none of the video's crops behind.
    """
    _discard_output(out_dir, rel)
    try:
        rows = _crop_video(videos_dir, rel, out_dir, config, detector, masks_dir)
        _publish(out_dir, rel)
        _write_csv_atomic(pd.DataFrame(rows, columns=list(INDEX_COLUMNS)), index_path(out_dir, rel))
    except BaseException:
        _discard_output(out_dir, rel)
        raise
    statuses = [row["status"] for row in rows]
    return VideoResult(
        rel.with_suffix("").as_posix(),
        sampled=statuses.count("ok") + statuses.count("no_face"),
        written=statuses.count("ok"),
        no_face=statuses.count("no_face"),
        unreadable=statuses.count("unreadable"),
    )


def _crop_video(
    videos_dir: Path,
    rel: Path,
    out_dir: Path,
    config: PreprocessConfig,
    detector: FaceDetector,
    masks_dir: Path | None,
) -> list[dict[str, object]]:
    """Write one video's crops to its staging folder; return its index rows, in frame order."""
    video = rel.with_suffix("").as_posix()
    staging = _staging_dir(out_dir, rel)
    frame_sizes: dict[int, tuple[int, int]] = {}
    cropper = FaceCropper(detector, config.margin, config.size)

    def crop_face(index: int, frame: np.ndarray) -> FaceCrop | None:
        frame_sizes[index] = frame.shape[:2]
        return cropper.largest(frame)

    sampled = sample_video(videos_dir / rel, config.frames, crop_face)
    mask_video = find_mask_video(masks_dir, rel) if masks_dir is not None else None
    with_face = [index for index, crop in sampled.frames.items() if crop is not None]
    mask_frames = read_frames_at(mask_video, with_face) if mask_video else {}
    if mask_video:
        _check_mask_sizes(mask_video, mask_frames, videos_dir / rel, frame_sizes)

    rows: list[dict[str, object]] = [{"video": video, "frame": i, "status": "unreadable"} for i in sampled.unreadable]
    for index, crop in sampled.frames.items():
        if crop is None:
            rows.append({"video": video, "frame": index, "status": "no_face"})
            continue
        box, image = crop.box, crop.image
        name = f"{index:04d}.png"
        _write_png(staging / "frames" / name, image)
        mask_path = None
        if index in mask_frames:
            _write_png(staging / "masks" / name, _mask_crop(mask_frames[index], box, config))
            mask_path = (Path("masks") / video / name).as_posix()
        rows.append(
            {
                "video": video,
                "frame": index,
                "status": "ok",
                "path": (Path("frames") / video / name).as_posix(),
                "mask_path": mask_path,
                "box_x": box.x,
                "box_y": box.y,
                "box_w": box.w,
                "box_h": box.h,
            }
        )
    return sorted(rows, key=lambda row: row["frame"])


_worker: dict[str, object] = {}


def _init_worker(
    videos_dir: Path,
    out_dir: Path,
    config: PreprocessConfig,
    masks_dir: Path | None,
    factory: Callable[[], FaceDetector],
) -> None:
    # The detector is built on first use, inside the error handling: a pool initializer that raises
    # breaks the pool.
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


def _process_in_workers(todo: list[Path], workers: int, initargs: tuple) -> Iterator[VideoResult]:
    """The results of ``todo`` processed by spawned workers; after a worker dies, a fresh pool takes the rest."""
    remaining = deque(todo)
    while remaining:
        yield from _run_pool(remaining, min(workers, len(remaining)), initargs)


def _run_pool(remaining: deque[Path], workers: int, initargs: tuple) -> Iterator[VideoResult]:
    """Process videos taken from ``remaining`` in one pool, until none is left or a worker dies.

    At most ``workers`` videos are submitted at a time, so the videos in flight when a worker dies
    (a crash, ``os._exit``, the out-of-memory killer) are the ones it may have been processing: the
    pool fails them all, and they are reported as failed, their partial crops deleted.
    """
    # Spawned, not forked: forking a process whose OpenCV/FFmpeg threads have run can deadlock the
    # child (seen here: a forked worker hung in cv2.setNumThreads after the parent had used Haar).
    context = multiprocessing.get_context("spawn")
    in_flight: dict[Future[VideoResult], Path] = {}
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_pool_worker, initargs=initargs) as pool:
        while remaining or in_flight:
            _submit(pool, remaining, in_flight, workers)
            if not in_flight:  # the pool broke between two videos: the caller starts a fresh one
                return
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            if any(isinstance(future.exception(), BrokenProcessPool) for future in done):
                wait(in_flight)  # a broken pool fails every video still in flight
                break
            for future in done:
                del in_flight[future]
                yield future.result()
    lost = sorted(rel for future, rel in in_flight.items() if isinstance(future.exception(), BrokenProcessPool))
    yield from (future.result() for future, rel in in_flight.items() if rel not in lost)
    out_dir = initargs[1]  # _init_worker's second argument
    for rel in lost:
        _discard_output(out_dir, rel)  # the pool is shut down: no worker writes there any more
        yield VideoResult(rel.with_suffix("").as_posix(), error=_died_in_flight(rel, lost))


def _submit(
    pool: ProcessPoolExecutor, remaining: deque[Path], in_flight: dict[Future[VideoResult], Path], workers: int
) -> None:
    """Submit videos from ``remaining`` until ``workers`` are in flight, or the pool turns out broken."""
    while remaining and len(in_flight) < workers:
        try:
            future = pool.submit(_process_safely, remaining[0])
        except BrokenProcessPool:
            return
        in_flight[future] = remaining.popleft()


def _died_in_flight(rel: Path, lost: list[Path]) -> str:
    """Why ``rel`` failed when its pool broke, with ``lost`` all the videos in flight then."""
    others = [str(other) for other in lost if other != rel]
    with_others = f" (in flight with {', '.join(others)}: one of them caused it)" if others else ""
    return (
        f"BrokenProcessPool: a worker process died abruptly (a crash, os._exit or the out-of-memory killer) "
        f"while {rel} was being processed{with_others}; rerun to retry"
    )


def _check_config(out_dir: Path, config: PreprocessConfig) -> None:
    """Save the settings in a new ``out_dir``; in an existing one, refuse other settings, naming them."""
    path = out_dir / CONFIG_FILE
    current = asdict(config)
    if not path.is_file():
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(current, indent=2) + "\n")
        return
    saved = json.loads(path.read_text())
    if saved.get("masks") is False:  # saved before the mask folder itself was (only on/off): no masks
        saved["masks"] = None
    elif saved.get("masks") is True and current["masks"] is not None:  # with masks: record the folder now
        saved["masks"] = current["masks"]
        path.write_text(json.dumps(saved, indent=2) + "\n")
    changed = [
        f"{key} was {saved.get(key)!r}, now {value!r}" for key, value in current.items() if saved.get(key) != value
    ]
    if changed:
        raise PreprocessError(
            f"{out_dir} was made with other settings ({'; '.join(changed)}); "
            "resume with the same settings or choose another --out"
        )


def collect_index(out_dir: Path, videos: Iterable[Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Gather the index files of ``videos`` into the frames table and the no-face and unreadable-frame reports."""
    parts = [pd.read_csv(path, dtype={"video": str}) for rel in videos if (path := index_path(out_dir, rel)).is_file()]
    index = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(INDEX_COLUMNS))
    found = index[index["status"] == "ok"]
    frames = found[list(FRAMES_COLUMNS)].astype({c: int for c in ("frame", "box_x", "box_y", "box_w", "box_h")})
    missing = index[index["status"] == "no_face"].assign(reason=NO_FACE)[list(REPORT_COLUMNS)]
    unreadable = index[index["status"] == "unreadable"][list(UNREADABLE_COLUMNS)].astype({"frame": int})
    return frames.reset_index(drop=True), missing.reset_index(drop=True), unreadable.reset_index(drop=True)


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

    Videos whose index file exists are skipped. A video that cannot be read, or whose worker process
    dies, is listed in ``failed_videos.csv`` and in the summary; the others carry on. See the module
    docstring for the output layout. With ``workers > 1`` the workers are spawned processes: a calling
    script needs the usual ``if __name__ == "__main__":`` guard (notebooks and ``python -m workbench`` are fine).
    """
    started = time.perf_counter()
    videos_dir, out_dir = Path(videos_dir), Path(out_dir)
    masks_dir = Path(masks_dir) if masks_dir is not None else None
    if not videos_dir.is_dir():
        raise PreprocessError(f"videos folder {str(videos_dir)!r} does not exist")
    if masks_dir is not None and not masks_dir.is_dir():
        raise PreprocessError(f"masks folder {str(masks_dir)!r} does not exist")
    blocking = next((path for path in (out_dir, *out_dir.parents) if path.exists() and not path.is_dir()), None)
    if blocking is not None:
        raise PreprocessError(f"output folder {str(out_dir)!r} cannot be made: {str(blocking)!r} is a file")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    masks = str(masks_dir.resolve()) if masks_dir is not None else None
    config = PreprocessConfig(frames=frames, size=size, margin=margin, detector=detector, masks=masks)
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
        _tally(map(_process_safely, todo), summary, bar)
    else:
        _tally(_process_in_workers(todo, workers, initargs), summary, bar)
    bar.close()
    _remove_if_empty(out_dir / STAGING_DIR)

    frames_table, no_face, unreadable = collect_index(out_dir, videos)
    _write_csv_atomic(frames_table, out_dir / "frames.csv")
    _write_csv_atomic(no_face, out_dir / "no_face_report.csv")
    _write_csv_atomic(unreadable, out_dir / "unreadable_frames.csv")
    failed = pd.DataFrame(sorted(summary.failed), columns=["video", "error"])
    _write_csv_atomic(failed, out_dir / "failed_videos.csv")
    summary.unreadable.sort()
    summary.seconds = time.perf_counter() - started
    return summary


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


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
            summary.frames_unreadable += result.unreadable
            if result.unreadable:
                summary.unreadable.append((result.video, result.unreadable))
        bar.update(1)
