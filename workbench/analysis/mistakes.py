"""A run's most confident mistakes, read from its ``predictions.csv``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from workbench.training.run_dir import RunDir

# What identifies a frame across the manifests of a run (relative paths can repeat between datasets).
FRAME_KEY: tuple[str, ...] = ("path", "domain", "video")


def misclassified(
    run_dir: str | Path,
    groups: Sequence[str] | None = None,
    threshold: float = 0.5,
    limit: int = 8,
    manifest: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The selected model's most confident mistakes in ``predictions.csv`` (one row per frame).

    ``groups`` defaults to ``source_test`` and every ``target/*`` group. Sorted by how far
    ``prob_fake`` is from the true label; column ``group`` is the first group the frame appeared in.
    A frame is identified by its ``path``, ``domain`` and ``video`` (two datasets may share relative
    paths). With ``manifest`` (e.g. :func:`workbench.training.runs.run_manifest`'s), each row gets its
    ``mask_path`` and ``root_index``, so :func:`workbench.data.frames.load_frames` finds it under its
    own dataset's root.
    """
    predictions = RunDir(run_dir).read_predictions()
    if groups is None:
        groups = [g for g in predictions["group"].unique() if g == "source_test" or g.startswith("target/")]
    rows = predictions[predictions["group"].isin(groups)].drop_duplicates(FRAME_KEY)
    wrong = rows[(rows["prob_fake"] >= threshold).astype(int) != rows["label"]]
    error = (wrong["label"] - wrong["prob_fake"]).abs()
    wrong = wrong.assign(error=error).sort_values("error", ascending=False).head(limit).reset_index(drop=True)
    if manifest is not None:
        extra = [c for c in ("mask_path", "root_index") if c in manifest.columns]
        frames = manifest[[*FRAME_KEY, *extra]].astype({"video": str}).drop_duplicates(FRAME_KEY)
        wrong = wrong.merge(frames, on=list(FRAME_KEY), how="left")
    return wrong


def prediction_titles(rows: pd.DataFrame) -> list[str]:
    """``"i. domain<br>real/fake · p=0.87"`` per prediction row (``p`` = predicted probability of fake)."""
    return [
        f"{i + 1}. {row.domain}<br>{'fake' if row.label == 1 else 'real'} · p={row.prob_fake:.2f}"
        for i, row in enumerate(rows.itertuples())
    ]
