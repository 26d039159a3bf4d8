"""FaceForensics++ and DeepFakeDetection (DFD), which ship in the same folder layout.

Frames of a video live in ``<sequences>/<compression>/frames/<video id>/`` (see
``data_manifests/README.md``). FF++ train/val/test come from the official split files
``train.json``, ``val.json`` and ``test.json``: lists of ``[a, b]`` pairs of real video ids; a pair
puts the reals ``a`` and ``b`` and the fakes ``a_b`` and ``b_a`` of every manipulation in that split.
In ``a_b`` the face of ``b`` is put into the video ``a``, so ``a`` is the fake's source video.
DFD has no official split: it is a cross-dataset test set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from workbench.data.builders.common import VideoEntry, build_rows, require_dir, subfolders
from workbench.data.manifest import SPLITS, ManifestError

COMPRESSIONS: tuple[str, ...] = ("raw", "c23", "c40")
# short name -> (folder under manipulated_sequences, domain)
FFPP_METHODS: dict[str, tuple[str, str]] = {
    "DF": ("Deepfakes", "FF-DF"),
    "F2F": ("Face2Face", "FF-F2F"),
    "FS": ("FaceSwap", "FF-FS"),
    "NT": ("NeuralTextures", "FF-NT"),
    "FSh": ("FaceShifter", "FF-FSh"),
}
DEFAULT_METHODS: tuple[str, ...] = ("DF", "F2F", "FS", "NT")
FFPP_DATASET = "FF++"
FFPP_REAL_DOMAIN = "FF-real"
ORIGINALS = Path("original_sequences") / "youtube"


def _check_compression(compression: str) -> None:
    if compression not in COMPRESSIONS:
        raise ManifestError(f"unknown compression {compression!r}; expected one of {list(COMPRESSIONS)}")


def _method_folder(method: str) -> tuple[str, str]:
    """(folder, domain) of a manipulation given by short name (``DF``) or folder name (``Deepfakes``)."""
    for short, (folder, domain) in FFPP_METHODS.items():
        if method in (short, folder):
            return folder, domain
    known = [f"{short} ({folder})" for short, (folder, _) in FFPP_METHODS.items()]
    raise ManifestError(f"unknown FF++ manipulation {method!r}; expected one of {known}")


def read_ffpp_splits(splits_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """The official pairs per split, checked: well-formed, and no video id in two splits or twice."""
    splits: dict[str, list[tuple[str, str]]] = {}
    seen: dict[str, str] = {}
    for split in SPLITS:
        path = splits_dir / f"{split}.json"
        if not path.is_file():
            raise ManifestError(
                f"FF++ split file {str(path)!r} does not exist (it ships with FaceForensics++ as {split}.json)"
            )
        try:
            pairs = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(pairs, list):
            raise ManifestError(f"{path}: expected a list of [a, b] pairs, got {type(pairs).__name__}")
        splits[split] = []
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) and v for v in pair)):
                raise ManifestError(f'{path}: entry {i} is {pair!r}, not a pair of video ids like ["000", "003"]')
            for video in pair:
                if video in seen:
                    where = "twice in this file" if seen[video] == split else f"also in {seen[video]}.json"
                    raise ManifestError(f"{path}: entry {i}: video {video!r} is {where}; splits must not overlap")
                seen[video] = split
            splits[split].append((pair[0], pair[1]))
    return splits


def _check_all_listed(root: Path, folder: Path, listed: set[str], source: str) -> None:
    unlisted = sorted(set(subfolders(root / folder)) - listed)
    if unlisted:
        shown = ", ".join(unlisted[:5]) + (f" (and {len(unlisted) - 5} more)" if len(unlisted) > 5 else "")
        raise ManifestError(
            f"{source}: {len(unlisted)} video folder(s) in {folder.as_posix()} are in no split file: {shown}; "
            "are the split files those of this dataset?"
        )


def build_ffpp(
    root: Path,
    *,
    compression: str = "c23",
    methods: Iterable[str] = DEFAULT_METHODS,
    splits_dir: Path | None = None,
    frames_per_video: int | None = None,
    allow_missing: bool = False,
) -> pd.DataFrame:
    """Manifest of FaceForensics++ at one compression: reals ``FF-real`` and one domain per manipulation.

    ``splits_dir`` holds the official split files (default ``<root>/splits``). Every real and fake
    video of every pair must have frames (or ``allow_missing``), and every frame folder found must
    belong to a pair. Fakes record ``source_video`` = the real video they were made from; reals
    record their own id. Mask frames are taken from ``<Method>/<compression>/masks/<a_b>/`` (crops
    made by ``workbench preprocess --masks``), else ``<Method>/masks/frames/<a_b>/``.
    """
    root = Path(root)
    source = f"FF++ at {root}"
    _check_compression(compression)
    splits = read_ffpp_splits(Path(splits_dir) if splits_dir is not None else root / "splits")
    real_frames = ORIGINALS / compression / "frames"
    require_dir(root, real_frames, source, "real videos'")

    entries = []
    for split, pairs in splits.items():
        for video in (v for pair in pairs for v in pair):
            entries.append(
                VideoEntry(
                    video=f"youtube/{compression}/{video}",
                    frames_dir=real_frames / video,
                    label=0,
                    domain=FFPP_REAL_DOMAIN,
                    split=split,
                    dataset=FFPP_DATASET,
                    compression=compression,
                    source_video=f"youtube/{compression}/{video}",
                )
            )
    _check_all_listed(root, real_frames, {v for pairs in splits.values() for pair in pairs for v in pair}, source)

    for method in dict.fromkeys(methods):
        folder, domain = _method_folder(method)
        method_dir = Path("manipulated_sequences") / folder
        fake_frames = method_dir / compression / "frames"
        require_dir(root, fake_frames, source, f"{folder} fakes' (choose the manipulations present with methods=)")
        names = set()
        for split, pairs in splits.items():
            for target, swapped in (ab for a, b in pairs for ab in ((a, b), (b, a))):
                name = f"{target}_{swapped}"
                names.add(name)
                entries.append(
                    VideoEntry(
                        video=f"{folder}/{compression}/{name}",
                        frames_dir=fake_frames / name,
                        label=1,
                        domain=domain,
                        split=split,
                        dataset=FFPP_DATASET,
                        compression=compression,
                        source_video=f"youtube/{compression}/{target}",
                        mask_dirs=(method_dir / compression / "masks" / name, method_dir / "masks" / "frames" / name),
                    )
                )
        _check_all_listed(root, fake_frames, names, source)
    return build_rows(root, entries, source=source, frames_per_video=frames_per_video, allow_missing=allow_missing)


def build_dfd(
    root: Path,
    *,
    compression: str = "c23",
    split: str = "test",
    frames_per_video: int | None = None,
    allow_missing: bool = False,
) -> pd.DataFrame:
    """Manifest of DeepFakeDetection: every video folder found, in one split (``test`` by default).

    Reals from ``original_sequences/actors/<compression>/frames/``, fakes from
    ``manipulated_sequences/DeepFakeDetection/<compression>/frames/``; domain and dataset ``DFD``.
    """
    root = Path(root)
    source = f"DFD at {root}"
    _check_compression(compression)
    if split not in SPLITS:
        raise ManifestError(f"{source}: split {split!r} is not one of {list(SPLITS)}")
    fake_dir = Path("manipulated_sequences") / "DeepFakeDetection"
    groups = (
        (Path("original_sequences") / "actors" / compression / "frames", 0, "actors"),
        (fake_dir / compression / "frames", 1, "DeepFakeDetection"),
    )
    entries = []
    for frames_dir, label, prefix in groups:
        require_dir(root, frames_dir, source, "real videos'" if label == 0 else "fake videos'")
        for name in subfolders(root / frames_dir):
            masks = (fake_dir / compression / "masks" / name, fake_dir / "masks" / "frames" / name) if label else ()
            entries.append(
                VideoEntry(
                    video=f"{prefix}/{compression}/{name}",
                    frames_dir=frames_dir / name,
                    label=label,
                    domain="DFD",
                    split=split,
                    dataset="DFD",
                    compression=compression,
                    mask_dirs=masks,
                )
            )
    return build_rows(root, entries, source=source, frames_per_video=frames_per_video, allow_missing=allow_missing)
