"""Video-level (cluster) bootstrap confidence intervals for a metric averaged over seeds.

Frames of one video are strongly correlated, so resampling frames would understate the spread.
Here the resampling unit is the video: each resample draws the real videos and the fake videos
separately, with replacement and in their original numbers (a stratified bootstrap, so every
resample has both classes); a drawn video brings all of its frames. When several seeds (runs)
were evaluated on the same videos, one draw of videos is applied to every seed's predictions, the
metric is computed per seed and the resample's statistic is the mean over seeds, the same statistic
as the reported mean. The interval is the percentile interval of these statistics; it reflects
which test videos happened to be sampled, while seed-to-seed spread is reported separately as std.
Two detectors evaluated on the same videos are compared under the same draws
(:func:`video_bootstrap_statistics` with two sets), so their difference's interval is paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from workbench.metrics.binary import (
    FRAME_METRICS,
    SCORE_METRICS,
    accuracy,
    check_labels,
    check_probabilities,
    check_videos,
    cross_entropy,
)


def mann_whitney_auc(labels: np.ndarray, prob_fake: np.ndarray) -> float:
    """ROC AUC through the Mann-Whitney U identity (mid-ranks for ties), equal to sklearn's value.

    AUC = (sum of the fakes' ranks - n_fake (n_fake + 1) / 2) / (n_fake n_real). It is used inside
    the bootstrap loop because it skips sklearn's per-call validation.
    """
    ranks = rankdata(prob_fake)
    is_fake = labels == 1
    n_fake = int(is_fake.sum())
    n_real = len(labels) - n_fake
    return float((ranks[is_fake].sum() - n_fake * (n_fake + 1) / 2.0) / (n_fake * n_real))


def _frame_metric(metric: str, threshold: float):
    if metric == "acc":
        return lambda y, p: accuracy(y, p, threshold)
    if metric == "auc":
        return mann_whitney_auc
    if metric == "log_loss":
        return cross_entropy
    return FRAME_METRICS[metric]


class _SeedPredictions:
    """One seed's predictions indexed by video code, so that a resample gathers rows without a loop."""

    def __init__(self, labels: np.ndarray, probs: np.ndarray, codes: np.ndarray, n_videos: int) -> None:
        order = np.argsort(codes, kind="stable")
        self.labels = labels[order]
        self.probs = probs[order]
        self.counts = np.bincount(codes, minlength=n_videos)
        self.starts = np.cumsum(self.counts) - self.counts
        self.video_probs = np.bincount(codes, weights=probs, minlength=n_videos) / np.maximum(self.counts, 1)

    def rows(self, videos: np.ndarray) -> np.ndarray:
        counts = self.counts[videos]
        first = np.repeat(self.starts[videos] - (np.cumsum(counts) - counts), counts)
        return first + np.arange(counts.sum())


def _check_sample(sample: tuple[Any, Any, Any], name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels, probs, videos = sample
    y = check_labels(labels, f"{name} labels")
    p = check_probabilities(probs, f"{name} prob_fake")
    v = check_videos(videos, f"{name} videos")
    if not len(y) == len(p) == len(v):
        raise ValueError(f"{name}: labels, prob_fake and videos differ in length {(len(y), len(p), len(v))}")
    return y, p, v


def video_bootstrap_statistics(
    sample_sets: Sequence[Sequence[tuple[Any, Any, Any]]],
    metric: str = "auc",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    threshold: float = 0.5,
) -> np.ndarray:
    """Seed-mean ``metric`` of each set of samples under the same stratified video resamples.

    ``sample_sets`` holds sets (e.g. two algorithms) of per-seed ``(labels, prob_fake, videos)``
    triples; every seed of every set must cover the same videos, every video must keep one label,
    and both classes must be present. Each resample draws the real and the fake videos once and
    applies that draw to every set, so differences between sets are paired. ``video_auc``
    resamples the per-video mean probabilities; the other metrics resample frames by video.

    Returns:
        An array of shape ``(len(sample_sets), n_boot)``: row i is set i's seed-mean metric per resample.
    """
    if metric not in SCORE_METRICS:
        raise ValueError(f"metric {metric!r} cannot be bootstrapped; choose one of {list(SCORE_METRICS)}")
    if not sample_sets or not all(sample_sets):
        raise ValueError("no predictions to bootstrap")
    if n_boot < 1:
        raise ValueError(f"need n_boot >= 1, got n_boot={n_boot}")
    single = len(sample_sets) == 1
    names = [
        [f"sample {s}" if single else f"set {k} sample {s}" for s in range(len(samples))]
        for k, samples in enumerate(sample_sets)
    ]
    checked = [
        _check_sample(sample, name)
        for samples, set_names in zip(sample_sets, names)
        for sample, name in zip(samples, set_names)
    ]

    video_ids, codes = np.unique(np.concatenate([v for _, _, v in checked]), return_inverse=True)
    all_labels = np.concatenate([y for y, _, _ in checked])
    per_video = pd.Series(all_labels).groupby(codes)
    mixed = np.flatnonzero(per_video.nunique().to_numpy() > 1)
    if len(mixed):
        raise ValueError(f"video {video_ids[mixed[0]]!r} has both real and fake frames")
    video_labels = per_video.first().to_numpy()
    strata = [np.flatnonzero(video_labels == label) for label in (0, 1)]
    if min(len(stratum) for stratum in strata) == 0:
        raise ValueError(f"bootstrap needs real and fake videos; have {len(strata[0])} real, {len(strata[1])} fake")

    predictions = []
    offset = 0
    for (y, p, _), name in zip(checked, [n for set_names in names for n in set_names]):
        seed_codes = codes[offset : offset + len(y)]
        offset += len(y)
        seen = np.unique(seed_codes)
        if len(seen) != len(video_ids):
            absent = video_ids[np.setdiff1d(np.arange(len(video_ids)), seen)[0]]
            raise ValueError(f"{name} has no predictions for video {absent!r}; seeds must cover the same videos")
        predictions.append(_SeedPredictions(y, p, seed_codes, len(video_ids)))
    set_of = np.repeat(np.arange(len(sample_sets)), [len(samples) for samples in sample_sets])

    rng = np.random.default_rng(seed)
    frame_metric = None if metric == "video_auc" else _frame_metric(metric, threshold)
    per_seed = np.empty((len(predictions), n_boot))
    for b in range(n_boot):
        drawn = np.concatenate([rng.choice(stratum, size=len(stratum), replace=True) for stratum in strata])
        for i, seed_predictions in enumerate(predictions):
            if frame_metric is None:
                per_seed[i, b] = mann_whitney_auc(video_labels[drawn], seed_predictions.video_probs[drawn])
            else:
                rows = seed_predictions.rows(drawn)
                per_seed[i, b] = frame_metric(seed_predictions.labels[rows], seed_predictions.probs[rows])
    return np.stack([per_seed[set_of == k].mean(axis=0) for k in range(len(sample_sets))])


def percentile_interval(statistics: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    """The central ``ci`` percentile interval of bootstrap statistics."""
    if not 0.0 < ci < 1.0:
        raise ValueError(f"need 0 < ci < 1, got ci={ci}")
    tail = 100.0 * (1.0 - ci) / 2.0
    low, high = np.percentile(statistics, [tail, 100.0 - tail])
    return float(low), float(high)


def video_bootstrap_ci(
    samples: Sequence[tuple[Any, Any, Any]],
    metric: str = "auc",
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    threshold: float = 0.5,
) -> tuple[float, float]:
    """Percentile interval of the seed-mean ``metric`` under a stratified video-level bootstrap.

    ``samples`` holds one ``(labels, prob_fake, videos)`` triple per seed, as one set of
    :func:`video_bootstrap_statistics`.
    """
    if n_boot < 1 or not 0.0 < ci < 1.0:
        raise ValueError(f"need n_boot >= 1 and 0 < ci < 1, got n_boot={n_boot}, ci={ci}")
    statistics = video_bootstrap_statistics([samples], metric, n_boot=n_boot, seed=seed, threshold=threshold)
    return percentile_interval(statistics[0], ci)
