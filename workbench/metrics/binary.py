"""Detection metrics for real (0) vs fake (1) scores: AUC, EER, AP, accuracy and video-level AUC.

All metrics come from scikit-learn; this module adds input validation, the EER read off the ROC
curve (two conventions: interpolated, and at the nearest ROC vertex as DeepfakeBench reports it;
docs/records.md compares them), the video-level aggregation, and the convention that a metric undefined on a subset (one
class only, no video ids) is ``None`` with a ``<metric>_reason`` string instead of an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score, roc_curve

METRIC_KEYS: tuple[str, ...] = (
    "auc",
    "eer",
    "eer_vertex",
    "ap",
    "acc",
    "video_auc",
    "log_loss",
    "n",
    "n_real",
    "n_fake",
)
SCORE_METRICS: tuple[str, ...] = ("auc", "eer", "eer_vertex", "ap", "acc", "video_auc", "log_loss")
LOWER_IS_BETTER: frozenset[str] = frozenset({"eer", "eer_vertex", "log_loss"})


def check_labels(labels: Any, name: str = "labels", index: Sequence | None = None) -> np.ndarray:
    """Return ``labels`` as an int array, or raise naming the first value that is not 0 or 1."""
    values = np.asarray(labels, dtype=object)
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {values.shape}")
    numeric = pd.to_numeric(pd.Series(values), errors="coerce")
    bad = (numeric.isna() | ~numeric.isin((0, 1))).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        where = index[i] if index is not None else i
        raise ValueError(f"{name}[{where!r}] = {values[i]!r} is not a label (0 = real, 1 = fake)")
    return numeric.to_numpy(dtype=int)


def check_probabilities(prob_fake: Any, name: str = "prob_fake", index: Sequence | None = None) -> np.ndarray:
    """Return ``prob_fake`` as a float array, or raise naming the first value not finite in [0, 1]."""
    values = np.asarray(prob_fake, dtype=object)
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {values.shape}")
    numeric = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(numeric) | (numeric < 0) | (numeric > 1)
    if bad.any():
        i = int(np.argmax(bad))
        where = index[i] if index is not None else i
        raise ValueError(f"{name}[{where!r}] = {values[i]!r} is not a finite probability in [0, 1]")
    return numeric


def check_videos(videos: Any, name: str = "videos", index: Sequence | None = None) -> np.ndarray:
    """Return video ids as a string array, or raise naming the first missing (None/NaN/empty) id."""
    values = np.asarray(videos, dtype=object)
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {values.shape}")
    series = pd.Series(values)
    bad = (series.isna() | (series.astype(str).str.strip() == "")).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        where = index[i] if index is not None else i
        raise ValueError(f"{name}[{where!r}] = {values[i]!r} is not a video id")
    return series.astype(str).to_numpy()


def _check_same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs differ in length: {lengths}")


def roc_auc(labels: np.ndarray, prob_fake: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half); both classes must be present."""
    return float(roc_auc_score(labels, prob_fake))


def equal_error_rate(labels: np.ndarray, prob_fake: np.ndarray) -> float:
    """Equal error rate: the error where the false-positive and false-negative rates are equal.

    ``sklearn.metrics.roc_curve`` (all thresholds kept) gives the ROC polyline through the vertices
    (FPR_i, TPR_i); with FNR_i = 1 - TPR_i the difference d_i = FPR_i - FNR_i rises from -1 at the
    first vertex to +1 at the last. We take the first vertex j with d_j >= 0 and interpolate linearly
    between vertices j-1 and j: t = -d_{j-1} / (d_j - d_{j-1}), EER = FPR_{j-1} + t (FPR_j - FPR_{j-1}).
    FPR and FNR are both linear along that segment, so FPR = FNR = EER at the crossing.
    """
    fpr, tpr, _ = roc_curve(labels, prob_fake, drop_intermediate=False)
    diff = fpr - (1.0 - tpr)
    j = int(np.argmax(diff >= 0))
    if j == 0:
        return float(fpr[0])
    t = -diff[j - 1] / (diff[j] - diff[j - 1])
    return float(fpr[j - 1] + t * (fpr[j] - fpr[j - 1]))


def vertex_equal_error_rate(labels: np.ndarray, prob_fake: np.ndarray) -> float:
    """Equal error rate read at an ROC vertex, the convention DeepfakeBench reports.

    ``roc_curve`` with its default ``drop_intermediate=True`` (collinear vertices removed); the EER is
    the FPR of the vertex where |FNR - FPR| is smallest (the first such vertex on a tie). Without
    interpolation it differs from :func:`equal_error_rate` wherever the crossing falls between
    vertices; papers that report this convention are compared with this key.
    """
    fpr, tpr, _ = roc_curve(labels, prob_fake)
    return float(fpr[np.argmin(np.abs((1.0 - tpr) - fpr))])


def average_precision(labels: np.ndarray, prob_fake: np.ndarray) -> float:
    """Average precision with fake as the positive class (sklearn's step-wise definition)."""
    return float(average_precision_score(labels, prob_fake))


def accuracy(labels: np.ndarray, prob_fake: np.ndarray, threshold: float = 0.5) -> float:
    """Fraction correct when ``prob_fake > threshold`` means fake (at 0.5: the argmax of two logits, ties real)."""
    return float(np.mean((prob_fake > threshold).astype(int) == labels))


def cross_entropy(labels: np.ndarray, prob_fake: np.ndarray) -> float:
    """Mean log loss −log p(true class): the 2-logit cross-entropy training minimises (probabilities clipped
    to [ε, 1 − ε] with float64's ε, as scikit-learn does). SWAD's loss valley is read off this metric."""
    return float(log_loss(labels, prob_fake, labels=[0, 1]))


def video_scores(labels: np.ndarray, prob_fake: np.ndarray, videos: np.ndarray) -> pd.DataFrame:
    """Per-video mean fake probability and label; raises naming a video that mixes real and fake frames."""
    frames = pd.DataFrame({"video": videos, "label": labels, "prob_fake": prob_fake})
    grouped = frames.groupby("video", sort=True)
    n_labels = grouped["label"].nunique()
    mixed = n_labels[n_labels > 1]
    if len(mixed):
        raise ValueError(
            f"video {mixed.index[0]!r} has both real and fake frames; video-level metrics need one label per video"
        )
    return pd.DataFrame({"label": grouped["label"].first(), "prob_fake": grouped["prob_fake"].mean()})


FRAME_METRICS = {
    "auc": roc_auc,
    "eer": equal_error_rate,
    "eer_vertex": vertex_equal_error_rate,
    "ap": average_precision,
}


def compute_metrics(
    labels: Any,
    prob_fake: Any,
    videos: Any | None = None,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Metrics of fake-probability scores against labels (0 = real, 1 = fake).

    Returns ``auc``, ``eer`` (interpolated), ``eer_vertex`` (:func:`vertex_equal_error_rate`), ``ap``,
    ``acc`` (``prob_fake > threshold`` is fake), ``video_auc``
    (AUC of the per-video mean ``prob_fake``; every video must have one label), ``log_loss``
    (:func:`cross_entropy`), ``n``, ``n_real`` and ``n_fake``. A metric that is undefined here (one class only,
    no samples, no video ids) is ``None`` and a ``<metric>_reason`` key says why. Video ids should be unique
    across the domains passed together (e.g. prefix them with the domain), since equal ids are pooled as one video.
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold {threshold!r} is not in [0, 1]")
    y = check_labels(labels)
    p = check_probabilities(prob_fake)
    v = check_videos(videos) if videos is not None else None
    _check_same_length(labels=y, prob_fake=p, **({"videos": v} if v is not None else {}))

    n_fake = int(y.sum())
    result: dict[str, Any] = {"n": int(len(y)), "n_real": int(len(y) - n_fake), "n_fake": n_fake}
    if len(y) == 0:
        for metric in SCORE_METRICS:
            result[metric] = None
            result[f"{metric}_reason"] = "no samples (n=0)"
        return {key: result[key] for key in (*METRIC_KEYS, *sorted(k for k in result if k.endswith("_reason")))}
    result["log_loss"] = cross_entropy(y, p)
    if result["n_real"] == 0 or n_fake == 0:
        result["acc"] = accuracy(y, p, threshold)
        reason = f"only one class present (n_real={result['n_real']}, n_fake={n_fake}); needs real and fake"
        for metric in (*FRAME_METRICS, "video_auc"):
            result[metric] = None
            result[f"{metric}_reason"] = reason
    else:
        result["acc"] = accuracy(y, p, threshold)
        for metric, function in FRAME_METRICS.items():
            result[metric] = function(y, p)
        if v is None:
            result["video_auc"] = None
            result["video_auc_reason"] = "no video ids"
        else:
            table = video_scores(y, p, v)
            result["video_auc"] = roc_auc(table["label"].to_numpy(), table["prob_fake"].to_numpy())
    return {key: result[key] for key in (*METRIC_KEYS, *sorted(k for k in result if k.endswith("_reason")))}
