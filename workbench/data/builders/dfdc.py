"""DFDC (the full Deepfake Detection Challenge set) and DFDC-Preview.

DFDC labels come as ``labels.csv`` (the test set: ``filename,label`` with 1 = fake) or as one
``metadata.json`` per training part (``{"x.mp4": {"label": "FAKE" | "REAL", "split": ..., "original": ...}}``).
A label file may sit in the root or in a folder directly under it; frames of a video it names live
in ``<that folder>/frames/<name>/``. DFDC-Preview ships one ``dataset.json``
(``{"<path>.mp4": {"label": "real" | "fake", "set": "train" | "test"}}``); frames of ``<path>.mp4``
live in ``frames/<path>/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from workbench.data.builders.common import VideoEntry, as_number, build_rows
from workbench.data.manifest import SPLITS, ManifestError, read_csv_table

DFDC_LABELS: dict[str, int] = {"FAKE": 1, "REAL": 0}
DFDCP_LABELS: dict[str, int] = {"real": 0, "fake": 1}


def _check_split(split: str | None, source: str) -> None:
    if split is not None and split not in SPLITS:
        raise ManifestError(f"{source}: split {split!r} is not one of {list(SPLITS)}")


def _load_json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ManifestError(f"{path}: expected an object mapping video file names to entries, got {kind}")
    return data


def _video_id(folder: PurePosixPath, name: str) -> str:
    return (folder / PurePosixPath(name).stem).as_posix()


def _csv_label(path: Path, line: int, name: str, text: str) -> int:
    """0 or 1 from a ``labels.csv`` cell (``1``, ``1.0``); anything else is an error naming the line."""
    number = as_number(text)
    if number not in (0, 1):
        raise ManifestError(f"{path}: line {line}: label {text!r} of {name!r} is not 0 (real) or 1 (fake)")
    return int(number)


def _entries_from_labels_csv(path: Path, folder: PurePosixPath, split: str | None) -> list[VideoEntry]:
    table, lines = read_csv_table(path, dtype=str)
    if not {"filename", "label"} <= set(table.columns):
        raise ManifestError(f"{path}: needs columns 'filename' and 'label' (1 = fake), has {list(table.columns)}")
    entries = []
    for line, name, text in zip(lines, table["filename"], table["label"]):
        for column, value in (("filename", name), ("label", text)):
            if pd.isna(value) or not value.strip():
                raise ManifestError(f"{path}: line {line}: {column} is empty")
        label = _csv_label(path, line, name, text)
        video = _video_id(folder, name)
        entries.append(
            VideoEntry(
                video=video,
                frames_dir=Path(folder, "frames", PurePosixPath(name).stem),
                label=label,
                domain="DFDC",
                split=split or "test",
                dataset="DFDC",
                source_video=video if label == 0 else None,
            )
        )
    return entries


def _label_and_split(
    path: Path, name: str, entry: Any, labels: Mapping[str, int], split_key: str, split: str | None
) -> tuple[int, str]:
    """An entry's label (0 real, 1 fake) and split (``split`` when given, else its ``split_key``), or an error
    naming the file, the entry and what is wrong."""
    if not isinstance(entry, dict) or entry.get("label") not in labels:
        raise ManifestError(f"{path}: entry {name!r}: needs 'label' {' or '.join(labels)}, got {entry!r}")
    video_split = split or entry.get(split_key)
    if video_split not in SPLITS:
        raise ManifestError(
            f"{path}: entry {name!r}: {split_key} {video_split!r} is not one of {list(SPLITS)} (choose one with split=)"
        )
    return labels[entry["label"]], video_split


def _entries_from_metadata(path: Path, folder: PurePosixPath, split: str | None) -> list[VideoEntry]:
    entries = []
    for name, entry in _load_json_object(path).items():
        label, video_split = _label_and_split(path, name, entry, DFDC_LABELS, "split", split)
        video = _video_id(folder, name)
        original = entry.get("original")
        entries.append(
            VideoEntry(
                video=video,
                frames_dir=Path(folder, "frames", PurePosixPath(name).stem),
                label=label,
                domain="DFDC",
                split=video_split,
                dataset="DFDC",
                source_video=video if label == 0 else _video_id(folder, original) if original else None,
            )
        )
    return entries


def build_dfdc(
    root: Path,
    *,
    split: str | None = None,
    frames_per_video: int | None = None,
    allow_missing: bool = False,
) -> pd.DataFrame:
    """Manifest of DFDC from every ``labels.csv``/``metadata.json`` in the root or one folder below.

    ``labels.csv`` videos get split ``test``; ``metadata.json`` videos get their ``split`` field
    (``train`` in the training parts). ``split`` overrides both. Where a folder holds both files,
    ``labels.csv`` is used. Fakes with an ``original`` record it as ``source_video``.
    """
    root = Path(root)
    source = f"DFDC at {root}"
    _check_split(split, source)
    entries = []
    for directory in [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []:
        folder = PurePosixPath(directory.relative_to(root).as_posix())
        if (directory / "labels.csv").is_file():
            entries += _entries_from_labels_csv(directory / "labels.csv", folder, split)
        elif (directory / "metadata.json").is_file():
            entries += _entries_from_metadata(directory / "metadata.json", folder, split)
    if not entries:
        raise ManifestError(
            f"{source}: found no labels.csv or metadata.json in the root or the folders directly under it"
        )
    return build_rows(root, entries, source=source, frames_per_video=frames_per_video, allow_missing=allow_missing)


def build_dfdcp(
    root: Path,
    *,
    split: str | None = None,
    frames_per_video: int | None = None,
    allow_missing: bool = False,
) -> pd.DataFrame:
    """Manifest of DFDC-Preview from ``<root>/dataset.json``; each video's ``set`` is its split unless ``split``."""
    root = Path(root)
    source = f"DFDC-Preview at {root}"
    _check_split(split, source)
    path = root / "dataset.json"
    if not path.is_file():
        raise ManifestError(f"{source}: {str(path)!r} does not exist (it ships with DFDC-Preview)")
    entries = []
    for name, entry in _load_json_object(path).items():
        label, video_split = _label_and_split(path, name, entry, DFDCP_LABELS, "set", split)
        video = PurePosixPath(name).with_suffix("").as_posix()
        entries.append(
            VideoEntry(
                video=video,
                frames_dir=Path("frames", video),
                label=label,
                domain="DFDCP",
                split=video_split,
                dataset="DFDCP",
            )
        )
    return build_rows(root, entries, source=source, frames_per_video=frames_per_video, allow_missing=allow_missing)
