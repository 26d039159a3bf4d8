"""Exact resumption of training: what ``last.pt`` holds, loading it back, and bringing the run directory
back to the steps it covers (records, predictions and best checkpoints of later steps dropped).

A best model is ``{"step", "score"}`` per kept selection rule; step -1 before any scored evaluation.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from workbench.algorithms import Algorithm
from workbench.config import ConfigError
from workbench.training.checkpoint import CheckpointError
from workbench.training.run_dir import LAST, RunDir, best_checkpoint
from workbench.training.selection import SWAD_KIND
from workbench.training.swad import LossValley

RESUME_KEYS = ("algorithm", "step", "rng_cpu", "best")  # what ``last.pt`` must hold to resume a run
Best = dict[str, dict[str, Any]]


def training_state(algorithm: Algorithm, swad: LossValley | None, step: int, best: Best) -> dict[str, Any]:
    """What ``last.pt`` holds: the algorithm (model, optimizer, its own state), the step, the random
    generators, the best models so far and SWAD's averages."""
    state = {"algorithm": algorithm.state_dict(), "step": step, "rng_cpu": torch.get_rng_state(), "best": best}
    if torch.cuda.is_available():
        state["rng_cuda"] = torch.cuda.get_rng_state_all()
    if swad is not None:
        state["swad"] = swad.state_dict()
    return state


def best_state(model: torch.nn.Module, step: int) -> dict[str, Any]:
    """What ``best_<rule>.pt`` holds."""
    return {"model": model.state_dict(), "step": step}


def load_training_state(
    directory: RunDir,
    total_steps: int,
    rules: Sequence[str],
    algorithm: Algorithm,
    swad: LossValley | None,
    device: torch.device,
) -> tuple[int, Best]:
    """Load ``last.pt`` into the algorithm, SWAD and the random generators when it exists; return the step to
    continue from and the best models so far (step 0 and none when there is nothing to resume)."""
    last = directory.last
    if not last.exists():
        return 0, {rule: {"step": -1, "score": None} for rule in rules}
    state = directory.load(LAST, map_location=device)
    missing = [key for key in RESUME_KEYS if key not in state]
    if missing:
        raise CheckpointError(
            f"{last} lacks {', '.join(missing)}, so the run cannot resume from it; train it again in a new run"
        )
    step = int(state["step"])
    if step > total_steps:
        raise ConfigError(
            f"config key 'train.steps' is {total_steps}, below the step {step} of {last}: "
            f"a run can be extended but not shortened; set train.steps >= {step}"
        )
    algorithm.load_state_dict(state["algorithm"])
    if swad is not None:
        swad.load_state_dict(state["swad"])
    torch.set_rng_state(state["rng_cpu"])
    if "rng_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    return step, {rule: {"step": int(kept["step"]), "score": kept["score"]} for rule, kept in state["best"].items()}


def prepare_outputs(
    directory: RunDir, config: Mapping[str, Any], start: int, best: Best, model: torch.nn.Module
) -> None:
    """Make the run directory describe exactly the steps up to ``start``, then save the config.

    Records and predictions of later steps are dropped and each best checkpoint is made to match
    ``last.pt`` (``model`` holds its weights); with nothing to resume, what an earlier attempt left is
    removed (docs/records.md).
    """
    if start == 0:
        _discard_attempt(directory)
    else:
        directory.truncate_to(start, finishing_kinds=(SWAD_KIND,))
        for rule, kept in best.items():
            _restore_best(directory, rule, kept["step"], start, model)
    directory.write_config(config)


def _discard_attempt(directory: RunDir) -> None:
    """Remove the records, best checkpoints and predictions of an attempt that never reached ``last.pt``."""
    stale = directory.discard_attempt()
    if stale:
        warnings.warn(
            f"{directory.path}: no checkpoints/{LAST} to resume from; starting at step 0 and removing "
            f"{stale} of the interrupted attempt",
            stacklevel=4,
        )


def _restore_best(directory: RunDir, rule: str, best_step: int, step: int, model: torch.nn.Module) -> None:
    """Make ``best_<rule>.pt`` hold the model of ``best_step``, the best step ``last.pt`` (at ``step``) names.

    The trainer writes ``last.pt`` first, so a crash before a best checkpoint leaves ``best_step == step``:
    the best model is then ``model``, just loaded from ``last.pt``.
    """
    path = directory.best(rule)
    if best_step < 0:
        path.unlink(missing_ok=True)
        return
    held = int(directory.load(best_checkpoint(rule))["step"]) if path.exists() else None
    if held == best_step:
        return
    if best_step != step:
        found = "is missing" if held is None else f"holds step {held}"
        raise CheckpointError(
            f"{path} {found} but {directory.last} selected step "
            f"{best_step}, whose model is lost; delete {directory.path} to train it again"
        )
    directory.save(best_checkpoint(rule), best_state(model, step))
