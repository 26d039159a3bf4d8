"""Turn analysis results and run records into the plain tables the figure builders draw.

Figures take plain data: matrices, DataFrames, per-label curves. This module holds the shaping
and checking they share (plotly and matplotlib variants alike), so a bad input fails the same way
with a message that names the offending row, run or key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.training.cells import NO_INTERVAL
from workbench.training.selection import load_records
from workbench.viz.labels import label as human_label

RunSource = str | Path | Sequence[Mapping[str, Any]]
"""A run directory (holding records.jsonl) or that run's records already loaded as dicts."""

LABEL_NAMES = {0: "real", 1: "fake"}


def _to_numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def square_matrix(matrix: Any, names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """A K×K float matrix and its K names (from ``names``, a DataFrame's index, or 0..K-1).

    A DataFrame's columns are put in the order of its index, so cell (i, j) is always (name_i, name_j);
    columns that are not the index's labels are an error.
    """
    if isinstance(matrix, pd.DataFrame):
        if set(matrix.columns) != set(matrix.index) or len(matrix.columns) != len(matrix.index):
            raise ValueError(
                f"a K×K DataFrame needs the same labels on both axes; index {list(matrix.index)}, "
                f"columns {list(matrix.columns)}"
            )
        matrix = matrix.loc[:, list(matrix.index)]
        names = [str(name) for name in matrix.index] if names is None else names
    values = _to_numpy(matrix).astype(np.float64)
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"expected a square K×K matrix, got shape {values.shape}")
    names = [str(k) for k in range(len(values))] if names is None else [str(name) for name in names]
    if len(names) != len(values):
        raise ValueError(f"{len(names)} names for a {len(values)}×{len(values)} matrix")
    return values, names


def _runs_of(label: str, source: RunSource | Sequence[RunSource]) -> list[list[Mapping[str, Any]]]:
    """The records of every run under one label (one run, or several seeds)."""
    if isinstance(source, (str, Path)):
        return [load_records(source)]
    items = list(source)
    if not items:
        raise ValueError(f"{label!r}: no runs or records given")
    dicts = [isinstance(item, Mapping) for item in items]
    if all(dicts):
        return [items]
    if any(dicts):
        raise ValueError(f"{label!r}: give one run's records (dicts) or a list of runs, not a mix of both")
    return [run for item in items for run in _runs_of(label, item)]


def alignment_frame(runs: Mapping[str, RunSource | Sequence[RunSource]], kind: str = "alignment") -> pd.DataFrame:
    """One row per analysis line ``{"kind": kind, "step": s, kind: {...}}`` of every run.

    ``runs`` maps a label (e.g. the algorithm) to a run (directory or records) or a list of runs
    (seeds). Columns: ``algorithm`` (the label), ``run`` (index within the label), ``step``, then
    the logged statistics (``cos_clean_mean``, ``cos_perturbed_mean``, ``conflict_rate``, …).
    """
    rows = []
    for label, source in runs.items():
        for run, records in enumerate(_runs_of(label, source)):
            for line, record in enumerate(records, start=1):
                if record.get("kind") != kind:
                    continue
                stats = record.get(kind)
                if not isinstance(stats, Mapping) or "step" not in record:
                    raise ValueError(
                        f"{label!r} run {run} record {line}: a {kind!r} line needs 'step' and a {kind!r} dict"
                    )
                rows.append({"algorithm": label, "run": run, "step": record["step"], **stats})
    if not rows:
        raise ValueError(f"no {kind!r} lines in the records of {list(runs)}")
    return pd.DataFrame(rows)


def eval_frame(runs: Mapping[str, RunSource | Sequence[RunSource]]) -> pd.DataFrame:
    """Long table of every evaluation line: ``algorithm``, ``run``, ``step``, ``group``, ``metric``, ``value``.

    ``group`` is an evaluation group (``source_val``, ``target/<domain>``, …) or ``"train"`` for the
    averaged ``update()`` statistics; null metrics become NaN and count fields (``n``…) are left out.
    """
    rows = []
    for label, source in runs.items():
        for run, records in enumerate(_runs_of(label, source)):
            for record in records:
                if "eval" not in record:
                    continue
                groups = {"train": record.get("train") or {}, **record["eval"]}
                for group, metrics in groups.items():
                    for metric, value in metrics.items():
                        if metric in ("n", "n_real", "n_fake") or isinstance(value, str):
                            continue
                        value = np.nan if value is None else float(value)
                        rows.append((label, run, record["step"], group, metric, value))
    if not rows:
        raise ValueError(f"no evaluation lines in the records of {list(runs)}")
    return pd.DataFrame(rows, columns=["algorithm", "run", "step", "group", "metric", "value"])


def split_eval_frame(
    frame: pd.DataFrame, metric: str, groups: Sequence[str] | None, loss: str
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """From an :func:`eval_frame`: the training-loss rows, the ``metric`` rows of ``groups`` (default all), and
    the groups."""
    require_columns(frame, ["algorithm", "step", "group", "metric", "value"], "training curves")
    evaluated = frame[(frame["group"] != "train") & (frame["metric"] == metric)]
    available = list(dict.fromkeys(evaluated["group"]))
    groups = list(groups) if groups is not None else available
    unknown = [group for group in groups if group not in available]
    if unknown:
        raise ValueError(f"no {metric!r} values for group(s) {unknown}; have {available}")
    train = frame[(frame["group"] == "train") & (frame["metric"] == loss)]
    return train, evaluated[evaluated["group"].isin(groups)], groups


def mean_over_runs(frame: pd.DataFrame, by: Sequence[str], value: str) -> pd.DataFrame:
    """``mean``, ``std`` (ddof=1; NaN for one run) and ``n`` of ``value`` per ``by`` combination."""
    missing = [column for column in [*by, value] if column not in frame.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}; have {list(frame.columns)}")
    grouped = frame.groupby(list(by), sort=True)[value]
    return pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "n": grouped.count()}).reset_index()


def labelled(data: pd.DataFrame | Mapping[str, pd.DataFrame], column: str = "algorithm") -> pd.DataFrame:
    """A table with a ``column`` of labels: a DataFrame as is, or ``{label: frame}`` stacked with that column."""
    if isinstance(data, pd.DataFrame):
        return data
    if not data:
        raise ValueError("no tables given")
    return pd.concat([frame.assign(**{column: label}) for label, frame in data.items()], ignore_index=True)


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Fail with the missing and available columns when ``frame`` lacks any of ``columns``."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs column(s) {missing}; have {list(frame.columns)}")


def curves(data: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{label: (coords, loss)}`` from one curve or a mapping of curves.

    A curve is anything with ``coords`` and ``loss`` (``workbench.analysis.landscape.LossCurve``) or
    a ``(coords, loss)`` pair.
    """
    items = data.items() if isinstance(data, Mapping) else [("loss", data)]
    result = {}
    for label, curve in items:
        if hasattr(curve, "coords") and hasattr(curve, "loss"):
            coords, loss = curve.coords, curve.loss
        else:
            coords, loss = curve
        coords, loss = _to_numpy(coords).astype(np.float64), _to_numpy(loss).astype(np.float64)
        if coords.ndim != 1 or coords.shape != loss.shape:
            raise ValueError(
                f"curve {label!r}: coords {coords.shape} and loss {loss.shape} must be equal-length vectors"
            )
        result[str(label)] = (coords, loss)
    return result


def surface(data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(alphas, betas, loss)`` of a 2-D slice (``LossSurface`` or a triple); ``loss[i, j]`` is at
    ``(alphas[i], betas[j])``."""
    if hasattr(data, "alphas"):
        alphas, betas, loss = data.alphas, data.betas, data.loss
    else:
        alphas, betas, loss = data
    alphas, betas, loss = (_to_numpy(v).astype(np.float64) for v in (alphas, betas, loss))
    if loss.shape != (len(alphas), len(betas)):
        raise ValueError(
            f"loss has shape {loss.shape}, expected (len(alphas), len(betas)) = {(len(alphas), len(betas))}"
        )
    return alphas, betas, loss


def rgb_uint8(image: Any) -> np.ndarray:
    """An ``H×W×3`` uint8 image from ``H×W×3`` or ``3×H×W`` (tensor or array; floats in [0, 1] or 0–255 ints)."""
    array = _to_numpy(image)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[-1] != 3:
        array = np.moveaxis(array, 0, -1)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected an RGB image H×W×3 or 3×H×W, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        if array.min() < 0 or array.max() > 1:
            raise ValueError(
                f"float images must lie in [0, 1] (undo input normalisation), got [{array.min()}, {array.max()}]"
            )
        return np.round(array * 255).astype(np.uint8)
    if array.min() < 0 or array.max() > 255:
        raise ValueError(f"integer images must lie in 0..255, got [{array.min()}, {array.max()}]")
    return array.astype(np.uint8)


def heat_map(values: Any, shape: tuple[int, int], what: str) -> np.ndarray:
    """A 2-D float map (accepts ``[1, H, W]``) that must match an image's ``H×W``."""
    array = _to_numpy(values).astype(np.float64)
    array = array.reshape(array.shape[-2:]) if array.ndim > 2 and np.prod(array.shape[:-2]) == 1 else array
    if array.shape != tuple(shape):
        raise ValueError(f"{what}: map has shape {array.shape} but the image is {tuple(shape)}")
    return array


def check_summary(summary: pd.DataFrame, metric: str | None = None) -> str:
    """Check a results summary for a bar figure and return the metric name to label it with.

    Needs ``algorithm``, ``group``, ``mean``, ``ci_low``, ``ci_high``, one row per (algorithm, group)
    and ordered intervals. The metric is ``metric``, else the label of the summary's ``metric`` column
    (as ``training.report.summarise`` writes it; ``"eer"`` → ``"EER"``), else "AUC"; a ``metric`` that
    contradicts that column is an error, so an EER summary is never drawn as AUC.
    """
    require_columns(summary, ["algorithm", "group", "mean", "ci_low", "ci_high"], "a results summary")
    duplicated = summary.duplicated(["algorithm", "group"])
    if duplicated.any():
        row = summary[duplicated].iloc[0]
        raise ValueError(f"summary has more than one row for ({row['algorithm']}, {row['group']}); filter it first")
    defined = summary.dropna(subset=["mean", "ci_low", "ci_high"])
    bad = defined[(defined["ci_low"] > defined["mean"]) | (defined["mean"] > defined["ci_high"])]
    if len(bad):
        row = bad.iloc[0]
        raise ValueError(
            f"summary row {bad.index[0]} ({row['algorithm']}, {row['group']}): "
            f"ci_low {row['ci_low']} <= mean {row['mean']} <= ci_high {row['ci_high']} does not hold"
        )
    recorded = sorted({str(m) for m in summary["metric"].dropna()}) if "metric" in summary.columns else []
    if len(recorded) > 1:
        raise ValueError(f"summary mixes metrics {recorded}; filter it to one first")
    if metric is not None and recorded and metric.lower() != recorded[0].lower():
        raise ValueError(f"metric {metric!r} does not match the summary's metric column {recorded[0]!r}")
    return metric or (human_label(recorded[0]) if recorded else "AUC")


def error_bar_caption(summary: pd.DataFrame) -> str:
    """What a results figure's error bars are, from the summary's ``ci_level`` and ``ci_method`` columns.

    A figure without this says nothing about its whiskers: a video bootstrap covers which test videos
    were drawn, a seed bootstrap the seed-to-seed spread, and some cells may have none. Without those
    columns the caption says that neither is known.
    """
    if not {"ci_level", "ci_method"} <= set(summary.columns):
        return "error bars: the summary's confidence intervals (level and method not recorded)"
    levels = sorted({f"{100 * float(level):g}%" for level in summary["ci_level"].dropna()})
    methods = [str(m) for m in summary["ci_method"].dropna()]
    drawn = sorted({m.split(" (", 1)[0] for m in methods if not m.startswith(NO_INTERVAL)})
    missing = sorted({m.removeprefix(f"{NO_INTERVAL}: ") for m in methods if m.startswith(NO_INTERVAL)})
    parts = [f"error bars: {'/'.join(levels)} CI, {' or '.join(drawn)}"] if drawn else ["no error bars"]
    if missing:
        parts.append(f"none where {'; '.join(missing)}")
    return "; ".join(parts)


def label_names(labels: pd.Series) -> pd.Series:
    """0/1 labels as ``real``/``fake`` (other values are kept as text)."""
    return labels.map(lambda value: LABEL_NAMES.get(value, str(value)) if not isinstance(value, str) else value)
