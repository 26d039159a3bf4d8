"""The evidence behind a results cell: each run's saved predictions for its selected record.

A cell (one algorithm/backbone/variant under one selection rule, one evaluation group) reports the
mean of its runs' recorded metric. Its interval and any comparison resample the same runs'
``predictions.csv`` rows, so the two must be one source: :class:`RunPredictions` recomputes the
metric from those rows and refuses (:class:`ReportError`) when it disagrees with ``records.jsonl``,
rather than printing a mean from one file next to an interval from the other. It also counts the
test set behind a cell (frames and videos per class), which the tables show next to the metric.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.manifest import VIDEO_KEY_COLUMNS, video_keys
from workbench.metrics import compute_metrics
from workbench.training.records import RECORDS_FILE
from workbench.training.run_dir import PREDICTIONS_FILE, RunDir
from workbench.training.selection import SWAD_KIND

PREDICTION_COLUMNS: tuple[str, ...] = ("group", "label", "prob_fake", *VIDEO_KEY_COLUMNS, "step")
AGREEMENT_TOLERANCE = 1e-6  # records and predictions.csv must give the same metric up to float text rounding
SIZE_COLUMNS: tuple[str, ...] = ("real_frames", "fake_frames", "real_videos", "fake_videos")
VIDEO_BOOTSTRAP = "video bootstrap"  # ci_method prefix of intervals over test videos
SEED_BOOTSTRAP = "seed bootstrap"  # ci_method of intervals over seed-level values
NO_INTERVAL = "none"  # ci_method prefix of cells without an interval (the reason follows)

Sample = tuple[np.ndarray, np.ndarray, np.ndarray]  # labels, prob_fake, video keys of one run


class ReportError(ValueError):
    """Run directories that cannot be reported; the message names the run and file at fault."""


def numeric_column(cell: pd.DataFrame, column: str) -> pd.Series:
    """A column of collected run values as numbers (missing stays NaN); a value that is not a number is refused,
    naming the run and the value."""
    values = pd.to_numeric(cell[column], errors="coerce")
    bad = values.isna() & cell[column].notna()
    if bad.any():
        run = cell.loc[bad, "run_dir"].iloc[0]
        raise ReportError(f"{run}: {column} = {cell.loc[bad, column].iloc[0]!r} is not a number")
    return values


class RunPredictions:
    """Reads each run's ``predictions.csv`` once and hands out the rows of a run's selected record."""

    def __init__(self) -> None:
        self._tables: dict[str, pd.DataFrame | None] = {}

    def table(self, run_dir: str) -> pd.DataFrame | None:
        """The run's predictions (None without a ``predictions.csv``); raises naming a missing column."""
        if run_dir not in self._tables:
            path = RunDir(run_dir).predictions_file
            if not path.is_file():
                self._tables[run_dir] = None
            else:
                table = RunDir(run_dir).read_predictions()
                missing = [c for c in PREDICTION_COLUMNS if c not in table.columns]
                if missing:
                    raise ReportError(f"{path}: missing column(s) {missing}; have {list(table.columns)}")
                self._tables[run_dir] = table
        return self._tables[run_dir]

    def rows(self, run: pd.Series, group: str) -> pd.DataFrame | None:
        """The predictions of ``group`` by the model the run's rule selected, at its step (None if not saved)."""
        predictions = self.table(run["run_dir"])
        if predictions is None:
            return None
        model = SWAD_KIND if run["selection"] == "swad" else "source_val"
        produced = predictions["model"] == model if "model" in predictions.columns else model == "source_val"
        rows = predictions[(predictions["group"] == group) & (predictions["step"] == run["step"]) & produced]
        return None if rows.empty else rows

    def samples(self, cell: pd.DataFrame, group: str, metric: str) -> list[Sample] | None:
        """Per run of ``cell``, the (labels, prob_fake, videos) of ``group``; None if any run lacks them.

        Raises :class:`ReportError` naming the run, group, step and both values when the metric
        recomputed from the predictions differs from the recorded one: the files no longer describe
        the same model, and a cell must not mix them.
        """
        samples = []
        for _, run in cell.iterrows():
            rows = self.rows(run, group)
            if rows is None:
                return None
            sample = (rows["label"].to_numpy(), rows["prob_fake"].to_numpy(), video_keys(rows).to_numpy())
            recomputed = compute_metrics(*sample)[metric]
            recorded = run[f"{group}:{metric}"]
            if recomputed is None or abs(recomputed - recorded) > AGREEMENT_TOLERANCE:
                raise ReportError(
                    f"{Path(run['run_dir']) / PREDICTIONS_FILE}: {group} {metric} at step {run['step']} is "
                    f"{recomputed} from the predictions but {recorded} in {RECORDS_FILE}; the two files disagree, "
                    "so the cell's mean and interval would come from different models. Re-evaluate the run "
                    "(python -m workbench eval) or restore the files."
                )
            samples.append(sample)
        return samples

    def sizes(self, cell: pd.DataFrame, group: str) -> dict[str, float]:
        """Frames (from the records, else the predictions) and videos (from the predictions) per class
        behind a cell's ``group``.

        The largest count over the cell's runs (runs of one cell normally share their test set); a
        count no run has (no ``n_real`` in the records, no predictions) is NaN.
        """
        counts: dict[str, list[float]] = {column: [] for column in SIZE_COLUMNS}
        for _, run in cell.iterrows():
            rows = self.rows(run, group)
            for label, kind in enumerate(("real", "fake")):
                frames = pd.to_numeric(run.get(f"{group}:n_{kind}"), errors="coerce")
                if pd.isna(frames) and rows is not None:
                    frames = (rows["label"] == label).sum()
                if not pd.isna(frames):
                    counts[f"{kind}_frames"].append(float(frames))
                if rows is not None:
                    counts[f"{kind}_videos"].append(float(video_keys(rows)[rows["label"] == label].nunique()))
        return {column: max(values) if values else math.nan for column, values in counts.items()}
