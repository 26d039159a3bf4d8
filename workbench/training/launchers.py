"""Where a sweep's runs execute: one after another in this process, N at once on this machine, or on SLURM.

A launcher only executes :class:`RunJob` s and reports each one's status as it finishes; the sweep's
coordinator (:func:`workbench.training.sweep.run_sweep`) alone writes ``sweep.csv``. The parallel
launchers go through submitit: each run is a job in its own process, started by a
:class:`submitit.LocalExecutor` (one per worker slot, so a GPU never holds two runs) or submitted to SLURM
as one job array. A job that is preempted or reaches its time limit is requeued by submitit's
checkpoint protocol and its training resumes from ``checkpoints/last.pt``, which the trainer restores
bit for bit, so the result equals an uninterrupted run's.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import submitit
import torch
from submitit.core.core import Executor, Job

from workbench.config import ConfigError, load_yaml
from workbench.training.collect import SWEEP_TRAINED

# where submitit keeps a parallel sweep's job pickles and logs, inside the sweep folder
JOBS_FOLDER = "jobs"
# a local job has no time limit of its own: submitit needs one, so it is one far beyond any run
LOCAL_TIME_LIMIT_MIN = 60 * 24 * 365
# the sweep flags (and keys of a --slurm-config file) -> SlurmExecutor parameters
SLURM_KEYS: dict[str, str] = {
    "partition": "partition",
    "time": "time",
    "gpus": "gpus_per_node",
    "cpus": "cpus_per_task",
    "mem_gb": "mem",
    "account": "account",
    "qos": "qos",
    "constraint": "constraint",
    "setup": "setup",
}


@dataclass(frozen=True)
class RunJob(submitit.helpers.Checkpointable):
    """One run to train, as a picklable callable: ``train_run(config, run_dir)``, then its status.

    Returns ``"trained"``, or ``"failed: <message>"`` for an exception in ``errors`` (anything else is
    raised). As a :class:`submitit.helpers.Checkpointable`, a preempted or timed-out job resubmits
    itself unchanged; training then resumes from the run's ``checkpoints/last.pt``.
    """

    name: str
    config: dict[str, Any]
    run_dir: Path
    train_run: Callable[[dict[str, Any], Path], Any]
    errors: tuple[type[Exception], ...] = (Exception,)

    def __call__(self) -> str:
        try:
            self.train_run(self.config, self.run_dir)
        except self.errors as exc:
            return f"failed: {exc}"
        return SWEEP_TRAINED


# what a launcher yields: (job, None) when a run starts in another process, (job, status) when it finishes
Launched = Generator[tuple["RunJob", str | None], None, None]


class Launcher(Protocol):
    """Executes run jobs; yields ``(job, status)`` for each as it finishes and ``(job, None)`` when it starts
    somewhere else (its place, e.g. a SLURM job id, in :meth:`where`)."""

    def launch(self, jobs: Sequence[RunJob]) -> Launched: ...

    def where(self, job: RunJob) -> str: ...


class SerialLauncher:
    """The default: each run in this process, one after another.

    An error outside the job's ``errors`` stops the sweep."""

    def launch(self, jobs: Sequence[RunJob]) -> Launched:
        for job in jobs:
            yield job, job()

    def where(self, job: RunJob) -> str:
        return "sweep process"


@dataclass(frozen=True)
class WorkerSlot:
    """Where one of N parallel local runs executes: its GPU (None: the CPU) and its CPU threads."""

    gpu: int | None
    threads: int


def worker_slots(jobs: int, gpus: Sequence[int], cpus: int) -> list[WorkerSlot]:
    """``jobs`` slots on a machine whose usable GPUs have the ids ``gpus`` and that has ``cpus`` cores: a GPU
    of its own per slot when there are GPUs (more jobs than GPUs is refused: two runs never share one) and
    the cores divided evenly between slots (at least one thread each)."""
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: at least one run must execute at a time")
    if gpus and jobs > len(gpus):
        raise ConfigError(
            f"--jobs {jobs} but only {len(gpus)} GPU(s) are visible: each run needs a GPU of its own; "
            f"use --jobs {len(gpus)} or fewer (or set train.device=cpu to run on the CPU)"
        )
    threads = max(1, cpus // jobs)
    return [WorkerSlot(gpus[index] if gpus else None, threads) for index in range(jobs)]


def slot_config(config: Mapping[str, Any], slot: WorkerSlot) -> dict[str, Any]:
    """``config`` for a run in ``slot``: at most the slot's share of CPU threads, and on a GPU slot the one
    GPU the run's process sees (``cuda``). Both keys say where a run executes, never what it computes."""
    result = copy.deepcopy(dict(config))
    wanted = result["train"]["cpu_threads"]
    result["train"]["cpu_threads"] = min(int(wanted), slot.threads) if wanted else slot.threads
    if slot.gpu is not None:
        result["train"]["device"] = "cuda"
    return result


def usable_gpus(config: Mapping[str, Any]) -> list[int]:
    """The ids of the GPUs parallel runs of ``config`` may take: none when it trains on the CPU, else every
    visible one, as ``CUDA_VISIBLE_DEVICES`` numbers them (a child process is given one of these ids)."""
    if str(config["train"]["device"]) == "cpu" or not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return list(range(torch.cuda.device_count()))
    try:
        return [int(gpu) for gpu in visible.split(",") if gpu.strip()]
    except ValueError:
        raise ConfigError(
            f"CUDA_VISIBLE_DEVICES={visible!r}: parallel runs need GPU indices (e.g. 0,1), "
            "not UUIDs, to give each run its own GPU"
        ) from None


def available_cpus() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def _failure(job: Job[Any]) -> str:
    """``failed: ...`` for a submitit job that raised or never finished: the error's last line and the job's log."""
    error = str(job.exception())
    parts = re.split(r"\n-{10,}\n", error)  # a failed job's message holds its traceback between two rules
    lines = [line.strip() for line in (parts[1] if len(parts) > 2 else error).splitlines() if line.strip()]
    reason = (lines[-1] if len(parts) > 2 else lines[0]) if lines else "no output"
    return f"failed: job {job.job_id}: {reason} (log: {job.paths.stderr})"


def _outcome(job: Job[Any]) -> str:
    try:
        return job.result()
    except submitit.core.utils.UncompletedJobError:  # FailedJobError included: an error outside the job's errors
        return _failure(job)


def _watch(
    running: dict[Any, tuple[RunJob, Job[Any]]],
    submit: Callable[[], list[RunJob]],
    cancel: Callable[[Job[Any]], None],
    poll_s: float,
) -> Launched:
    """The poll loop of the launchers: ``submit()`` starts what it can (adding it to ``running``) and returns
    those jobs; each is yielded as started ``(job, None)`` and again with its outcome when done. Jobs still
    running when the loop is closed (the sweep interrupted) are cancelled."""
    try:
        while True:
            for job in submit():
                yield job, None
            if not running:
                return
            for key, (job, submitted) in list(running.items()):
                if submitted.done():
                    del running[key]
                    yield job, _outcome(submitted)
            if running:
                time.sleep(poll_s)
    finally:
        for _, submitted in running.values():
            cancel(submitted)


class LocalPoolLauncher:
    """N runs at once on this machine, each in its own process through a submitit :class:`LocalExecutor`
    per slot (so the slot's GPU is the only one the run sees and it holds one run at a time)."""

    def __init__(
        self, folder: str | Path, slots: Sequence[WorkerSlot], poll_s: float = 0.5, max_timeouts: int = 3
    ) -> None:
        self.slots = list(slots)
        self.poll_s = poll_s
        self.executors = []
        for slot in self.slots:
            executor = submitit.LocalExecutor(Path(folder) / JOBS_FOLDER, max_num_timeout=max_timeouts)
            gpus = () if slot.gpu is None else (slot.gpu,)
            executor.update_parameters(timeout_min=LOCAL_TIME_LIMIT_MIN, visible_gpus=gpus, gpus_per_node=len(gpus))
            self.executors.append(executor)
        self._ids: dict[str, str] = {}

    def launch(self, jobs: Sequence[RunJob]) -> Launched:
        pending = list(jobs)
        running: dict[int, tuple[RunJob, Job[Any]]] = {}

        def fill_free_slots() -> list[RunJob]:
            started = []
            for index in [i for i in range(len(self.slots)) if i not in running][: len(pending)]:
                job = pending.pop(0)
                job = dataclasses.replace(job, config=slot_config(job.config, self.slots[index]))
                running[index] = (job, self.executors[index].submit(job))
                self._ids[job.name] = f"local job {running[index][1].job_id}"
                started.append(job)
            return started

        return _watch(running, fill_free_slots, lambda submitted: submitted.cancel(), self.poll_s)

    def where(self, job: RunJob) -> str:
        return self._ids[job.name]


class SlurmLauncher:
    """Every run as a task of one SLURM job array, submitted through ``executor`` (a
    :class:`submitit.SlurmExecutor` with :func:`slurm_parameters`); each run uses its job's CPUs as threads
    and, when the job has GPUs, the GPU SLURM gives it."""

    def __init__(self, executor: Executor, poll_s: float = 30.0) -> None:
        self.executor = executor
        self.poll_s = poll_s
        self._ids: dict[str, str] = {}

    def launch(self, jobs: Sequence[RunJob]) -> Launched:
        slot = WorkerSlot(
            0 if self.executor.parameters.get("gpus_per_node") else None,
            self.executor.parameters.get("cpus_per_task") or 1,
        )
        jobs = [dataclasses.replace(job, config=slot_config(job.config, slot)) for job in jobs]
        running: dict[str, tuple[RunJob, Job[Any]]] = {}
        if jobs:
            running = dict(zip([job.name for job in jobs], zip(jobs, self.executor.submit_array(jobs))))
        for job, array_job in running.values():
            self._ids[job.name] = f"slurm job {array_job.job_id}"
        unannounced = [list(jobs)]

        def announce_once() -> list[RunJob]:  # the whole array was submitted at once
            return unannounced.pop() if unannounced else []

        return _watch(running, announce_once, lambda array_job: array_job.cancel(check=False), self.poll_s)

    def where(self, job: RunJob) -> str:
        return self._ids[job.name]


def read_slurm_config(path: str | Path) -> dict[str, Any]:
    """A ``--slurm-config`` YAML file: a mapping of the keys of :data:`SLURM_KEYS` (plus ``additional``,
    extra ``#SBATCH`` flags as a mapping); refuses unknown keys, naming the file."""
    content = load_yaml(Path(path).read_text())
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: a SLURM config must be a mapping of {sorted(SLURM_KEYS)}")
    unknown = sorted(set(content) - set(SLURM_KEYS) - {"additional"})
    if unknown:
        raise ConfigError(f"{path}: unknown SLURM key(s) {unknown}; known: {sorted([*SLURM_KEYS, 'additional'])}")
    return content


def slurm_parameters(options: Mapping[str, Any], jobs: int | None = None, name: str = "sweep") -> dict[str, Any]:
    """SlurmExecutor parameters from ``options`` (keys of :data:`SLURM_KEYS`, None for unset; ``time`` in
    minutes, ``mem_gb`` in GB); ``jobs`` caps how many array tasks run at once.

    Runs hold one task each; the time limit is required, since requeueing at it is how a long run
    continues. Values are checked here, naming the option.
    """
    if options.get("time") is None:
        raise ConfigError("a SLURM sweep needs a time limit per job: --time MINUTES (or 'time' in --slurm-config)")
    for key, least in (("time", 1), ("gpus", 0), ("cpus", 1)):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise ConfigError(f"SLURM option {key}={value!r} must be a whole number, {least} or more")
    mem = options.get("mem_gb")
    if mem is not None and (isinstance(mem, bool) or not isinstance(mem, (int, float)) or mem <= 0):
        raise ConfigError(f"SLURM option mem_gb={mem!r} must be a positive number of GB")
    params: dict[str, Any] = {"job_name": name, "nodes": 1, "ntasks_per_node": 1}
    for key, slurm_key in SLURM_KEYS.items():
        value = options.get(key)
        if value is None:
            continue
        if key == "mem_gb":
            value = f"{int(value)}GB" if value == int(value) else f"{int(value * 1024)}MB"
        params[slurm_key] = list(value) if key == "setup" else value
    if options.get("additional"):
        params["additional_parameters"] = dict(options["additional"])
    if jobs is not None:
        params["array_parallelism"] = jobs
    return params


def slurm_executor(folder: str | Path, parameters: Mapping[str, Any], max_timeouts: int = 3) -> Executor:
    """A :class:`submitit.SlurmExecutor` writing its job files and logs to ``folder/jobs``, with ``parameters``."""
    executor = submitit.SlurmExecutor(Path(folder) / JOBS_FOLDER, max_num_timeout=max_timeouts)
    executor.update_parameters(**parameters)
    return executor
