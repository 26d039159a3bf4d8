"""Train one run in chunks from a notebook and redraw its curves after each chunk (notebook 02)."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.analysis.callbacks import callbacks_from_config
from workbench.project import check_reusable, project_path
from workbench.training import Trainer
from workbench.training.pipeline import steps_for_epochs
from workbench.training.run_dir import RunDir
from workbench.viz.data import eval_frame
from workbench.viz.results import training_curves


def _evaluated_step(records: Sequence[Mapping[str, Any]]) -> int:
    return max((int(r["step"]) for r in records if "eval" in r), default=0)


def replace_figure(widget: go.FigureWidget, figure: go.Figure) -> None:
    """Show ``figure``'s traces and layout in an existing ``FigureWidget`` (updated in place in the page)."""
    widget.data = []
    widget.add_traces(list(figure.data))
    widget.layout = figure.layout


class LiveTraining:
    """Train one run in chunks of ``train.eval_every`` steps and redraw :attr:`figure` after each chunk.

    Chunks end on evaluation steps, where the trainer saves ``checkpoints/last.pt``; calling
    :meth:`run` again (or building a new ``LiveTraining`` on the same ``run_dir``, e.g. after a
    kernel restart) continues from there, exactly as an uninterrupted run would have. An interrupted
    chunk (kernel interrupt) is redone from its start. ``epochs`` (optional) sets ``train.steps``
    from the training set's size. The trainer's own progress bar is switched off: the figure title
    shows the progress.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        run_dir: str | Path,
        epochs: float | None = None,
        metric: str = "auc",
        callbacks: Sequence[Any] | None = None,
    ) -> None:
        self.config = copy.deepcopy(dict(config))
        self.config["train"]["progress"] = False
        self.run_dir = project_path(run_dir)
        self.metric = metric
        self.callbacks = callbacks_from_config(self.config) if callbacks is None else list(callbacks)
        self._trainer: Trainer | None = None
        if epochs is not None:
            self.config["train"]["steps"] = steps_for_epochs(self.trainer.data.sampler, epochs)
            self._trainer = None  # rebuilt with the final step count
        if self.finished:
            check_reusable(self.run_dir, self.config)
        self.figure = go.FigureWidget(make_subplots(rows=1, cols=2, subplot_titles=["train loss", metric]))
        self.refresh()

    @property
    def trainer(self) -> Trainer:
        if self._trainer is None:
            self._trainer = Trainer(self.config, self.run_dir, self.callbacks)
        return self._trainer

    @property
    def steps(self) -> int:
        return int(self.config["train"]["steps"])

    @property
    def finished(self) -> bool:
        return RunDir(self.run_dir).done

    def records(self) -> list[dict[str, Any]]:
        return RunDir(self.run_dir).load_records()

    def run(self, until_step: int | None = None) -> Path:
        """Train to the end (or to the first evaluation step at or after ``until_step``), refreshing the figure."""
        every = int(self.config["train"]["eval_every"])
        stop = self.steps if until_step is None else min(self.steps, math.ceil(until_step / every) * every)
        while not self.finished and _evaluated_step(self.records()) < stop:
            target = min((_evaluated_step(self.records()) // every + 1) * every, self.steps)
            try:
                self.trainer.fit(stop_at_step=None if target >= self.steps else target)
            except BaseException:
                self._trainer = None  # the next run() resumes from the last checkpoint
                raise
            finally:
                self.refresh()
        return self.run_dir

    def status(self) -> str:
        records = [r for r in self.records() if "eval" in r]
        if not records:
            return f"{self.run_dir.name}: step 0/{self.steps}"
        last = records[-1]
        value = last["eval"].get("source_val", {}).get(self.metric)
        shown = "n/a" if value is None else f"{value:.3f}"
        state = "done" if self.finished else "training"
        return f"{self.run_dir.name}: step {last['step']}/{self.steps} ({state}) · source-val {self.metric} {shown}"

    def refresh(self) -> None:
        """Redraw the loss and metric curves from ``records.jsonl``."""
        records = self.records()
        if any("eval" in r for r in records):
            evaluated = next(r for r in records if "eval" in r)["eval"]
            groups = [g for g in evaluated if g == "source_val" or g.startswith("target/")]
            replace_figure(
                self.figure,
                training_curves(
                    eval_frame({self.config["algorithm"]["name"]: records}), metric=self.metric, groups=groups
                ),
            )
        self.figure.layout.title.text = self.status()
