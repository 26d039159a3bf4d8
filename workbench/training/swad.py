"""SWAD — dense stochastic weight averaging over the loss valley (Cha et al., NeurIPS 2021).

Every training iterate is averaged into the current *segment* (the iterates since the previous
evaluation); each evaluation closes the segment with the training-domain validation loss of the model
at that step. The segments to average are chosen by the authors' ``LossValley`` rule:

- **start** — the first segment whose loss is the lowest of the ``n_converge`` segments that begin
  with it (convergence); the threshold is ``(1 + tolerance_ratio)`` × their mean loss. The window also
  reaches back over up to ``n_tolerance − n_converge`` earlier segments, as long as each is at or below
  the threshold.
- **end** — a later segment is kept while the lowest loss of the ``n_tolerance`` segments that begin
  with it is at or below the threshold; the first one whose window lies wholly above it ends the
  valley. At the end of training the last segments are decided on the windows that exist.

The SWAD model is the dense average of every iterate in the kept segments (each iterate counts once).
The reference's bookkeeping can count a segment twice or drop the first one of the window (its
``AveragedModel`` overwrites its initial value); here each segment counts once. If training ends
before convergence, the last segment's average is used, as in the reference, and ``converged`` says
so. BatchNorm statistics of the averaged weights are recomputed from training batches by the
trainer (``torch.optim.swa_utils.update_bn``), as the paper does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class Segment:
    """The mean of the iterates of one stretch between evaluations, and the validation loss at its end."""

    mean: list[torch.Tensor]
    count: int
    start_step: int
    end_step: int
    loss: float | None = None

    def state(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "count": self.count,
            "start_step": self.start_step,
            "end_step": self.end_step,
            "loss": self.loss,
        }


class LossValley:
    """Segment averages and the loss-valley rule of the module docstring; ``state_dict`` resumes it exactly."""

    def __init__(self, n_converge: int = 3, n_tolerance: int = 6, tolerance_ratio: float = 0.3) -> None:
        if n_converge < 1 or n_tolerance < 1 or tolerance_ratio < 0:
            raise ValueError(
                f"SWAD needs n_converge >= 1, n_tolerance >= 1 and tolerance_ratio >= 0 "
                f"(got {n_converge}, {n_tolerance}, {tolerance_ratio})"
            )
        self.n_converge, self.n_tolerance, self.tolerance_ratio = n_converge, n_tolerance, tolerance_ratio
        self.segment: Segment | None = None
        self.closed: list[Segment] = []  # every segment not yet decided, oldest first
        self.threshold: float | None = None
        self.dead = False
        self.kept: Segment | None = None  # running dense average of the kept segments
        self.last: Segment | None = None  # the latest closed segment (the fallback before convergence)

    @property
    def converged(self) -> bool:
        return self.threshold is not None

    @torch.no_grad()
    def add(self, parameters: Sequence[torch.Tensor], step: int) -> None:
        """Average the current weights (one training iterate) into the open segment."""
        values = [p.detach() for p in parameters]
        if self.segment is None:
            self.segment = Segment([v.clone() for v in values], 1, step, step)
            return
        self.segment.count += 1
        torch._foreach_add_(
            self.segment.mean, torch._foreach_sub(values, self.segment.mean), alpha=1.0 / self.segment.count
        )
        self.segment.end_step = step

    def close(self, loss: float) -> None:
        """End the open segment at an evaluation whose validation loss is ``loss``, and apply the rule."""
        if self.segment is None:
            return
        segment, self.segment = self.segment, None
        segment.loss = float(loss)
        self.last = segment
        if self.dead:
            return
        self.closed.append(segment)
        if not self.converged:
            self._try_to_converge()
        self._decide(final=False)
        self._forget()

    def _try_to_converge(self) -> None:
        if len(self.closed) < self.n_converge:
            return
        window = self.closed[-self.n_converge :]
        losses = [s.loss for s in window]
        if losses.index(min(losses)) != 0:
            return
        self.threshold = (1.0 + self.tolerance_ratio) * sum(losses) / len(losses)
        first = len(self.closed) - self.n_converge
        start = first
        while (
            start > max(0, first - (self.n_tolerance - self.n_converge))
            and self.closed[start - 1].loss <= self.threshold
        ):
            start -= 1
        for segment in self.closed[start : first + 1]:
            self._keep(segment)
        self.closed = self.closed[first + 1 :]

    def _decide(self, final: bool) -> None:
        """Keep or end at each undecided segment whose tolerance window is complete (any window when ``final``)."""
        while self.converged and not self.dead and self.closed:
            window = self.closed[: self.n_tolerance]
            if len(window) < self.n_tolerance and not final:
                return
            if min(s.loss for s in window) > self.threshold:
                self.dead = True
                self.closed = []
                return
            self._keep(self.closed.pop(0))

    def _forget(self) -> None:
        """Before convergence, keep only the segments a later convergence can still reach back to."""
        if not self.converged:
            self.closed = self.closed[-max(self.n_converge, self.n_tolerance) :]

    @torch.no_grad()
    def _keep(self, segment: Segment) -> None:
        if self.kept is None:
            self.kept = Segment([m.clone() for m in segment.mean], segment.count, segment.start_step, segment.end_step)
            return
        total = self.kept.count + segment.count
        torch._foreach_mul_(self.kept.mean, self.kept.count / total)
        torch._foreach_add_(self.kept.mean, segment.mean, alpha=segment.count / total)
        self.kept.count, self.kept.end_step = total, segment.end_step

    def final(self) -> tuple[list[torch.Tensor], dict[str, Any]] | None:
        """The averaged weights and a summary (steps averaged, convergence), or None before any segment closed.

        Decides the segments still open to decision on the windows that exist, so call it once, at the end.
        """
        self._decide(final=True)
        chosen = self.kept if self.kept is not None else self.last
        if chosen is None:
            return None
        summary = {
            "converged": self.converged,
            "dead_valley": self.dead,
            "threshold": self.threshold,
            "start_step": chosen.start_step,
            "end_step": chosen.end_step,
            "iterates": chosen.count,
        }
        return chosen.mean, summary

    def state_dict(self) -> dict[str, Any]:
        return {
            "segment": None if self.segment is None else self.segment.state(),
            "closed": [s.state() for s in self.closed],
            "threshold": self.threshold,
            "dead": self.dead,
            "kept": None if self.kept is None else self.kept.state(),
            "last": None if self.last is None else self.last.state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        def segment(value: Mapping[str, Any] | None) -> Segment | None:
            return None if value is None else Segment(**value)

        self.segment, self.kept, self.last = segment(state["segment"]), segment(state["kept"]), segment(state["last"])
        self.closed = [Segment(**s) for s in state["closed"]]
        self.threshold, self.dead = state["threshold"], state["dead"]


def set_parameters(model: nn.Module, weights: Sequence[torch.Tensor]) -> None:
    """Copy averaged ``weights`` (in ``model.parameters()`` order) into ``model``'s parameters, in place."""
    with torch.no_grad():
        torch._foreach_copy_(list(model.parameters()), list(weights))
