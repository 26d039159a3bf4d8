"""Training: the loop, run records, checkpoints, selection and reports."""

from workbench.training.checkpoint import load_checkpoint, save_checkpoint
from workbench.training.trainer import NonFiniteLossError, Trainer, TrainingCallback, train

__all__ = ["NonFiniteLossError", "Trainer", "TrainingCallback", "load_checkpoint", "save_checkpoint", "train"]
