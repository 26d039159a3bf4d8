"""Robustness of a scored model: AUC per test group under each DeeperForensics-1.0 perturbation and
severity level, with video-bootstrap intervals, next to the clean AUC (level 0).

Only the test groups (``source_test…`` and ``target/…``) are perturbed: the validation groups choose
models and say nothing about robustness.

Every (perturbation, level) uses the same bootstrap seed, so each resample draws the same test videos for
the clean and the perturbed predictions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.data.manifest import video_keys
from workbench.data.perturbations import (
    CLEAN,
    PERTURBATIONS,
    PerturbedFrames,
    check_levels,
    parse_perturbations,
)
from workbench.metrics import video_bootstrap_ci
from workbench.training.scoring import EvaluationData, load_checkpoint_model, score_model

TEST_GROUP_PREFIXES = ("source_test", "target/")
COLUMNS = [
    "algorithm",
    "group",
    "perturbation",
    "level",
    "parameter",
    "auc",
    "auc_low",
    "auc_high",
    "ci_level",
    "n_boot",
    "n_real",
    "n_fake",
    "videos",
    "note",
]


def robustness_groups(groups: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The test groups among a protocol's evaluation groups (:data:`TEST_GROUP_PREFIXES`)."""
    return {name: rows for name, rows in groups.items() if name.startswith(TEST_GROUP_PREFIXES)}


def group_rows(
    data: EvaluationData,
    results: dict[str, dict],
    predictions: pd.DataFrame,
    *,
    perturbation: str,
    level: int,
    n_boot: int,
    ci: float,
    seed: int,
) -> list[dict[str, Any]]:
    """One table row per evaluation group: its AUC (as ``eval`` reports it) and video-bootstrap interval.

    A group whose AUC is undefined (one class) keeps its row, with the reason in ``note``.
    """
    dataset, groups = data
    labels, videos = dataset.manifest["label"].to_numpy(), video_keys(dataset.manifest).to_numpy()
    parameter = PERTURBATIONS[perturbation].parameters[level - 1] if level else np.nan
    rows = []
    for name, indices in groups.items():
        metrics = results[name]
        row = {
            "group": name,
            "perturbation": perturbation,
            "level": level,
            "parameter": parameter,
            "auc": np.nan,
            "auc_low": np.nan,
            "auc_high": np.nan,
            "ci_level": ci,
            "n_boot": n_boot,
            "n_real": metrics["n_real"],
            "n_fake": metrics["n_fake"],
            "videos": len(set(videos[indices])),
            "note": metrics.get("auc_reason", ""),
        }
        if metrics["auc"] is not None:
            probs = predictions.loc[predictions["group"] == name, "prob_fake"].to_numpy()
            low, high = video_bootstrap_ci(
                [(labels[indices], probs, videos[indices])], "auc", n_boot=n_boot, ci=ci, seed=seed
            )
            row.update(auc=metrics["auc"], auc_low=low, auc_high=high)
        rows.append(row)
    return rows


def robustness_table(
    model: torch.nn.Module,
    config: dict[str, Any],
    device: torch.device,
    data: EvaluationData,
    perturbations: Sequence[str],
    levels: Sequence[int],
    *,
    clean: tuple[dict[str, dict], pd.DataFrame] | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """AUC of ``model`` on every test group of ``config``: clean (perturbation ``none``, level 0), then
    under each of ``perturbations`` (names, or ``all``) at each of ``levels`` (1–5), with ``ci`` intervals
    from ``n_boot`` video-bootstrap resamples. Columns: :data:`COLUMNS`.

    ``clean`` takes the clean results and predictions of :func:`~workbench.training.scoring.score_model`
    when they were already computed.
    """
    names, levels = parse_perturbations(perturbations), check_levels(levels)
    dataset, groups = data[0], robustness_groups(data[1])
    options = dict(n_boot=n_boot, ci=ci, seed=seed)
    results, predictions = clean or score_model(model, config, device, (dataset, groups))
    rows = group_rows((dataset, groups), results, predictions, perturbation=CLEAN, level=0, **options)
    for name in names:
        for level in levels:
            perturbed = (PerturbedFrames(dataset, name, level), groups)
            results, predictions = score_model(model, config, device, perturbed)
            rows += group_rows((dataset, groups), results, predictions, perturbation=name, level=level, **options)
    table = pd.DataFrame(rows)
    table.insert(0, "algorithm", config["algorithm"]["name"])
    return table[COLUMNS]


def checkpoint_robustness(
    run_dir: str | Path,
    perturbations: Sequence[str],
    levels: Sequence[int],
    overrides: Iterable[str] = (),
    checkpoint: str | None = None,
    selection: str = "source_val",
    **options: Any,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """A run's checkpoint (:func:`~workbench.training.scoring.load_checkpoint_model`) and its
    :func:`robustness_table`; ``options`` are ``n_boot``, ``ci`` and ``seed``."""
    parse_perturbations(perturbations)  # both are checked before anything is loaded
    check_levels(levels)
    state, model, config, device, data = load_checkpoint_model(run_dir, overrides, checkpoint, selection)
    return state, robustness_table(model, config, device, data, perturbations, levels, **options)
