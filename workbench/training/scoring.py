"""Score a model on a config's evaluation groups without a trainer or an optimizer: the manifest and protocol of
the config, the model's weights, and the precision and layout its algorithm trained with."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.algorithms import resolve_hparams
from workbench.algorithms.execution import ExecutionPolicy
from workbench.config import load_config, resolve_device
from workbench.data.images import FrameDataset
from workbench.data.manifest import read_manifests
from workbench.models import create_model
from workbench.training.checkpoint import model_state
from workbench.training.evaluation import evaluate_groups
from workbench.training.pipeline import synthetic_manifest, training_protocol
from workbench.training.run_dir import RunDir
from workbench.training.runs import run_config, selected_checkpoint

EvaluationData = tuple[FrameDataset, dict[str, np.ndarray]]  # the frames and the manifest rows of each group


def evaluation_data(config: dict[str, Any]) -> tuple[FrameDataset, dict[str, np.ndarray]]:
    """The frames of ``config``'s manifest(s) and its evaluation groups (manifest rows per group)."""
    data = config["data"]
    manifest, roots = read_manifests(data["manifest"] or synthetic_manifest(data["synthetic"]), data["root"])
    _, groups = training_protocol(config, manifest)
    return FrameDataset(manifest, roots, data["image_size"], cache=data["cache_images"]), groups


def score_model(
    model: torch.nn.Module,
    config: dict[str, Any],
    device: torch.device,
    data: tuple[FrameDataset, dict[str, np.ndarray]] | None = None,
) -> tuple[dict[str, dict], pd.DataFrame]:
    """Metrics of ``model`` on every evaluation group of ``config`` and the per-frame predictions behind them,
    computed as training evaluates (the algorithm's precision and layout; docs/records.md)."""
    algorithm = config["algorithm"]
    policy = ExecutionPolicy(resolve_hparams(algorithm["name"], algorithm["hparams"]))
    dataset, groups = evaluation_data(config) if data is None else data
    model = policy.prepare(model.to(device))
    return evaluate_groups(
        model,
        partial(policy.predict, model),
        dataset,
        groups,
        device,
        batch_size=config["data"]["eval_batch_size"],
        workers=config["data"]["workers"],
    )


def load_checkpoint_model(
    run_dir: str | Path,
    overrides: Iterable[str] = (),
    checkpoint: str | None = None,
    selection: str = "source_val",
) -> tuple[dict[str, Any], torch.nn.Module, dict[str, Any], torch.device, EvaluationData]:
    """A run's checkpoint (the file ``checkpoint`` under ``checkpoints/``, else the model ``selection`` picked),
    its model with those weights, the run's config with ``overrides``, the device, and the evaluation data.

    The data and protocol are checked before the checkpoint is read, so a wrong override fails fast.
    """
    run_config(run_dir)  # names the directory if it is not a run
    directory = RunDir(run_dir)
    config = load_config(directory.config_file, list(overrides))
    device = resolve_device(config["train"]["device"])
    data = evaluation_data(config)
    state = directory.load(checkpoint or selected_checkpoint(run_dir, selection), map_location=device)
    model = create_model(config["model"]["name"], pretrained=False, **config["model"]["kwargs"])
    model.load_state_dict(model_state(state))
    return state, model, config, device, data


def score_checkpoint(
    run_dir: str | Path, overrides: Iterable[str] = (), checkpoint: str | None = None, selection: str = "source_val"
) -> tuple[dict[str, Any], dict[str, dict], pd.DataFrame]:
    """A run's checkpoint (:func:`load_checkpoint_model`), its metrics on every evaluation group of the run's
    config with ``overrides`` (e.g. another manifest and target domains), and the predictions behind them."""
    state, model, config, device, data = load_checkpoint_model(run_dir, overrides, checkpoint, selection)
    results, predictions = score_model(model, config, device, data)
    return state, results, predictions
