"""Celeb-DF v1 and v2: ``Celeb-real``, ``YouTube-real`` and ``Celeb-synthesis``, and the official test list.

``List_of_testing_videos.txt`` has lines ``<flag> <folder>/<name>.mp4`` where the flag is **1 for a
real video and 0 for a fake** — the opposite of our labels (0 = real, 1 = fake). The flag is checked
against the folder, so a list from another dataset or a flipped convention is caught. Frames of
``<folder>/<name>.mp4`` live in ``<folder>/frames/<name>/``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pandas as pd

from workbench.data.builders.common import VideoEntry, build_rows, subfolders
from workbench.data.manifest import ManifestError

CELEBDF_FOLDERS: dict[str, int] = {"Celeb-real": 0, "YouTube-real": 0, "Celeb-synthesis": 1}
TEST_LIST = "List_of_testing_videos.txt"
VERSIONS: dict[str, str] = {"v1": "CDFv1", "v2": "CDFv2"}
LIST_FLAG_TO_LABEL: dict[str, int] = {"1": 0, "0": 1}  # the list's 1 means REAL


def read_test_list(path: Path) -> dict[str, int]:
    """``{"<folder>/<name>": label}`` from the official test list, in our labels (0 = real, 1 = fake)."""
    if not path.is_file():
        raise ManifestError(f"Celeb-DF test list {str(path)!r} does not exist (it ships with the dataset)")
    videos: dict[str, int] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in LIST_FLAG_TO_LABEL:
            raise ManifestError(f"{path}: line {number}: {line!r} is not '<1 = real | 0 = fake> <folder>/<video>.mp4'")
        flag, name = parts
        relative = PurePosixPath(name)
        folder = relative.parts[0] if len(relative.parts) == 2 else None
        if folder not in CELEBDF_FOLDERS:
            raise ManifestError(f"{path}: line {number}: {name!r} is not in one of the folders {list(CELEBDF_FOLDERS)}")
        label = LIST_FLAG_TO_LABEL[flag]
        if label != CELEBDF_FOLDERS[folder]:
            said, folder_says = ("real", "fake") if label == 0 else ("fake", "real")
            raise ManifestError(
                f"{path}: line {number}: {name!r} is flagged {flag} ({said}) but {folder} holds {folder_says} videos"
            )
        video = relative.with_suffix("").as_posix()
        if video in videos:
            raise ManifestError(f"{path}: line {number}: {name!r} is listed twice")
        videos[video] = label
    if not videos:
        raise ManifestError(f"{path}: lists no videos")
    return videos


def build_celebdf(
    root: Path,
    *,
    version: str = "v2",
    include_train: bool = False,
    frames_per_video: int | None = None,
    allow_missing: bool = False,
) -> pd.DataFrame:
    """Manifest of Celeb-DF (``version`` ``v1`` or ``v2``): the official test videos, split ``test``.

    Celeb-DF has no official train/val split. With ``include_train`` the video folders not in the
    test list are added as split ``train`` (for within-dataset training); otherwise they are not
    used. Domain and dataset are ``CDFv1``/``CDFv2``; the domain holds both labels.
    """
    root = Path(root)
    if version not in VERSIONS:
        raise ManifestError(f"unknown Celeb-DF version {version!r}; expected one of {list(VERSIONS)}")
    name = VERSIONS[version]
    source = f"Celeb-DF {version} at {root}"
    test = read_test_list(root / TEST_LIST)
    videos = {video: (label, "test") for video, label in test.items()}
    if include_train:
        for folder, label in CELEBDF_FOLDERS.items():
            for video in subfolders(root / folder / "frames"):
                videos.setdefault(f"{folder}/{video}", (label, "train"))
    entries = [
        VideoEntry(
            video=video,
            frames_dir=Path(video).parent / "frames" / Path(video).name,
            label=label,
            domain=name,
            split=split,
            dataset=name,
        )
        for video, (label, split) in videos.items()
    ]
    return build_rows(root, entries, source=source, frames_per_video=frames_per_video, allow_missing=allow_missing)
