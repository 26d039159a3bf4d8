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
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from workbench.data.faces import detector_factory
from workbench.data.preprocess_pool import init_worker, process_in_workers, process_safely
from workbench.data.preprocess_video import (
    INDEX_COLUMNS,
    STAGING_DIR,
    PreprocessConfig,
    PreprocessError,
    VideoResult,
    index_path,
    write_csv_atomic,
)
from workbench.data.video import VIDEO_EXTENSIONS

FRAMES_COLUMNS: tuple[str, ...] = ("video", "frame", "path", "mask_path", "box_x", "box_y", "box_w", "box_h")
REPORT_COLUMNS: tuple[str, ...] = ("video", "frame", "reason")
UNREADABLE_COLUMNS: tuple[str, ...] = ("video", "frame")
NO_FACE = "no face detected"
CONFIG_FILE = "preprocess_config.json"


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
        init_worker(*initargs)
        _tally(map(process_safely, todo), summary, bar)
    else:
        _tally(process_in_workers(todo, workers, initargs), summary, bar)
    bar.close()
    _remove_if_empty(out_dir / STAGING_DIR)

    frames_table, no_face, unreadable = collect_index(out_dir, videos)
    write_csv_atomic(frames_table, out_dir / "frames.csv")
    write_csv_atomic(no_face, out_dir / "no_face_report.csv")
    write_csv_atomic(unreadable, out_dir / "unreadable_frames.csv")
    failed = pd.DataFrame(sorted(summary.failed), columns=["video", "error"])
    write_csv_atomic(failed, out_dir / "failed_videos.csv")
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
