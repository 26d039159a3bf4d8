"""Dataset manifests: one row per frame image, validated before anything trains on it.

Schema (data_manifests/schema.md): ``path`` (relative to the dataset root), ``label`` (0 = real, 1 = fake),
``domain``, ``video``, ``split`` (train/val/test), ``dataset``; optional ``mask_path``, ``frame``,
``compression`` and ``source_video`` (the real video a fake was made from, for paired sampling).
The dataset root is never stored in the manifest: it comes from the caller or ``$WORKBENCH_DATA_ROOT``.
"""

from __future__ import annotations

import csv
import os
import posixpath
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

REQUIRED_COLUMNS: tuple[str, ...] = ("path", "label", "domain", "video", "split", "dataset")
OPTIONAL_COLUMNS: tuple[str, ...] = ("mask_path", "frame", "compression", "source_video")
SPLITS: tuple[str, ...] = ("train", "val", "test")
LABELS: tuple[int, ...] = (0, 1)
ROOT_ENV_VAR = "WORKBENCH_DATA_ROOT"
# read as text: an id such as "000" must not become the number 0
TEXT_COLUMNS: tuple[str, ...] = (
    "path",
    "domain",
    "video",
    "split",
    "dataset",
    "mask_path",
    "compression",
    "source_video",
)


class ManifestError(ValueError):
    """A manifest that cannot be used as it is; the message names the file, row and value at fault."""


def resolve_root(manifest_path: str | Path, root: str | Path | None = None) -> Path:
    """Dataset root: the explicit argument, else ``$WORKBENCH_DATA_ROOT``, else the manifest's folder."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ROOT_ENV_VAR)
    if env:
        return Path(env)
    return Path(manifest_path).resolve().parent


def _row_error(source: str, line: int, column: str, value: object, why: str) -> ManifestError:
    if hasattr(value, "item"):
        value = value.item()  # show 3, not np.int64(3)
    return ManifestError(f"{source}: line {line}, column '{column}': {value!r} {why}")


def _optional_text(values: pd.Series) -> pd.Series:
    """Text or None: an optional column's empty cells become None, its values strings."""
    return pd.Series(
        [None if pd.isna(v) or str(v).strip() == "" else str(v) for v in values], index=values.index, dtype=object
    )


def _normalised(path: str) -> str:
    """A relative path with ``\\`` as ``/`` and ``.``/``..`` resolved: two spellings of one file compare equal."""
    return posixpath.normpath(path.replace("\\", "/"))


def _leaves_root(path: str) -> bool:
    """Whether a relative path climbs above the folder it is relative to (``a/../../b``)."""
    return _normalised(path).split("/")[0] == ".."


def _csv_lines(lines: Sequence[int] | None, rows: int, source: str) -> list[int]:
    """The CSV line of each row: as given, else header on line 1 and one line per row."""
    if lines is None:
        return list(range(2, rows + 2))
    if len(lines) != rows:
        raise ValueError(f"{source}: {len(lines)} line numbers for {rows} rows")
    return [int(line) for line in lines]


def validate_manifest(
    df: pd.DataFrame,
    root: str | Path | None = None,
    *,
    source: str = "<manifest>",
    check_files: bool = True,
    lines: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Check a manifest table and return it normalised (typed columns, fixed column order).

    Rejects missing columns, empty or absolute paths and paths that climb out of the root with ``..``
    (``path`` and ``mask_path``; the same file could be listed twice under two names), unknown labels and
    splits, videos that occur in more than one split, and (with ``check_files``) files that do not
    exist under ``root``. Nothing is dropped: the first fault raises :class:`ManifestError`, naming
    the row by its CSV line: ``lines[i]`` for row ``i`` when given (as :func:`read_manifest` does),
    else ``i + 2`` (header on line 1). ``mask_path`` and ``source_video`` become text or None.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ManifestError(f"{source}: missing required column(s) {missing}; have {list(df.columns)}")
    if len(df) == 0:
        raise ManifestError(f"{source}: manifest has no rows")
    df = df.reset_index(drop=True).copy()
    lines = _csv_lines(lines, len(df), source)
    for column in ("path", "domain", "video", "split", "dataset"):
        values = df[column]
        bad = values.isna() | (values.astype(str).str.strip() == "")
        if bad.any():
            i = int(bad.idxmax())
            raise _row_error(source, lines[i], column, df.at[i, column], "is empty")
        df[column] = values.astype(str)
    for column in ("mask_path", "source_video"):
        if column in df.columns:
            df[column] = _optional_text(df[column])
    for column in ("path", "mask_path"):
        if column not in df.columns:
            continue
        for i, path in enumerate(df[column]):
            if isinstance(path, str) and Path(path).is_absolute():
                why = "is absolute; paths are relative to the dataset root"
                raise _row_error(source, lines[i], column, path, why)
            if isinstance(path, str) and _leaves_root(path):
                why = "leaves the dataset root ('..'); set the root to a folder that contains the file"
                raise _row_error(source, lines[i], column, path, why)
    labels = pd.to_numeric(df["label"], errors="coerce")
    bad = labels.isna() | ~labels.isin(LABELS)
    if bad.any():
        i = int(bad.idxmax())
        raise _row_error(source, lines[i], "label", df.at[i, "label"], "is not a known label (0 = real, 1 = fake)")
    df["label"] = labels.astype(int)
    bad = ~df["split"].isin(SPLITS)
    if bad.any():
        i = int(bad.idxmax())
        raise _row_error(source, lines[i], "split", df.at[i, "split"], f"is not one of {list(SPLITS)}")
    splits_per_video = df.groupby(["dataset", "video"])["split"].nunique()
    leaking = splits_per_video[splits_per_video > 1]
    if len(leaking):
        dataset, video = leaking.index[0]
        found = sorted(df.loc[(df["dataset"] == dataset) & (df["video"] == video), "split"].unique())
        raise ManifestError(f"{source}: video {video!r} of dataset {dataset!r} appears in several splits {found}")
    normalised = df["path"].map(_normalised)
    duplicated = normalised.duplicated()
    if duplicated.any():
        i = int(duplicated.idxmax())
        first = int((normalised == normalised[i]).idxmax())
        why = f"is the file of line {lines[first]} ({df.at[first, 'path']!r}) again"
        raise _row_error(source, lines[i], "path", df.at[i, "path"], why)
    if check_files:
        if root is None:
            raise ManifestError(f"{source}: a dataset root is needed to check files")
        root = Path(root)
        for column in ("path", "mask_path"):
            if column not in df.columns:
                continue
            for i, rel in enumerate(df[column]):
                if isinstance(rel, str) and not (root / rel).is_file():
                    raise _row_error(source, lines[i], column, rel, f"does not exist under root {str(root)!r}")
    ordered = [c for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if c in df.columns]
    extra = [c for c in df.columns if c not in ordered]
    return df[ordered + extra]


def _is_blank(record: list[str]) -> bool:
    """A record pandas skips: an empty or whitespace-only line (a quoted ``""`` is a row)."""
    return not record or (len(record) == 1 and record[0] != "" and not record[0].strip())


def _data_lines(path: str | Path) -> list[int]:
    """The line on which each data row of a CSV starts, as pandas reads it.

    Like pandas, blank (or whitespace-only) lines are skipped and a quoted field may span lines, so
    error messages can name the line a person sees in an editor.
    """
    starts, end = [], 0
    with Path(path).open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        for record in reader:
            start, end = end + 1, reader.line_num
            if not _is_blank(record):
                starts.append(start)
    return starts[1:]  # the first record is the header


def read_csv_table(path: Path, dtype: dict[str, type] | type | None = None) -> tuple[pd.DataFrame, list[int]]:
    """A CSV as a table and the line of each row; only empty cells are missing ("NA", "None" are text)."""
    try:
        table = pd.read_csv(path, dtype=dtype, keep_default_na=False, na_values=[""])
        lines = _data_lines(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"{path}: cannot be parsed as CSV: {exc}") from exc
    if len(lines) != len(table):
        why = f"pandas reads {len(table)} rows but the csv module {len(lines)} (unbalanced quotes?)"
        raise ManifestError(f"{path}: cannot be parsed as CSV: {why}")
    return table, lines


def read_manifest(
    path: str | Path,
    root: str | Path | None = None,
    *,
    check_files: bool = True,
) -> tuple[pd.DataFrame, Path]:
    """Read and validate a manifest CSV; return the table and the resolved dataset root.

    Errors name the true CSV line of the row at fault (blank lines count); the table keeps each row's
    file and line (:data:`ORIGIN_COLUMNS`) so that later errors, e.g. an image that cannot be decoded,
    name them too.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {str(path)!r} does not exist")
    df, lines = read_csv_table(path, dtype={column: str for column in TEXT_COLUMNS})
    resolved = resolve_root(path, root)
    checked = validate_manifest(df, resolved, source=str(path), check_files=check_files, lines=lines)
    return checked.assign(**{ORIGIN_COLUMNS[0]: str(path), ORIGIN_COLUMNS[1]: lines}), resolved


# Where each row of a manifest read from disk came from (file and CSV line), for errors that concern one row.
ORIGIN_COLUMNS = ("csv_file", "csv_line")


def row_origin(rows: pd.DataFrame, index: int) -> str:
    """``"<file>: line <n>"`` of row ``index`` (by position), or ``"manifest row <index>"`` for a table not read
    from a file."""
    if all(column in rows.columns for column in ORIGIN_COLUMNS):
        return f"{rows[ORIGIN_COLUMNS[0]].iloc[index]}: line {int(rows[ORIGIN_COLUMNS[1]].iloc[index])}"
    return f"manifest row {index}"


def read_manifests(
    paths: str | Path | Sequence[str | Path],
    roots: str | Path | None | Sequence[str | Path | None] = None,
    *,
    check_files: bool = True,
) -> tuple[pd.DataFrame, list[Path]]:
    """Read one or several manifests (e.g. FF++ for training plus Celeb-DF, DFDC for cross-dataset tests).

    ``roots`` is one root for all, or one per manifest (``None`` entries fall back as in
    :func:`resolve_root`). The combined table has a ``root_index`` column pointing into the returned
    list of roots. Two manifests may not describe the same dataset (their videos would collide).
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise ManifestError("no manifest given")
    if roots is None or isinstance(roots, (str, Path)):
        roots = [roots] * len(paths)
    roots = list(roots)
    if len(roots) != len(paths):
        raise ManifestError(f"{len(paths)} manifests but {len(roots)} roots; give one root per manifest")
    tables, resolved, owner = [], [], {}
    for index, (path, root) in enumerate(zip(paths, roots)):
        df, root_path = read_manifest(path, root, check_files=check_files)
        for dataset in df["dataset"].unique():
            if dataset in owner:
                raise ManifestError(f"dataset {dataset!r} appears in both {owner[dataset]} and {path}")
            owner[dataset] = str(path)
        tables.append(df.assign(root_index=index))
        resolved.append(root_path)
    return pd.concat(tables, ignore_index=True), resolved


def write_manifest(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a manifest CSV (validated without touching the file system) and return its path."""
    path = Path(path)
    checked = validate_manifest(df, source=str(path), check_files=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    checked.to_csv(path, index=False)
    return path


VIDEO_KEY_COLUMNS: tuple[str, ...] = ("dataset", "domain", "video")


def video_keys(frames: pd.DataFrame) -> pd.Series:
    """The one video key, ``dataset/domain/video``: FF++-style folder names (``000``…) repeat across datasets
    and domains, and each is a different video. ``frames`` is a manifest or a predictions table."""
    missing = [c for c in VIDEO_KEY_COLUMNS if c not in frames.columns]
    if missing:
        raise ValueError(
            f"frames lack column(s) {missing} of the video key {'/'.join(VIDEO_KEY_COLUMNS)}; "
            f"have {list(frames.columns)}"
        )
    return frames["dataset"].astype(str) + "/" + frames["domain"].astype(str) + "/" + frames["video"].astype(str)


def domain_roles(df: pd.DataFrame) -> dict[str, str]:
    """Classify each domain as ``"real"`` (only label 0), ``"fake"`` (only label 1) or ``"mixed"``."""
    roles = {}
    for domain, labels in df.groupby("domain")["label"]:
        present = set(labels.unique())
        roles[domain] = "real" if present == {0} else "fake" if present == {1} else "mixed"
    return roles


def manifest_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, domain): role (real/fake/mixed), videos, frames per split, and frames with a mask."""
    roles = domain_roles(manifest)
    frames = pd.crosstab([manifest["dataset"], manifest["domain"]], manifest["split"])
    table = pd.DataFrame(index=frames.index)
    table["role"] = [roles[domain] for _, domain in table.index]
    table["videos"] = manifest.groupby(["dataset", "domain"])["video"].nunique()
    for split in ("train", "val", "test"):
        table[f"frames_{split}"] = frames[split] if split in frames.columns else 0
    if "mask_path" in manifest.columns:
        has_mask = manifest.assign(has=manifest["mask_path"].notna())
        table["with_mask"] = has_mask.groupby(["dataset", "domain"])["has"].sum()
    return table
