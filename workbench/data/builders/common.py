"""What every dataset builder shares: listing a video's frame images and turning videos into manifest rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from workbench.data.manifest import ManifestError, validate_manifest
from workbench.data.video import sample_indices

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg")
MISSING_SHOWN = 5


@dataclass(frozen=True)
class VideoEntry:
    """One video as a dataset layout describes it; folders are relative to the dataset root."""

    video: str
    frames_dir: Path
    label: int
    domain: str
    split: str
    dataset: str
    compression: str | None = None
    source_video: str | None = None
    mask_dirs: tuple[Path, ...] = ()


def _frame_order(path: Path) -> tuple[int, int | str]:
    """Numeric file names in numeric order (``2.png`` before ``10.png``), others after, by name."""
    return (0, int(path.stem)) if path.stem.isdigit() else (1, path.name)


def frame_files(folder: Path) -> list[Path]:
    """The frame images in ``folder`` (not recursive), in frame order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=_frame_order)


def evenly_spaced(items: Sequence[object], count: int | None) -> list[object]:
    """``count`` items evenly spaced over the sequence (all of them when ``count`` is None or larger)."""
    if count is None:
        return list(items)
    if count < 1:
        raise ValueError(f"frames per video must be at least 1, got {count}")
    return [items[i] for i in sample_indices(len(items), count)]


def frame_number(name: str) -> int | None:
    """The frame index in a numeric file name (``0012.png`` → 12), else None; ``name`` uses ``/``."""
    stem = Path(name).stem
    return int(stem) if stem.isdigit() else None


def as_number(value: object) -> float | None:
    """A label written as a number (``1``, ``1.0``, ``"0"``, ``"1.0"``) as a float; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _find_mask(mask_dir: Path, frame: Path) -> Path | None:
    for extension in IMAGE_EXTENSIONS:
        candidate = mask_dir / (frame.stem + extension)
        if candidate.is_file():
            return candidate
    return None


def missing_error(source: str, missing: Sequence[str], hint: str) -> ManifestError:
    shown = "; ".join(missing[:MISSING_SHOWN])
    more = f" (and {len(missing) - MISSING_SHOWN} more)" if len(missing) > MISSING_SHOWN else ""
    return ManifestError(f"{source}: {len(missing)} video(s) have no frames: {shown}{more}. {hint}")


def no_frames_error(source: str, missing: Sequence[str]) -> ManifestError:
    """Nothing to list: no video found at all, or none of the videos found has frames."""
    if not missing:
        return ManifestError(f"{source}: found no videos; is the root the dataset's frame tree?")
    return missing_error(source, missing, "No video has frames: preprocess them first (see data_manifests/README.md).")


def manifest_from_rows(rows: list[dict], root: Path, source: str, missing: Sequence[str] = ()) -> pd.DataFrame:
    """Validate rows (files included) into a manifest; optional columns that are empty everywhere are left out.

    ``missing`` (videos left out on request) is kept in ``df.attrs["missing_videos"]`` for the caller to report.
    No rows at all is an error listing the ``missing`` videos.
    """
    if not rows:
        raise no_frames_error(source, missing)
    df = pd.DataFrame(rows)
    if "frame" in df.columns:
        df["frame"] = df["frame"].astype("Int64")
    empty = [c for c in ("mask_path", "frame", "compression", "source_video") if c in df.columns and df[c].isna().all()]
    df = validate_manifest(df.drop(columns=empty), root, source=source, check_files=True)
    df.attrs["missing_videos"] = list(missing)
    return df


def build_rows(
    root: Path,
    entries: Iterable[VideoEntry],
    *,
    source: str,
    frames_per_video: int | None = None,
    allow_missing: bool = False,
) -> pd.DataFrame:
    """Manifest rows for the frames found in each entry's folder, checked and validated.

    A video whose folder is missing or holds no images is an error, unless ``allow_missing``: then it
    is left out and listed in ``df.attrs["missing_videos"]`` (but no video with frames at all is an
    error). A video with a mask folder (the first of ``mask_dirs`` that exists) must have a mask for
    every frame taken.
    """
    rows, missing = [], []
    for entry in entries:
        folder = root / entry.frames_dir
        files = frame_files(folder) if folder.is_dir() else []
        if not files:
            why = "holds no frame images" if folder.is_dir() else "does not exist"
            missing.append(f"{entry.video} ({entry.frames_dir.as_posix()} {why})")
            continue
        mask_dir = next((root / d for d in entry.mask_dirs if (root / d).is_dir()), None)
        for file in evenly_spaced(files, frames_per_video):
            mask = None
            if mask_dir is not None:
                mask = _find_mask(mask_dir, file)
                if mask is None:
                    raise ManifestError(
                        f"{source}: frame {file.relative_to(root).as_posix()} has no mask in "
                        f"{mask_dir.relative_to(root).as_posix()} (expected {file.stem}.png)"
                    )
            rows.append(
                {
                    "path": file.relative_to(root).as_posix(),
                    "label": entry.label,
                    "domain": entry.domain,
                    "video": entry.video,
                    "split": entry.split,
                    "dataset": entry.dataset,
                    "mask_path": mask.relative_to(root).as_posix() if mask is not None else None,
                    "frame": frame_number(file.name),
                    "compression": entry.compression,
                    "source_video": entry.source_video,
                }
            )
    if missing and not allow_missing:
        hint = "Preprocess them, or pass allow_missing (--allow-missing) to leave them out."
        raise missing_error(source, missing, hint)
    return manifest_from_rows(rows, root, source, missing)


def subfolders(folder: Path) -> list[str]:
    """Names of the folders directly inside ``folder``, sorted (empty when it does not exist)."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def require_dir(root: Path, relative: Path, source: str, what: str) -> None:
    if not (root / relative).is_dir():
        raise ManifestError(f"{source}: {what} folder {relative.as_posix()!r} does not exist under root {str(root)!r}")
