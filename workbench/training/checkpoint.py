"""Atomic checkpoints that load with ``torch.load(..., weights_only=True)``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """Checkpoints of a run that do not fit together; the message names the files."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to a temporary file and rename it into place, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    return torch.load(path, map_location=map_location, weights_only=True)


def model_state(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The model's state dict in a loaded checkpoint: ``model`` of a kept model (``best_<rule>.pt``), or the
    ``model.`` entries of the algorithm state in ``last.pt``."""
    if "model" in checkpoint:
        return checkpoint["model"]
    if "algorithm" in checkpoint:
        prefix = "model."
        return {key[len(prefix):]: value for key, value in checkpoint["algorithm"].items() if key.startswith(prefix)}
    raise CheckpointError(f"checkpoint holds neither 'model' nor 'algorithm' (keys: {sorted(checkpoint)})")
