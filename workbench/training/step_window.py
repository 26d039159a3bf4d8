"""Training statistics between two evaluations: the mean update statistics and the loop's throughput."""

from __future__ import annotations

from collections import defaultdict


class StepWindow:
    """Training statistics accumulated between two evaluations.

    ``seconds`` is the training loop's wall time (sampling, decoding, augmentation, the update and its
    synchronisation; evaluation, checkpoints and callbacks excluded); ``data_seconds`` the part of it
    the host spent preparing the next step's batch, overlapped with the device's work on CUDA.
    """

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.steps, self.images, self.seconds, self.data_seconds = 0, 0, 0.0, 0.0

    def add(self, stats: dict[str, float], images: int, seconds: float, data_seconds: float) -> None:
        for key, value in stats.items():
            self.sums[key] += value
        self.steps += 1
        self.images += images
        self.seconds += seconds
        self.data_seconds += data_seconds

    def means(self) -> dict[str, float]:
        return {key: value / self.steps for key, value in self.sums.items()} if self.steps else {}

    def timing(self) -> dict[str, float | None]:
        """``img_s`` of the training loop, and milliseconds per step: all of it and the data part."""
        if not self.steps:
            return {"img_s": None, "step_ms": None, "data_ms": None}
        return {
            "img_s": self.images / self.seconds if self.seconds else None,
            "step_ms": 1000.0 * self.seconds / self.steps,
            "data_ms": 1000.0 * self.data_seconds / self.steps,
        }
