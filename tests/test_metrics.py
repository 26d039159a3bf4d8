"""Tests for workbench.metrics: hand-computed AUC/EER/AP, undefined cases, per-domain tables, bootstrap."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from sklearn.metrics import roc_auc_score, roc_curve

from workbench.metrics import (
    LOWER_IS_BETTER,
    compute_metrics,
    equal_error_rate,
    per_domain_metrics,
    percentile_interval,
    vertex_equal_error_rate,
    video_bootstrap_ci,
    video_bootstrap_statistics,
)
from workbench.metrics.bootstrap import mann_whitney_auc


def test_hand_computed_metrics_without_ties():
    # reals 0.1, 0.4; fakes 0.35, 0.8. Ordered (fake > real) pairs: 0.35>0.1, 0.8>0.1, 0.8>0.4 -> AUC 3/4.
    # ROC vertices (FPR, TPR): (0,0) (0,.5) (.5,.5) (.5,1) (1,1); FNR = 1 - TPR crosses FPR at (.5,.5) -> EER .5.
    # AP: ranked 0.8 F (P=1, R=.5), 0.4 R, 0.35 F (P=2/3, R=1) -> .5*1 + .5*2/3 = 5/6.
    # acc at 0.5: predicted fake only 0.8 -> 3 of 4 right. One frame per video: video AUC = AUC.
    m = compute_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], videos=["a", "b", "c", "d"])
    assert m["auc"] == pytest.approx(0.75)
    assert m["eer"] == pytest.approx(0.5)
    assert m["ap"] == pytest.approx(5 / 6)
    assert m["acc"] == pytest.approx(0.75)
    assert m["video_auc"] == pytest.approx(0.75)
    assert (m["n"], m["n_real"], m["n_fake"]) == (4, 2, 2)
    assert not any(k.endswith("_reason") for k in m)


def test_ties_count_half_and_eer_interpolates_on_a_diagonal_segment():
    # reals 0.2, 0.6; fakes 0.6, 0.9. Pairs: 0.6>0.2 (1), 0.6=0.6 (1/2), 0.9>both (2) -> AUC 3.5/4 = 0.875.
    # ROC vertices: (0,0) (0,.5) (.5,1) (1,1); FPR - FNR at (0,.5) is -.5, at (.5,1) is +.5 -> halfway:
    # FPR = .25 and FNR = .5 - .25 = .25 -> EER .25.
    # AP: threshold .9 -> P=1, R=.5; threshold .6 -> 3 predicted, 2 fake: P=2/3, R=1 -> .5 + .5*2/3 = 5/6.
    m = compute_metrics([0, 0, 1, 1], [0.2, 0.6, 0.6, 0.9])
    assert m["auc"] == pytest.approx(0.875)
    assert m["eer"] == pytest.approx(0.25)
    assert m["ap"] == pytest.approx(5 / 6)


def test_eer_on_a_vertical_segment_and_accuracy_threshold():
    # reals .1 .5 .7; fakes .6 .9. Ordered pairs: .6>.1, .6>.5, .9>all three -> AUC 5/6.
    # ROC vertices: (0,0) (0,.5) (1/3,.5) (1/3,1) (2/3,1) (1,1). FPR - FNR: -1, -.5, -1/6, 1/3 -> crossing
    # between (1/3,.5) and (1/3,1) at t = (1/6)/(1/2) = 1/3: FPR = 1/3, FNR = .5 - .5/3 = 1/3 -> EER 1/3.
    labels, probs = [0, 0, 0, 1, 1], [0.1, 0.5, 0.7, 0.6, 0.9]
    m = compute_metrics(labels, probs)
    assert m["auc"] == pytest.approx(5 / 6)
    assert m["eer"] == pytest.approx(1 / 3)
    assert m["ap"] == pytest.approx(5 / 6)
    # > 0.5 is fake: predictions 0 0 1 1 1 -> 4/5 right; > 0.65: 0 0 1 0 1 -> 3/5 right.
    assert m["acc"] == pytest.approx(0.8)
    assert compute_metrics(labels, probs, threshold=0.65)["acc"] == pytest.approx(0.6)


def test_all_scores_tied_give_chance_and_threshold_ties_count_as_real():
    m = compute_metrics([0, 1], [0.5, 0.5])
    assert m["auc"] == pytest.approx(0.5)
    assert m["eer"] == pytest.approx(0.5)
    assert m["acc"] == pytest.approx(0.5)  # 0.5 is not > 0.5: both called real


def test_video_auc_averages_frames_per_video():
    # real a: .125 .5 (mean .3125), real b: .625; fake c: .375 .875 (mean .625), fake d: .9375.
    # Video pairs: .625>.3125, .625=.625 (1/2), .9375>both -> 3.5/4.
    # Frame pairs: .375 beats only .125; .875 and .9375 beat all three reals -> 7/9.
    labels = [0, 0, 0, 1, 1, 1]
    probs = [0.125, 0.5, 0.625, 0.375, 0.875, 0.9375]
    videos = ["a", "a", "b", "c", "c", "d"]
    m = compute_metrics(labels, probs, videos)
    assert m["video_auc"] == pytest.approx(0.875)
    assert m["auc"] == pytest.approx(7 / 9)


def test_video_with_mixed_labels_is_named():
    with pytest.raises(ValueError, match="'clip7'"):
        compute_metrics([0, 1, 1], [0.1, 0.9, 0.8], ["clip7", "clip7", "x"])


def test_one_class_subset_gives_none_with_reasons():
    m = compute_metrics([1, 1], [0.7, 0.2], ["a", "b"])
    for metric in ("auc", "eer", "ap", "video_auc"):
        assert m[metric] is None
        assert "one class" in m[f"{metric}_reason"]
    assert m["acc"] == pytest.approx(0.5)
    assert (m["n_real"], m["n_fake"]) == (0, 2)


def test_missing_video_ids_and_empty_input():
    m = compute_metrics([0, 1], [0.2, 0.9])
    assert m["video_auc"] is None and m["video_auc_reason"] == "no video ids"
    empty = compute_metrics([], [])
    assert empty["n"] == 0
    assert all(empty[k] is None and empty[f"{k}_reason"] for k in ("auc", "eer", "ap", "acc", "video_auc"))


@pytest.mark.parametrize(
    ("labels", "probs", "videos", "message"),
    [
        ([0, 1, 1], [0.1, 0.2], None, "differ in length"),
        ([0, 1, 2], [0.1, 0.2, 0.3], None, r"labels\[2\] = 2"),
        ([0, 1, "x"], [0.1, 0.2, 0.3], None, r"labels\[2\] = 'x'"),
        ([0, 1, 1], [0.1, 1.5, 0.3], None, r"prob_fake\[1\] = 1.5"),
        ([0, 1, 1], [0.1, float("nan"), 0.3], None, r"prob_fake\[1\] = nan"),
        ([0, 1, 1], [0.1, 0.2, 0.3], ["a", None, "c"], r"videos\[1\] = None"),
        ([0, 1, 1], [0.1, 0.2, 0.3], ["a", "b"], "differ in length"),
    ],
)
def test_bad_inputs_are_named(labels, probs, videos, message):
    with pytest.raises(ValueError, match=message):
        compute_metrics(labels, probs, videos)


def _pairwise_auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Fraction of (fake, real) pairs ordered correctly, ties counting one half."""
    fakes, reals = probs[labels == 1], probs[labels == 0]
    wins = sum(1.0 if f > r else 0.5 if f == r else 0.0 for f, r in itertools.product(fakes, reals))
    return wins / (len(fakes) * len(reals))


def _eer_by_root_finding(labels: np.ndarray, probs: np.ndarray) -> float:
    """EER as the root of FPR - FNR along the ROC polyline, found numerically by brentq."""
    fpr, tpr, _ = roc_curve(labels, probs, drop_intermediate=False)
    s = np.arange(len(fpr))
    gap = lambda x: np.interp(x, s, fpr) - np.interp(x, s, 1 - tpr)  # noqa: E731
    return float(np.interp(brentq(gap, 0, len(fpr) - 1, xtol=1e-12), s, fpr))


def test_auc_and_eer_match_independent_computations_on_random_scores_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(5):
        labels = rng.integers(0, 2, 40)
        labels[:2] = [0, 1]
        probs = np.round(rng.random(40) * 0.6 + 0.3 * labels, 1)  # rounding makes ties
        m = compute_metrics(labels, probs)
        assert m["auc"] == pytest.approx(_pairwise_auc(labels, probs))
        assert m["eer"] == pytest.approx(_eer_by_root_finding(labels, probs), abs=1e-9)
        assert mann_whitney_auc(labels, probs) == pytest.approx(roc_auc_score(labels, probs))


def test_perfect_separation_has_zero_eer():
    assert equal_error_rate(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.0)


def test_vertex_eer_reads_the_nearest_vertex_where_the_interpolated_eer_crosses_between():
    # reals 0.2, 0.6; fakes 0.6, 0.9. roc_curve's kept vertices (FPR, TPR): (0,0) (0,.5) (.5,1) (1,1);
    # |FNR - FPR|: 1, .5, .5, 1 -> the first nearest vertex (0, .5) gives FPR 0, while the interpolated
    # crossing lies halfway along the segment at .25.
    labels, probs = np.array([0, 0, 1, 1]), np.array([0.2, 0.6, 0.6, 0.9])
    assert vertex_equal_error_rate(labels, probs) == pytest.approx(0.0)
    assert equal_error_rate(labels, probs) == pytest.approx(0.25)
    m = compute_metrics(labels, probs)
    assert m["eer_vertex"] == pytest.approx(0.0) and "eer_vertex" in LOWER_IS_BETTER


def _vertex_eer_by_scanning(labels: np.ndarray, probs: np.ndarray) -> float:
    """The FPR of the first kept ROC vertex minimising |FNR - FPR|, scanned one vertex at a time."""
    fpr, tpr, _ = roc_curve(labels, probs)
    best, best_gap = None, math.inf
    for x, y in zip(fpr, tpr):
        gap = abs((1 - y) - x)
        if gap < best_gap:
            best, best_gap = x, gap
    return float(best)


def test_vertex_eer_matches_a_scan_of_sklearns_roc_vertices_on_random_scores():
    rng = np.random.default_rng(7)
    differences = []
    for _ in range(20):
        labels = rng.integers(0, 2, 60)
        labels[:2] = [0, 1]
        probs = np.round(rng.random(60) * 0.6 + 0.3 * labels, 2)
        assert vertex_equal_error_rate(labels, probs) == _vertex_eer_by_scanning(labels, probs)
        differences.append(abs(vertex_equal_error_rate(labels, probs) - equal_error_rate(labels, probs)))
    assert max(differences) > 0  # the two conventions do differ on ordinary scores


def _predictions() -> pd.DataFrame:
    rows = [
        ("source_test", "FF-real", "r1", 0, 0.1),
        ("source_test", "FF-real", "r2", 0, 0.3),
        ("source_test", "FF-real", "r3", 0, 0.6),
        ("source_test", "FF-DF", "d1", 1, 0.7),
        ("source_test", "FF-DF", "d2", 1, 0.2),
        ("source_test", "FF-F2F", "f1", 1, 0.9),
        ("source_test", "FF-F2F", "f2", 1, 0.8),
        ("target/CDF", "CDF", "c1", 0, 0.4),
        ("target/CDF", "CDF", "c2", 1, 0.3),
    ]
    table = pd.DataFrame(rows, columns=["group", "domain", "video", "label", "prob_fake"])
    table["path"] = [f"img{i}.png" for i in range(len(table))]
    table["dataset"] = ["FF++"] * 7 + ["CDFv2"] * 2
    table["split"] = "test"
    table["step"] = 100
    return table


def test_per_domain_metrics_pools_reals_for_fake_only_domains():
    table = per_domain_metrics(_predictions())
    rows = table.set_index(["group", "domain"])
    # FF-DF fakes .7 .2 vs reals .1 .3 .6: .7 beats 3, .2 beats 1 -> AUC 4/6.
    assert rows.loc[("source_test", "FF-DF"), "auc"] == pytest.approx(4 / 6)
    assert rows.loc[("source_test", "FF-DF"), "reals"] == "pooled"
    assert rows.loc[("source_test", "FF-DF"), "n"] == 5
    assert rows.loc[("source_test", "FF-F2F"), "auc"] == pytest.approx(1.0)
    # Reals alone: AUC undefined, accuracy = 2/3 (0.6 is called fake).
    real = rows.loc[("source_test", "FF-real")]
    assert np.isnan(real["auc"]) and "one class" in real["auc_reason"]
    assert real["acc"] == pytest.approx(2 / 3)
    # A domain with both classes is scored alone: c2 (.3) below c1 (.4) -> AUC 0.
    cdf = rows.loc[("target/CDF", "CDF")]
    assert cdf["reals"] == "own" and cdf["auc"] == pytest.approx(0.0)


def test_per_domain_metrics_own_reals_only():
    rows = per_domain_metrics(_predictions(), reals="own").set_index(["group", "domain"])
    assert rows.loc[("source_test", "FF-DF"), "n"] == 2
    assert np.isnan(rows.loc[("source_test", "FF-DF"), "auc"])


def test_per_domain_metrics_rejects_bad_tables():
    with pytest.raises(ValueError, match="prob_fake"):
        per_domain_metrics(_predictions().drop(columns="prob_fake"))
    bad = _predictions()
    bad.loc[4, "label"] = 3
    with pytest.raises(ValueError, match=r"row\[4\] = 3"):
        per_domain_metrics(bad)
    with pytest.raises(ValueError, match="reals"):
        per_domain_metrics(_predictions(), reals="some")


def _clustered_sample(frames_per_video: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat([0] * 8 + [1] * 8, frames_per_video)
    video_probs = np.clip(rng.normal(0.35, 0.15, 16) + 0.3 * np.repeat([0, 1], 8), 0, 1)
    probs = np.repeat(video_probs, frames_per_video)
    videos = np.repeat([f"v{i}" for i in range(16)], frames_per_video)
    return labels, probs, videos


@pytest.mark.parametrize("metric", ["auc", "video_auc", "eer", "acc", "ap"])
def test_video_bootstrap_is_reproducible_and_contains_the_seed_mean(metric):
    samples = [_clustered_sample(3, seed) for seed in range(3)]
    low, high = video_bootstrap_ci(samples, metric, n_boot=300, seed=1)
    assert (low, high) == video_bootstrap_ci(samples, metric, n_boot=300, seed=1)
    mean = np.mean([compute_metrics(*s)[metric] for s in samples])
    assert low <= mean <= high
    assert low < high


def test_video_bootstrap_depends_on_its_seed():
    samples = [_clustered_sample(3, seed) for seed in range(3)]
    assert video_bootstrap_ci(samples, n_boot=300, seed=1) != video_bootstrap_ci(samples, n_boot=300, seed=2)


def test_video_bootstrap_resamples_whole_videos():
    # Duplicating every frame of a video changes none of the metrics, so a video-level bootstrap
    # gives the same interval with 1 or 5 identical frames per video (a frame-level one would not).
    one = video_bootstrap_ci([_clustered_sample(1, 0)], "auc", n_boot=200, seed=0)
    five = video_bootstrap_ci([_clustered_sample(5, 0)], "auc", n_boot=200, seed=0)
    assert one == pytest.approx(five)


def test_video_bootstrap_with_one_video_per_class_is_degenerate():
    assert video_bootstrap_ci([([0, 1, 1], [0.2, 0.7, 0.9], ["r", "f", "f"])], "auc", n_boot=20) == (1.0, 1.0)


def test_video_bootstrap_rejects_unusable_predictions():
    with pytest.raises(ValueError, match="real and fake videos"):
        video_bootstrap_ci([([1, 1], [0.2, 0.7], ["a", "b"])])
    with pytest.raises(ValueError, match="no predictions for video 'c'"):
        video_bootstrap_ci([([0, 1], [0.2, 0.7], ["a", "b"]), ([0, 1], [0.2, 0.7], ["a", "c"])])
    with pytest.raises(ValueError, match="'a' has both"):
        video_bootstrap_ci([([0, 1, 1], [0.2, 0.7, 0.9], ["a", "a", "b"])])
    with pytest.raises(ValueError, match="cannot be bootstrapped"):
        video_bootstrap_ci([([0, 1], [0.2, 0.7], ["a", "b"])], "n")


def test_paired_statistics_share_the_video_draws():
    first = [_clustered_sample(3, seed) for seed in range(2)]
    second = [_clustered_sample(3, seed) for seed in range(5, 7)]
    statistics = video_bootstrap_statistics([first, second], "auc", n_boot=200, seed=3)
    assert statistics.shape == (2, 200)
    # each set alone, with the same bootstrap seed, sees the same draws as in the pair
    alone = video_bootstrap_statistics([first], "auc", n_boot=200, seed=3)[0]
    np.testing.assert_allclose(statistics[0], alone)
    assert percentile_interval(alone, 0.95) == video_bootstrap_ci(first, "auc", n_boot=200, seed=3)
    # one draw per resample, applied to both sets: a set compared with itself differs by exactly 0
    same = video_bootstrap_statistics([first, first], "auc", n_boot=50, seed=0)
    assert np.array_equal(same[0], same[1])
    # resample b's statistic recomputed by hand from the videos it drew
    # (videos are numbered in sorted-id order; each stratum is drawn in its original size, reals first)
    ids = np.unique(second[0][2])
    video_label = {v: y for v, y in zip(second[0][2], second[0][0])}
    strata = [np.flatnonzero([video_label[v] == label for v in ids]) for label in (0, 1)]
    rng = np.random.default_rng(3)
    drawn = ids[np.concatenate([rng.choice(stratum, len(stratum)) for stratum in strata])]
    aucs = []
    for labels, probs, videos in second:
        rows = np.concatenate([np.flatnonzero(videos == v) for v in drawn])
        aucs.append(roc_auc_score(labels[rows], probs[rows]))
    expected = np.mean(aucs)
    assert statistics[1, 0] == pytest.approx(expected)


def test_paired_statistics_need_the_same_videos_in_every_set():
    with pytest.raises(ValueError, match="set 0 sample 0 has no predictions for video 'c'"):
        video_bootstrap_statistics(
            [[([0, 1], [0.2, 0.7], ["a", "b"])], [([0, 1, 1], [0.2, 0.7, 0.6], ["a", "b", "c"])]]
        )
    with pytest.raises(ValueError, match="no predictions to bootstrap"):
        video_bootstrap_statistics([[([0, 1], [0.2, 0.7], ["a", "b"])], []])


def test_log_loss_is_the_mean_negative_log_probability_of_the_true_class():
    labels, probs = [0, 1, 1, 0], [0.2, 0.7, 0.9, 0.5]
    expected = -(math.log(0.8) + math.log(0.7) + math.log(0.9) + math.log(0.5)) / 4
    assert compute_metrics(labels, probs)["log_loss"] == pytest.approx(expected, rel=1e-12)
    one_class = compute_metrics([1, 1], [0.5, 0.25])
    assert one_class["auc"] is None and one_class["log_loss"] == pytest.approx(-(math.log(0.5) + math.log(0.25)) / 2)
    assert compute_metrics([0, 1], [0.0, 1.0])["log_loss"] < 1e-15  # clipped, not -log(0)
    assert "log_loss" in LOWER_IS_BETTER
    low, high = video_bootstrap_ci([(labels, probs, ["a", "b", "c", "d"])], "log_loss", n_boot=200)
    assert low <= expected <= high


def test_per_domain_video_auc_keeps_equal_ids_of_two_datasets_apart():
    # two datasets reuse FF++-style folder names: "000" of each is its own video
    table = pd.DataFrame(
        {
            "group": "target/pair",
            "dataset": ["A", "A", "B", "B"],
            "domain": "swap",
            "video": ["000", "001", "000", "001"],
            "label": [0, 1, 1, 0],
            "prob_fake": [0.1, 0.9, 0.8, 0.2],
        }
    )
    keyed = per_domain_metrics(table).iloc[0]
    assert keyed["video_auc"] == pytest.approx(1.0)  # four videos, every fake above every real
    with pytest.raises(ValueError, match="has both real and fake frames"):  # keyed without the dataset they merge
        per_domain_metrics(table, dataset_col=None)
    with pytest.raises(ValueError, match=r"\['dataset'\]"):
        per_domain_metrics(table.drop(columns="dataset"))
