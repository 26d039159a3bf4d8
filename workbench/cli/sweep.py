"""``python -m workbench sweep``: train every algorithm × hyper-parameter combination × seed of a config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.analysis.callbacks import train_with_callbacks
from workbench.cli import RESUME_HINT, USER_ERRORS, CommandError, add_command, add_overrides_argument
from workbench.config import ConfigError
from workbench.training.checkpoint import CheckpointError
from workbench.training.collect import SWEEP_FILE
from workbench.training.launchers import (
    Launcher,
    LocalPoolLauncher,
    SerialLauncher,
    SlurmLauncher,
    available_cpus,
    read_slurm_config,
    slurm_executor,
    slurm_parameters,
    usable_gpus,
    worker_slots,
)
from workbench.training.sweep import SweepRun, parse_axis, plan_sweep, planned_status, run_sweep
from workbench.training.trainer import NonFiniteLossError

# failures of one run that leave the rest of the sweep meaningful
RUN_FAILURES: tuple[type[Exception], ...] = (NonFiniteLossError, CheckpointError, RuntimeError)
# flag -> key of slurm_parameters (and of a --slurm-config file)
SLURM_FLAGS: dict[str, str] = {
    "partition": "partition",
    "time": "time",
    "gpus_per_run": "gpus",
    "cpus_per_run": "cpus",
    "mem_gb": "mem_gb",
    "account": "account",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "sweep",
        run,
        errors=USER_ERRORS,
        interrupted=lambda args: f"{args.out / SWEEP_FILE} lists the runs still pending; {RESUME_HINT}",
        help="train a grid of algorithms, hyper-parameters and seeds (then: report --tune)",
        description=(
            "Plan every run (algorithm x grid combination x seed) of one config, check all their configs against "
            "their manifests, then train them one after another in OUT/<algorithm>-<key=value...>-seed<N>. Runs "
            "finished with the same config are reused and interrupted ones resume, so the same command continues "
            "a sweep; a run saved with another config, or one that fails (e.g. a diverging loss), is recorded as "
            "failed and the sweep goes on. OUT/sweep.csv lists every run's status and where it executed. --jobs N "
            "trains N runs at once on this machine (a GPU of its own per run, the CPU cores divided between runs); "
            "--launcher slurm submits the runs as a SLURM job array (submitit), requeued and resumed from their "
            "checkpoints when preempted or out of time. Choose hyper-parameters on validation data afterwards with "
            "`python -m workbench report OUT --tune` (a sweep folder stands for its finished runs)."
        ),
    )
    parser.add_argument("--config", help="YAML config file shared by every run")
    add_overrides_argument(parser, "overrides for every run")
    parser.add_argument("--algorithms", nargs="+", required=True, help="algorithms to train, e.g. erm sam sagm roga")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds (default: 0)")
    parser.add_argument(
        "--grid",
        nargs="*",
        action="extend",
        default=[],
        metavar="[ALGS:]KEY=[V1, V2]",
        help="a swept key and its values as a YAML list, e.g. 'roga,sagm:algorithm.hparams.rho=[0.02, "
        "0.05]' (the optional prefix limits it to those algorithms); --grid may be repeated",
    )
    parser.add_argument("--out", type=Path, required=True, help="sweep folder: one run directory per run")
    parser.add_argument("--dry-run", action="store_true", help="list the planned runs and their status; train nothing")
    parser.add_argument(
        "--launcher",
        choices=("local", "slurm"),
        default="local",
        help="where runs execute: this machine (default) or SLURM jobs submitted through submitit",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="local: runs at once (default 1: one after another in this process; "
        "at most one per GPU); slurm: array tasks running at once (default: no limit)",
    )
    parser.add_argument(
        "--max-timeouts",
        type=int,
        default=3,
        help="times a run that reaches its time limit is requeued (preemptions always are; default 3)",
    )
    slurm = parser.add_argument_group("SLURM (--launcher slurm; flags override --slurm-config)")
    slurm.add_argument(
        "--slurm-config",
        type=Path,
        help="YAML file with partition, time, gpus, cpus, mem_gb, account, "
        "qos, constraint, setup (shell lines before the run), additional (more #SBATCH flags)",
    )
    slurm.add_argument("--partition", help="SLURM partition")
    slurm.add_argument(
        "--time",
        type=int,
        help="time limit of each job in minutes (a run that needs longer is requeued and resumes from its checkpoint)",
    )
    slurm.add_argument("--gpus-per-run", type=int, help="GPUs of each job")
    slurm.add_argument("--cpus-per-run", type=int, help="CPUs of each job (the run's CPU threads)")
    slurm.add_argument("--mem-gb", type=float, help="memory of each job in GB")
    slurm.add_argument("--account", help="SLURM account to charge")


def make_launcher(args: argparse.Namespace, runs: list[SweepRun]) -> Launcher:
    """The launcher the flags ask for; raises ConfigError on flags that do not fit it or the machine."""
    given = {flag: getattr(args, flag) for flag in SLURM_FLAGS if getattr(args, flag) is not None}
    if args.launcher == "local":
        if given or args.slurm_config:
            names = [f"--{flag.replace('_', '-')}" for flag in given]
            names += ["--slurm-config"] if args.slurm_config else []
            raise ConfigError(f"{names} only apply to --launcher slurm")
        if args.jobs is None or args.jobs == 1:
            return SerialLauncher()
        gpus = max((usable_gpus(planned.config) for planned in runs), key=len, default=[])
        slots = worker_slots(args.jobs, gpus, available_cpus())
        return LocalPoolLauncher(args.out, slots, max_timeouts=args.max_timeouts)
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: at least one run must execute at a time")
    options = read_slurm_config(args.slurm_config) if args.slurm_config else {}
    options.update({SLURM_FLAGS[flag]: value for flag, value in given.items()})
    parameters = slurm_parameters(options, args.jobs, name=f"sweep-{args.out.name}")
    return SlurmLauncher(slurm_executor(args.out, parameters, args.max_timeouts))


def run(args: argparse.Namespace) -> int:
    """Plan, then train (or list) the sweep; returns 1 when a run failed."""
    runs = plan_sweep(
        args.config, args.overrides, args.algorithms, args.seeds, [parse_axis(text) for text in args.grid]
    )
    print(f"{len(runs)} runs in {args.out}", file=sys.stderr)
    if args.dry_run:
        for planned in runs:
            print(f"{planned.name}\t{planned_status(planned, args.out / planned.name)}")
        return 0
    try:
        launcher = make_launcher(args, runs)
    except RuntimeError as exc:  # submitit finds no SLURM here
        raise CommandError(str(exc)) from exc
    table = run_sweep(
        runs,
        args.out,
        train_with_callbacks,
        errors=USER_ERRORS + RUN_FAILURES,
        on_status=lambda row: print(f"{row['name']}: {row['status']}", file=sys.stderr),
        launcher=launcher,
    )
    failed = table[table["status"].str.startswith("failed")]
    print(
        f"wrote {args.out / SWEEP_FILE}: {len(table) - len(failed)} of {len(table)} runs done"
        + (f"; {len(failed)} failed: {list(failed['name'])}" if len(failed) else ""),
        file=sys.stderr,
    )
    return 1 if len(failed) else 0
