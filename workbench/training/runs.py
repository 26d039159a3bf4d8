"""A run directory's inputs and outputs as objects: the manifest it trained on, the kind of each of its
held-out domains, and its trained model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from workbench.config import CHECKPOINT_RULES, DEFAULT_CONFIG
from workbench.data.manifest import read_manifests
from workbench.data.protocol import source_datasets
from workbench.models import create_model
from workbench.training.checkpoint import model_state
from workbench.training.collect import expand_sweeps, read_config
from workbench.training.pipeline import synthetic_manifest
from workbench.training.run_dir import BEST, LAST, SWAD_CHECKPOINT, RunDir, best_checkpoint

# what ``eval --selection`` and ``analyse --selection`` accept: a kept rule's best model, the last one, or SWAD's
CHECKPOINT_SELECTIONS: tuple[str, ...] = (*CHECKPOINT_RULES, "last", "swad")


def run_manifest(config: Mapping[str, Any], check_files: bool = True) -> tuple[pd.DataFrame, list[Path]]:
    """The validated manifest(s) a config trains on, as the trainer reads them, and their dataset roots.

    The embedded benchmark is generated if needed. Like :func:`workbench.data.manifest.read_manifests`,
    the table has a ``root_index`` column into the list of roots (one per manifest), which
    :func:`workbench.data.frames.load_frames` follows.
    """
    data = config["data"]
    paths = data["manifest"] or synthetic_manifest(data["synthetic"])
    return read_manifests(paths, data["root"], check_files=check_files)


def target_kinds(config: Mapping[str, Any]) -> dict[str, str]:
    """``{"target/<domain>": kind}``: "held-out manipulation" (a source dataset) or "cross-dataset".

    The kind decides where :func:`workbench.training.report.held_out_table` puts a target group.
    """
    manifest, _ = run_manifest(config, check_files=False)
    sources = set(source_datasets(manifest, config["data"]["source_domains"]))
    return {
        f"target/{domain}": "held-out manipulation"
        if set(source_datasets(manifest, [domain])) <= sources
        else "cross-dataset"
        for domain in config["data"]["target_domains"] or ()
    }


def run_config(run_dir: str | Path) -> dict[str, Any]:
    """A run directory's saved config; ``FileNotFoundError`` naming the directory when it is not a run."""
    config = read_config(run_dir)
    if not config:
        raise FileNotFoundError(f"{RunDir(run_dir).config_file} does not exist; is {str(run_dir)!r} a run directory?")
    return config


def runs_by_algorithm(run_dirs: Iterable[str | Path]) -> dict[str, list[Path]]:
    """Run directories grouped by their config's ``algorithm.name`` (e.g. runs trained elsewhere, for figures).

    A sweep folder stands for its finished runs (:func:`workbench.training.collect.expand_sweeps`).
    """
    grouped: dict[str, list[Path]] = {}
    for run_dir in expand_sweeps(run_dirs):
        grouped.setdefault(run_config(run_dir)["algorithm"]["name"], []).append(Path(run_dir))
    return grouped


def selected_checkpoint(run_dir: str | Path, selection: str = "source_val") -> str:
    """The file name under ``checkpoints/`` of the model ``selection`` picks in ``run_dir``.

    ``"last"`` is ``last.pt``, ``"swad"`` the SWAD model (``train.swad``); a selection rule is
    ``best_<rule>.pt``, which exists only if the run kept it (``train.checkpoint_rules``); otherwise the
    error names the rules the run kept.
    """
    if selection not in CHECKPOINT_SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; choose one of {list(CHECKPOINT_SELECTIONS)}")
    if selection == "last":
        return LAST
    if selection == "swad":
        if not RunDir(run_dir).swad.is_file():
            raise FileNotFoundError(
                f"{run_dir} has no checkpoints/{SWAD_CHECKPOINT}: the SWAD model exists only for "
                "finished runs trained with train.swad.enabled=true"
            )
        return SWAD_CHECKPOINT
    name = best_checkpoint(selection)
    if not RunDir(run_dir).checkpoint(name).is_file():
        kept = run_config(run_dir)["train"].get("checkpoint_rules", DEFAULT_CONFIG["train"]["checkpoint_rules"])
        if selection not in kept:
            raise FileNotFoundError(
                f"{run_dir} kept the best models of {kept} only, not {selection!r}; train with "
                f"train.checkpoint_rules including {selection!r} to keep it"
            )
        raise FileNotFoundError(
            f"{RunDir(run_dir).checkpoint(name)} does not exist: no evaluation of the run has scored {selection!r} yet"
        )
    return name


def load_run_model(run_dir: str | Path, checkpoint: str = BEST, device: str | torch.device = "cpu") -> nn.Module:
    """The run's backbone with the weights of ``checkpoints/<checkpoint>`` (default: the selected one), in eval mode."""
    config = run_config(run_dir)
    model = create_model(config["model"]["name"], pretrained=False, **(config["model"].get("kwargs") or {}))
    state = RunDir(run_dir).load(checkpoint, map_location=device)
    model.load_state_dict(model_state(state))
    return model.to(device).eval()
