"""Atomic checkpoints that load with ``torch.load(..., weights_only=True)``."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from workbench.atomic import atomic_path


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, or checkpoints of a run that do not fit together; the message names
    the files."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to a temporary file and rename it into place, so a crash never leaves half a file."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (tensors and plain containers only).

    A file that cannot be read (truncated, not a checkpoint) or that holds other objects raises
    :class:`CheckpointError` in one line naming it and the other checkpoints beside it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower():
            raise CheckpointError(
                f"{path} holds objects other than tensors and plain containers, so it will not "
                f"be loaded (it may not be a workbench checkpoint); {_others(path)}"
            ) from None
        raise CheckpointError(f"{path} is damaged or not a checkpoint ({_first_line(exc)}); {_others(path)}") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways, all of which mean the same
        raise CheckpointError(f"{path} is damaged or not a checkpoint ({_first_line(exc)}); {_others(path)}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint; {_others(path)}")
    return state


def _first_line(error: Exception) -> str:
    """The error's type and first sentence (torch's read errors go on for several)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0].split('. ')[0]}" if text else type(error).__name__


def _others(path: Path) -> str:
    """What the user can fall back on: the other checkpoints in the same folder."""
    others = sorted(p.name for p in path.parent.glob("*.pt") if p != path)
    if not others:
        return "no other checkpoint is beside it; train the run again in a new directory"
    return (
        f"other checkpoints beside it: {others} (evaluate one with `eval RUN --checkpoint NAME`; to train "
        "again, delete the damaged file and the run starts over, or use a new directory)"
    )


def model_state(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The model's state dict in a loaded checkpoint: ``model`` of a kept model (``best_<rule>.pt``), or the
    ``model.`` entries of the algorithm state in ``last.pt``."""
    if "model" in checkpoint:
        return checkpoint["model"]
    if "algorithm" in checkpoint:
        prefix = "model."
        return {key[len(prefix) :]: value for key, value in checkpoint["algorithm"].items() if key.startswith(prefix)}
    raise CheckpointError(f"checkpoint holds neither 'model' nor 'algorithm' (keys: {sorted(checkpoint)})")
