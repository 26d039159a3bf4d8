"""Convert a DeepfakeBench dataset JSON into our manifest.

Accepted format (written here from its structure; no DeepfakeBench code is used)::

    {dataset: {label_name: {split: {compression: {video: {"label": ..., "frames": [path, ...]}}}}}}

with the ``compression`` level optional (per split: either every child is a video entry, or
every child is a compression level). A video entry is an object with a ``"frames"`` list; other
keys are ignored. The manifest gets ``dataset`` = the dataset key, ``domain`` = the label name,
``split`` = the split key (``validation``/``valid`` read as ``val``), ``compression`` where the
level exists, and ``video`` = ``<label name>/[<compression>/]<video key>``. ``label``: the entry's
``"label"`` field when it is a number or a numeric string (``1``, ``0.0``, ``"1"``, ``"0.0"``): 0 or 1,
any other number is an error; when it is a non-numeric string or absent, the name (the field's
string, else the label name) decides: containing "real" (any case) → 0, else 1; an empty string is an error.
Frame paths may be absolute or relative; see :func:`import_deepfakebench`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

import pandas as pd

from workbench.data.builders.common import as_number, evenly_spaced, frame_number, manifest_from_rows
from workbench.data.manifest import SPLITS, ManifestError

SPLIT_ALIASES: dict[str, str] = {"validation": "val", "valid": "val"}


def _is_video_entry(node: object) -> bool:
    return isinstance(node, dict) and "frames" in node


def _label(entry: dict, label_name: str, where: str) -> int:
    """0/1 from the entry's numeric label, else from the label's name (see the module docstring)."""
    value = entry.get("label", label_name)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or not str(value).strip():
        raise ManifestError(f"{where}: label {value!r} is not 0, 1 or a label name")
    number = as_number(value)
    if number is None:
        return 0 if "real" in value.lower() else 1
    if number not in (0, 1):
        raise ManifestError(f"{where}: label {value!r} is not a known label (0 = real, 1 = fake)")
    return int(number)


def _relative_frame(frame: str, root: Path, json_root: PurePosixPath | None, where: str) -> str:
    """The frame's path relative to ``root``: ``json_root`` is stripped first, then ``root`` if absolute."""
    path = PurePosixPath(frame.replace("\\", "/"))
    if json_root is not None and path.is_relative_to(json_root):
        path = path.relative_to(json_root)
    elif path.is_absolute():
        for base in {PurePosixPath(os.path.abspath(root)), PurePosixPath(root.resolve())}:
            if path.is_relative_to(base):
                path = path.relative_to(base)
                break
        else:
            hint = " (pass json_root / --json-root: the root as written in the JSON)" if json_root is None else ""
            raise ManifestError(f"{where}: frame {frame!r} is not under root {str(root)!r}{hint}")
    normal = PurePosixPath(os.path.normpath(path.as_posix()))
    if normal.is_absolute() or normal.parts[:1] == ("..",):
        raise ManifestError(f"{where}: frame {frame!r} is not under root {str(root)!r}")
    return normal.as_posix()


def _videos(split_node: dict, where: str) -> list[tuple[str | None, str, object]]:
    """(compression or None, video key, entry) for a split, with or without the compression level."""
    kinds = {_is_video_entry(child) for child in split_node.values()}
    if kinds == {True}:
        return [(None, video, entry) for video, entry in split_node.items()]
    if kinds <= {False}:
        found = []
        for compression, videos in split_node.items():
            if not isinstance(videos, dict):
                raise ManifestError(f"{where}/{compression}: expected an object of videos, got {videos!r}")
            for video, entry in videos.items():
                if not _is_video_entry(entry):
                    raise ManifestError(
                        f"{where}/{compression}/{video}: not a video entry with a 'frames' list: {entry!r}"
                    )
                found.append((compression, video, entry))
        return found
    bad = next(key for key, child in split_node.items() if not _is_video_entry(child))
    raise ManifestError(
        f"{where}: mixes video entries and other objects ({bad!r} has no 'frames'); "
        "expected either videos or compression levels"
    )


def _object(node: object, where: str, of: str) -> dict:
    if not isinstance(node, dict):
        raise ManifestError(f"{where}: expected an object of {of}, got {type(node).__name__}")
    return node


def import_deepfakebench(
    json_path: Path,
    root: Path,
    *,
    json_root: str | None = None,
    compression: str | None = None,
    frames_per_video: int | None = None,
) -> pd.DataFrame:
    """Manifest from a DeepfakeBench dataset JSON; frame paths become relative to ``root``.

    A frame path is mapped by stripping ``json_root`` (the dataset root as written in the JSON, when
    it was made on another machine) if it starts with it; else an absolute path must lie under
    ``root``; a relative path is taken as relative to ``root``. A frame outside the root, a
    malformed entry, an unknown label or split, or a missing file is an error naming the entry.
    ``compression`` keeps one compression level (the JSON must have that level).
    """
    json_path, root = Path(json_path), Path(root)
    source = str(json_path)
    if not json_path.is_file():
        raise ManifestError(f"DeepfakeBench JSON {source!r} does not exist")
    try:
        data = json.loads(json_path.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{source}: not valid JSON: {exc}") from exc
    prefix = PurePosixPath(json_root.replace("\\", "/")) if json_root else None
    rows, compressions = [], set()
    for dataset, labels in _object(data, source, "datasets").items():
        for label_name, splits in _object(labels, f"{source}: {dataset}", "label names").items():
            for split_key, split_node in _object(splits, f"{source}: {dataset}/{label_name}", "splits").items():
                where = f"{source}: {dataset}/{label_name}/{split_key}"
                split = SPLIT_ALIASES.get(split_key, split_key)
                if split not in SPLITS:
                    raise ManifestError(f"{where}: split {split_key!r} is not one of {list(SPLITS)}")
                for level, video, entry in _videos(_object(split_node, where, "videos"), where):
                    compressions.add(level)
                    if compression is not None and level != compression:
                        continue
                    entry_where = f"{where}/{level + '/' if level else ''}{video}"
                    frames = entry["frames"]
                    if not isinstance(frames, list) or not frames or not all(isinstance(f, str) and f for f in frames):
                        raise ManifestError(
                            f"{entry_where}: 'frames' must be a non-empty list of paths, got {frames!r}"
                        )
                    label = _label(entry, label_name, entry_where)
                    video_id = "/".join(part for part in (label_name, level, video) if part)
                    for frame in evenly_spaced(frames, frames_per_video):
                        path = _relative_frame(frame, root, prefix, entry_where)
                        rows.append(
                            {
                                "path": path,
                                "label": label,
                                "domain": label_name,
                                "video": video_id,
                                "split": split,
                                "dataset": dataset,
                                "frame": frame_number(path),
                                "compression": level,
                            }
                        )
    if compression is not None and compression not in compressions:
        found = sorted(c for c in compressions if c) or "none"
        raise ManifestError(f"{source}: no compression level {compression!r}; the JSON has {found}")
    if not rows:
        raise ManifestError(f"{source}: holds no videos")
    return manifest_from_rows(rows, root, source)
