"""The training loop: domain-balanced steps, periodic evaluation, records, checkpoints and resume.

A run directory is laid out as docs/records.md describes. Resuming an interrupted run continues from
``checkpoints/last.pt`` and reproduces an uninterrupted CPU run bit for bit: the sampler and the
augmentation draw from generators seeded by ``(seed, step)``, and the global RNG state is saved.
Before training, the run directory is brought back to what ``last.pt`` describes (or emptied when
there is none), so no record, checkpoint or prediction of an interrupted stretch survives; see
docs/records.md, "Interrupted runs".
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from typing import Protocol as TypingProtocol

import pandas as pd
import torch
from torch.optim.swa_utils import update_bn
from tqdm.auto import tqdm

from workbench.algorithms import Algorithm, as_floats, build_algorithm
from workbench.config import ConfigError, check_checkpoint_rules_usable, resolve_device, validate_config
from workbench.models import create_model, input_normalization
from workbench.training.adopt import refuse_adopted
from workbench.training.checkpoint import model_state
from workbench.training.distributed import init_distributed
from workbench.training.evaluation import NonFiniteOutputError
from workbench.training.host_memory import keep_freed_memory
from workbench.training.pipeline import TrainingData
from workbench.training.records import RecordWriter
from workbench.training.resume import best_state, load_training_state, prepare_outputs, training_state
from workbench.training.run_dir import BEST, LAST, SWAD_CHECKPOINT, RunDir, best_checkpoint, run_directory
from workbench.training.scoring import score_model
from workbench.training.selection import SWAD_KIND, improves, record_score
from workbench.training.step_window import StepWindow
from workbench.training.swad import LossValley, set_parameters

SELECTION_GROUP = "source_val"
SELECTION_METRIC = "auc"


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the last good checkpoint is kept on disk."""


class TrainingCallback(TypingProtocol):
    """Called after ``update()`` every ``every`` steps; its result is logged as ``{"kind": name, ...}``.

    The trainer runs it with the global random state forked (CPU and the training device), so a
    callback that draws random numbers (e.g. dropout in train-mode passes) never changes training.
    """

    name: str
    every: int

    def __call__(
        self, model: torch.nn.Module, domain_batches: list[tuple[torch.Tensor, torch.Tensor]], step: int
    ) -> dict[str, float]: ...


class Trainer:
    """Train one algorithm on one protocol and write a run directory."""

    def __init__(
        self,
        config: dict[str, Any],
        run_dir: str | Path | None = None,
        callbacks: Sequence[TrainingCallback] = (),
    ) -> None:
        validate_config(config)
        refuse_adopted(config)
        self.config = config
        self.run_dir = run_directory(config, run_dir)
        self.directory = RunDir(self.run_dir)
        self.callbacks = list(callbacks)
        self.dist = init_distributed()
        if config["train"]["cpu_threads"]:
            torch.set_num_threads(int(config["train"]["cpu_threads"]))
        self.device = self.dist.device if self.dist.is_distributed else resolve_device(config["train"]["device"])
        if self.device.type == "cpu":
            keep_freed_memory()  # process-wide: multi-pass updates reuse freed memory instead of faulting it in
        torch.manual_seed(config["train"]["seed"])
        model_cfg = config["model"]
        model = create_model(model_cfg["name"], pretrained=model_cfg["pretrained"], **model_cfg["kwargs"])
        self.data = TrainingData(config, self.device, self.dist, input_normalization(model))
        model = self.dist.prepare_model(model.to(self.device), sync_batchnorm=config["train"]["sync_batchnorm"])
        self.algorithm: Algorithm = build_algorithm(
            config["algorithm"]["name"],
            model,
            config["algorithm"]["hparams"],
            num_domains=len(self.data.protocol.source_domains),
        )
        self.dist.attach(self.algorithm)
        swad = config["train"]["swad"]
        self.swad = (
            LossValley(swad["n_converge"], swad["n_tolerance"], swad["tolerance_ratio"])
            if swad["enabled"] and self.dist.is_main
            else None
        )

    # ----------------------------------------------------------------- setup
    @property
    def model(self) -> torch.nn.Module:
        return self.algorithm.model

    @property
    def checkpoint_rules(self) -> list[str]:
        """The selection rules whose best model is kept (``train.checkpoint_rules``)."""
        return list(self.config["train"]["checkpoint_rules"])

    # ---------------------------------------------------------------- loop
    def evaluate(self) -> tuple[dict[str, dict], pd.DataFrame]:
        """Metrics of the current model on every evaluation group, and the predictions behind them."""
        return score_model(self.model, self.config, self.device, data=(self.data.dataset, self.data.groups))

    def fit(self, stop_at_step: int | None = None) -> Path:
        """Train to ``train.steps`` (or stop cleanly after ``stop_at_step``); return the run directory.

        Under torchrun only rank 0 evaluates and writes records and checkpoints.
        """
        train = self.config["train"]
        main = self.dist.is_main
        self.directory.refuse_finished()
        check_checkpoint_rules_usable(self.config)
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.dist.barrier()
        self.directory.check_config(self.config)
        start, best = load_training_state(
            self.directory, int(train["steps"]), self.checkpoint_rules, self.algorithm, self.swad, self.device
        )
        self.dist.barrier()  # every process has read the saved config before it is rewritten
        if main:
            prepare_outputs(self.directory, self.config, start, best, self.model)
        writer = self.directory.records if main else None
        total, eval_every = int(train["steps"]), int(train["eval_every"])
        saved_step, window, callbacks_s = start, StepWindow(), 0.0
        started = time.perf_counter()
        progress = tqdm(
            total=total,
            initial=start,
            desc=self.run_dir.name,
            disable=not (train["progress"] and main),
            dynamic_ncols=True,
        )
        steps = self.data.iterate_steps(start + 1, total)
        try:
            tick = time.perf_counter()
            upcoming = next(steps, None)
            while upcoming is not None:
                step, batches = upcoming
                launched = self.algorithm.launch(batches)
                fetch_started = time.perf_counter()
                upcoming = next(steps, None)  # prepared on the host while the device computes this update
                data_s = time.perf_counter() - fetch_started
                stats = self.dist.mean_stats(as_floats(launched))
                images = sum(len(y) for _, y in batches) * self.dist.world_size
                window.add(stats, images, time.perf_counter() - tick, data_s)
                if not math.isfinite(stats["loss"]):
                    raise NonFiniteLossError(self._non_finite_message(f"loss became {stats['loss']}", step, saved_step))
                if self.swad is not None:
                    self.swad.add(list(self.model.parameters()), step)
                callbacks_s += self._run_callbacks(batches, step, writer)
                progress.update(1)
                progress.set_postfix(loss=f"{stats['loss']:.3f}")
                if step % eval_every == 0 or step == total:
                    self._check_finite_weights(step, saved_step)
                    if main:
                        record = self._evaluation_record(
                            step, window, time.perf_counter() - started, callbacks_s, saved_step
                        )
                        writer.append(record)
                        if self.swad is not None:
                            loss = record["eval"][SELECTION_GROUP].get("log_loss")
                            self.swad.close(math.inf if loss is None else loss)
                        best = self._save(step, record, best)
                        progress.set_postfix(
                            loss=f"{record['train']['loss']:.3f}",
                            src_auc=_number(record["eval"][SELECTION_GROUP].get(SELECTION_METRIC)),
                        )
                    saved_step, window = step, StepWindow()
                    self.dist.barrier()
                if stop_at_step is not None and step >= stop_at_step:
                    return self.run_dir
                tick = time.perf_counter()
        finally:
            progress.close()
        if main:
            self._finish(best, writer)
        self.dist.barrier()
        return self.run_dir

    def _non_finite_message(self, what: str, step: int, saved_step: int) -> str:
        where = (
            f"is {self.directory.last} (step {saved_step})"
            if saved_step
            else "does not exist yet (no evaluation step was reached)"
        )
        return (
            f"{what} at step {step}; training stopped. The last good checkpoint {where}; "
            "lower the learning rate or ρ and train again in a new run directory (or delete this one)."
        )

    def _check_finite_weights(self, step: int, saved_step: int) -> None:
        """Stop with :class:`NonFiniteLossError` before evaluating or checkpointing weights that diverged."""
        bad = next(
            (
                name
                for name, value in self.model.state_dict().items()
                if value.is_floating_point() and not torch.isfinite(value).all()
            ),
            None,
        )
        if bad is not None:
            raise NonFiniteLossError(
                self._non_finite_message(f"the model's weights became non-finite ({bad})", step, saved_step)
            )

    def _run_callbacks(
        self, batches: list[tuple[torch.Tensor, torch.Tensor]], step: int, writer: RecordWriter | None
    ) -> float:
        """Run the callbacks due at ``step``, log their results, and return the seconds they took.

        Every process runs them, so layers that communicate in train-mode passes (SyncBatchNorm) stay in
        step across ranks; only the main process, which has the ``writer``, records the results.
        """
        spent = 0.0
        for callback in self.callbacks:
            if step % callback.every == 0:
                t0 = time.perf_counter()
                with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                    result = callback(self.model, batches, step)
                spent += time.perf_counter() - t0
                if writer is not None:
                    writer.append({"kind": callback.name, "step": step, callback.name: result})
        return spent

    def _evaluation_record(
        self, step: int, window: StepWindow, wall_s: float, callbacks_s: float, saved_step: int
    ) -> dict[str, Any]:
        try:
            results, _ = self.evaluate()
        except NonFiniteOutputError as exc:
            raise NonFiniteLossError(self._non_finite_message(f"evaluation failed: {exc}", step, saved_step)) from exc
        return {
            "step": step,
            "epoch": step
            * self.data.sampler.n_fake
            * len(self.data.sampler.fake_pools)
            / self.data.sampler.fakes_per_epoch(),
            "wall_s": wall_s,
            "algorithm": self.config["algorithm"]["name"],
            "seed": self.config["train"]["seed"],
            "train": {**window.means(), "lr": self.algorithm.optimizer.param_groups[0]["lr"], **window.timing()},
            "eval": results,
            "callbacks_s": callbacks_s,
        }

    def _save(self, step: int, record: dict[str, Any], best: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Checkpoint ``last``, then ``best_<rule>`` for each kept rule whose score improved; return the new bests.

        A rule scores the record as :func:`workbench.training.selection.select` does (AUC; ties keep the
        earlier step), so each best checkpoint holds the model of the record that rule selects.
        ``last`` goes first: it names the best steps, so resume can restore a best checkpoint that a crash
        between the writes left behind (:func:`~workbench.training.resume.prepare_outputs`).
        """
        best = dict(best)
        for rule, kept in best.items():
            score = record_score(record, rule, SELECTION_METRIC)
            if improves(score, kept["score"], SELECTION_METRIC):
                best[rule] = {"step": step, "score": score}
        self.directory.save(LAST, training_state(self.algorithm, self.swad, step, best))
        for rule, kept in best.items():
            if kept["step"] == step:
                self.directory.save(best_checkpoint(rule), best_state(self.model, step))
        return best

    def _finish(self, best: dict[str, dict[str, Any]], writer: RecordWriter) -> None:
        """Predictions of the selected model (best source-val AUC), the SWAD model (``train.swad``) and the
        ``done`` marker."""
        if best["source_val"]["step"] >= 0:
            selected = self.directory.load(BEST, map_location=self.device)
            self.model.load_state_dict(selected["model"])
        _, predictions = self.evaluate()
        predictions["step"] = best["source_val"]["step"]
        predictions["model"] = "source_val"
        frames = [predictions]
        if self.swad is not None:
            frames.append(self._finish_swad(writer))
        self.directory.write_predictions(pd.concat(frames, ignore_index=True))
        last = self.directory.load(LAST, map_location=self.device)
        self.model.load_state_dict(model_state(last))
        self.directory.mark_done(int(self.config["train"]["steps"]))

    def _finish_swad(self, writer: RecordWriter) -> pd.DataFrame:
        """Load the SWAD average into the model, recompute its BatchNorm statistics on training batches,
        evaluate it (a ``{"kind": "swad"}`` record), keep it as ``checkpoints/swad.pt``; return its predictions."""
        averaged = self.swad.final()
        if averaged is None:
            raise ConfigError("train.swad: no evaluation closed a segment to average")
        weights, summary = averaged
        step = int(self.config["train"]["steps"])
        set_parameters(self.model, weights)
        self._recompute_batchnorm(step)
        results, predictions = self.evaluate()
        writer.append(
            {
                "kind": SWAD_KIND,
                "step": step,
                "algorithm": self.config["algorithm"]["name"],
                "seed": self.config["train"]["seed"],
                "eval": results,
                "swad": summary,
            }
        )
        self.directory.save(SWAD_CHECKPOINT, {"model": self.model.state_dict(), "step": step, "swad": summary})
        predictions["step"] = step
        predictions["model"] = SWAD_KIND
        return predictions

    def _recompute_batchnorm(self, step: int) -> None:
        """BatchNorm running statistics of the current weights from ``train.swad.bn_update_steps`` pooled training
        batches (the steps after the last one, drawn as training draws them), as SWAD does after averaging."""
        count = int(self.config["train"]["swad"]["bn_update_steps"])
        if count == 0 or not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.model.modules()):
            return
        inputs = (torch.cat([x for x, _ in self.data.domain_batches(step + i)]) for i in range(1, count + 1))
        with (
            torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []),
            self.algorithm.execution.autocast(self.device),
        ):
            update_bn(inputs, self.model)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def train(
    config: dict[str, Any], run_dir: str | Path | None = None, callbacks: Sequence[TrainingCallback] = ()
) -> Path:
    """Build a :class:`Trainer` from a resolved config and run it to the end (a finished run is refused first)."""
    RunDir(run_directory(config, run_dir)).refuse_finished()
    return Trainer(config, run_dir, callbacks).fit()
