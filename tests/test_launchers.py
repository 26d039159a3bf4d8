"""Launchers: worker slots, runs in parallel processes and through submitit, preemption, SLURM parameters."""

from __future__ import annotations

import copy
import os
import signal
import stat
from pathlib import Path

import pandas as pd
import pytest
import submitit
import torch
import yaml

from workbench.__main__ import build_parser, main
from workbench.analysis.callbacks import train_with_callbacks
from workbench.cli.sweep import make_launcher
from workbench.config import ConfigError
from workbench.training.checkpoint import load_checkpoint, model_state
from workbench.training.launchers import (
    LocalPoolLauncher,
    RunJob,
    SerialLauncher,
    SlurmLauncher,
    WorkerSlot,
    read_slurm_config,
    slot_config,
    slurm_parameters,
    usable_gpus,
    worker_slots,
)
from workbench.training.selection import load_records
from workbench.training.sweep import plan_sweep, run_sweep
from workbench.training.trainer import Trainer, train

TESTS = Path(__file__).parent
TIMING = ("img_s", "step_ms", "data_ms")


@pytest.fixture
def base(tiny_config, tmp_path):
    """The tiny config as a file, with one CPU thread per run (as the serial runs of this process have)."""
    config = copy.deepcopy(tiny_config)
    config["train"].update(cpu_threads=1, steps=6, eval_every=2)
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def importable_tests(monkeypatch):
    """Job processes import this module (its train functions) by name, as pytest does."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


def computed(run_dir: Path) -> tuple[list[dict], pd.DataFrame, dict[str, torch.Tensor]]:
    """What a run computed: its records without timings, its predictions and its last weights."""
    records = []
    for record in load_records(run_dir):
        record = {key: value for key, value in record.items() if key not in ("wall_s", "callbacks_s")}
        if "train" in record:
            record["train"] = {key: value for key, value in record["train"].items() if key not in TIMING}
        records.append(record)
    return (
        records,
        pd.read_csv(run_dir / "predictions.csv"),
        model_state(load_checkpoint(run_dir / "checkpoints" / "last.pt")),
    )


def assert_same_runs(first: Path, second: Path, names: list[str]) -> None:
    for name in names:
        records, predictions, weights = computed(first / name)
        other_records, other_predictions, other_weights = computed(second / name)
        assert records == other_records, name
        pd.testing.assert_frame_equal(predictions, other_predictions)
        assert weights.keys() == other_weights.keys()
        assert all(torch.equal(weights[key], other_weights[key]) for key in weights), name


def test_worker_slots_give_each_run_its_own_gpu_and_a_share_of_the_cores():
    assert worker_slots(2, [0, 1, 2, 3], 16) == [WorkerSlot(0, 8), WorkerSlot(1, 8)]
    assert worker_slots(3, [5, 2, 7], 8) == [WorkerSlot(5, 2), WorkerSlot(2, 2), WorkerSlot(7, 2)]
    assert worker_slots(3, [], 2) == [WorkerSlot(None, 1)] * 3  # more runs than cores: one thread each
    with pytest.raises(ConfigError, match=r"--jobs 3 but only 2 GPU\(s\).*--jobs 2 or fewer"):
        worker_slots(3, [0, 1], 8)
    with pytest.raises(ConfigError, match="--jobs 0"):
        worker_slots(0, [], 2)


def test_a_slot_config_takes_the_slot_share_of_threads_and_its_gpu_without_touching_the_plan(tiny_config):
    config = copy.deepcopy(tiny_config)
    assert config["train"]["cpu_threads"] is None
    assert slot_config(config, WorkerSlot(None, 4))["train"]["cpu_threads"] == 4
    config["train"]["cpu_threads"] = 1
    assert slot_config(config, WorkerSlot(None, 4))["train"]["cpu_threads"] == 1  # a lower setting is kept
    config["train"]["cpu_threads"] = 8
    on_gpu = slot_config(config, WorkerSlot(1, 4))
    assert (on_gpu["train"]["cpu_threads"], on_gpu["train"]["device"]) == (4, "cuda")  # the one GPU it sees
    assert (config["train"]["cpu_threads"], config["train"]["device"]) == (8, "cpu")


def test_usable_gpus_are_none_for_a_cpu_config_and_the_visible_ones_otherwise(tiny_config, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    config = copy.deepcopy(tiny_config)
    assert usable_gpus(config) == []  # train.device: cpu
    config["train"]["device"] = "auto"
    assert usable_gpus(config) == [0, 1, 2, 3]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # a run's process is given the machine's id of its GPU
    assert usable_gpus(config) == [2, 3]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8a1b,GPU-77c2")
    with pytest.raises(ConfigError, match="CUDA_VISIBLE_DEVICES='GPU-8a1b,GPU-77c2'.*indices"):
        usable_gpus(config)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert usable_gpus(config) == []


def test_the_serial_launcher_runs_jobs_in_order_in_this_process(tmp_path):
    calls = []
    jobs = [RunJob(name, {}, tmp_path / name, lambda config, run_dir: calls.append(run_dir.name)) for name in "ab"]
    failing = RunJob("c", {}, tmp_path / "c", lambda config, run_dir: {}["x"], errors=(KeyError,))
    assert [(job.name, status) for job, status in SerialLauncher().launch([*jobs, failing])] == [
        ("a", "trained"),
        ("b", "trained"),
        ("c", "failed: 'x'"),
    ]
    assert calls == ["a", "b"]


def fails_on_seed_1(config: dict, run_dir: Path) -> None:
    """A train function for job processes: seed 1 fails inside the job's errors, seed 2 outside them."""
    run_dir.mkdir(parents=True)
    if config["train"]["seed"] == 1:
        raise ValueError("loss became nan")
    if config["train"]["seed"] == 2:
        raise KeyError("a bug")
    (run_dir / "threads").write_text(f"{config['train']['cpu_threads']} {os.environ['CUDA_VISIBLE_DEVICES']!r}")


@pytest.mark.slow
def test_parallel_runs_record_failures_and_the_others_go_on(base, tmp_path, importable_tests):
    out = tmp_path / "sweep"
    runs = plan_sweep(base, [], ["erm"], [0, 1, 2, 3])
    launcher = LocalPoolLauncher(out, [WorkerSlot(None, 1), WorkerSlot(None, 1)], poll_s=0.1)
    table = run_sweep(runs, out, fails_on_seed_1, errors=(ValueError,), launcher=launcher)
    status = table.set_index("name")["status"]
    assert status[["erm-seed0", "erm-seed3"]].tolist() == ["trained", "trained"]
    assert status["erm-seed1"] == "failed: loss became nan"
    assert status["erm-seed2"].startswith("failed: job ") and "KeyError: 'a bug'" in status["erm-seed2"]
    assert (out / "erm-seed0" / "threads").read_text() == "1 ''"  # no GPU visible to a CPU slot
    written = pd.read_csv(out / "sweep.csv", keep_default_na=False)
    assert written["status"].tolist() == table["status"].tolist()
    assert written["job"].str.match(r"local job \d+$").all()


@pytest.mark.slow
def test_a_two_job_sweep_computes_exactly_what_the_serial_sweep_computes(base, tmp_path, capsys):
    argv = ["sweep", "--config", str(base), "--algorithms", "erm", "roga", "--seeds", "0", "1"]
    assert main([*argv, "--out", str(tmp_path / "serial")]) == 0
    assert main([*argv, "--out", str(tmp_path / "parallel"), "--jobs", "2"]) == 0
    names = ["erm-seed0", "erm-seed1", "roga-seed0", "roga-seed1"]
    assert_same_runs(tmp_path / "serial", tmp_path / "parallel", names)
    serial, parallel = (
        pd.read_csv(tmp_path / folder / "sweep.csv", keep_default_na=False) for folder in ("serial", "parallel")
    )
    assert serial["name"].tolist() == parallel["name"].tolist() == names
    assert (serial["status"] == "trained").all() and (parallel["status"] == "trained").all()
    assert (serial["job"] == "sweep process").all() and parallel["job"].str.match(r"local job \d+$").all()
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "parallel"), "--jobs", "2"]) == 0  # the same command again
    assert capsys.readouterr().err.count(": already done") == 4


def preempted_once(config: dict, run_dir: Path) -> Path:
    """Train, but the first time signal this job process as SLURM does before preempting it: at the
    evaluation of step 4, after the checkpoint of step 2, so that two steps are lost and trained again."""
    marker = run_dir.with_name(run_dir.name + ".preempted")
    if not marker.exists():
        save = Trainer._save

        def preempted_save(self, step, record, best):
            if step == 4:
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGUSR2)
            return save(self, step, record, best)

        Trainer._save = preempted_save
    return train_with_callbacks(config, run_dir)


@pytest.mark.slow
def test_a_preempted_run_is_requeued_and_resumes_to_the_uninterrupted_result(base, tmp_path, importable_tests):
    runs = plan_sweep(base, [], ["roga"], [0])
    run_sweep(runs, tmp_path / "serial", train, errors=(ValueError,))
    out = tmp_path / "preempted"
    launcher = LocalPoolLauncher(out, [WorkerSlot(None, 1)], poll_s=0.1)
    table = run_sweep(runs, out, preempted_once, errors=(ValueError,), launcher=launcher)
    assert table["status"].tolist() == ["trained"]
    assert (out / "roga-seed0.preempted").exists()
    log = "".join(path.read_text() for path in sorted((out / "jobs").glob("*_log.*")))
    assert "this job is preempted" in log and "Requeued job" in log
    assert_same_runs(tmp_path / "serial", out, ["roga-seed0"])


def fake_slurm(bin_dir: Path, job_id: int) -> None:
    """``srun``, ``sbatch`` (answers as SLURM does, submitting nothing) and ``scancel`` (logs its arguments)."""
    bin_dir.mkdir()
    for name, body in (
        ("srun", "exit 0"),
        ("sbatch", f"echo 'Submitted batch job {job_id}'"),
        ("scancel", f'echo "$@" >> {bin_dir / "cancelled"}'),
    ):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(stat.S_IRWXU)


def test_slurm_parameters_from_options_with_checks():
    options = {
        "partition": "gpu",
        "time": 240,
        "gpus": 1,
        "cpus": 8,
        "mem_gb": 31.5,
        "account": "dg-lab",
        "setup": ["module load cuda"],
        "additional": {"mail-type": "END"},
    }
    assert slurm_parameters(options, jobs=4, name="sweep-x") == {
        "job_name": "sweep-x",
        "nodes": 1,
        "ntasks_per_node": 1,
        "partition": "gpu",
        "time": 240,
        "gpus_per_node": 1,
        "cpus_per_task": 8,
        "mem": "32256MB",
        "account": "dg-lab",
        "setup": ["module load cuda"],
        "additional_parameters": {"mail-type": "END"},
        "array_parallelism": 4,
    }
    assert slurm_parameters({"time": 10, "mem_gb": 16})["mem"] == "16GB"
    for options, message in (
        ({}, "needs a time limit"),
        ({"time": 0}, "time=0 must be a whole number"),
        ({"time": 5, "gpus": 1.5}, "gpus=1.5"),
        ({"time": 5, "mem_gb": "lots"}, "mem_gb='lots'"),
    ):
        with pytest.raises(ConfigError, match=message):
            slurm_parameters(options)


def test_a_slurm_config_file_is_read_and_checked(tmp_path):
    path = tmp_path / "slurm.yaml"
    path.write_text("partition: gpu\ntime: 60\nadditional: {qos: high}\n")
    assert read_slurm_config(path) == {"partition": "gpu", "time": 60, "additional": {"qos": "high"}}
    path.write_text("partition: gpu\ngpus_per_node: 2\n")
    with pytest.raises(ConfigError, match=rf"{path}: unknown SLURM key\(s\) \['gpus_per_node'\]"):
        read_slurm_config(path)


def test_a_slurm_sweep_is_one_job_array_with_the_flags_over_the_config_file(base, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    fake_slurm(bin_dir, 4242)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    slurm_file = tmp_path / "slurm.yaml"
    slurm_file.write_text("partition: cpu\ntime: 30\naccount: dg-lab\nsetup: ['source .venv/bin/activate']\n")
    out = tmp_path / "sweep"
    args = build_parser().parse_args(
        [
            "sweep",
            "--config",
            str(base),
            "--algorithms",
            "erm",
            "--seeds",
            "0",
            "1",
            "2",
            "--out",
            str(out),
            "--launcher",
            "slurm",
            "--slurm-config",
            str(slurm_file),
            "--partition",
            "gpu",
            "--time",
            "120",
            "--gpus-per-run",
            "1",
            "--cpus-per-run",
            "4",
            "--mem-gb",
            "16",
            "--jobs",
            "2",
        ]
    )
    runs = plan_sweep(base, ["train.cpu_threads=null"], ["erm"], [0, 1, 2])
    launcher = make_launcher(args, runs)
    assert isinstance(launcher, SlurmLauncher)
    launched = launcher.launch([RunJob(run.name, run.config, out / run.name, train) for run in runs])
    started = [next(launched) for _ in runs]
    assert [(job.name, status, launcher.where(job)) for job, status in started] == [
        (f"erm-seed{seed}", None, f"slurm job 4242_{seed}") for seed in range(3)
    ]
    # each run takes its job's CPUs as threads and the GPU SLURM gives it
    assert {(job.config["train"]["cpu_threads"], job.config["train"]["device"]) for job, _ in started} == {(4, "cuda")}
    script = (out / "jobs" / "4242_submission.sh").read_text().splitlines()
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --time=120",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=16GB",
        "#SBATCH --account=dg-lab",
        "#SBATCH --array=0-2%2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --job-name=sweep-sweep",
        "#SBATCH --signal=USR2@90",
        "source .venv/bin/activate",
    ):
        assert line in script
    launched.close()  # the sweep stops: its unfinished jobs are cancelled
    assert (bin_dir / "cancelled").read_text().split() == ["4242_0", "4242_1", "4242_2"]


def test_launcher_flags_that_do_not_fit_are_refused(base, tmp_path, capsys, monkeypatch):
    argv = ["sweep", "--config", str(base), "--algorithms", "erm", "--out", str(tmp_path / "sweep")]
    assert main([*argv, "--partition", "gpu"]) == 1
    assert "['--partition'] only apply to --launcher slurm" in capsys.readouterr().err
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: -1))  # as where no srun is
    assert main([*argv, "--launcher", "slurm", "--time", "5"]) == 1
    assert "srun" in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert main([*argv, "--set", "train.device=auto", "--jobs", "3"]) == 1
    assert "--jobs 3 but only 2 GPU(s) are visible" in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()
