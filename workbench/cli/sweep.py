"""``python -m workbench sweep``: train every algorithm × hyper-parameter combination × seed of a config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.analysis.callbacks import callbacks_from_config
from workbench.cli import add_overrides_argument
from workbench.cli.train import INTERRUPTED_HINT, USER_ERRORS
from workbench.training.checkpoint import CheckpointError
from workbench.training.report import SWEEP_FILE
from workbench.training.sweep import parse_axis, plan_sweep, planned_status, run_sweep
from workbench.training.trainer import NonFiniteLossError, train

# failures of one run that leave the rest of the sweep meaningful
RUN_FAILURES: tuple[type[Exception], ...] = (NonFiniteLossError, CheckpointError, RuntimeError)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="train a grid of algorithms, hyper-parameters and seeds (then: report --tune)",
        description=(
            "Plan every run (algorithm x grid combination x seed) of one config, check all their configs against "
            "their manifests, then train them one after another in OUT/<algorithm>-<key=value...>-seed<N>. Runs "
            "finished with the same config are reused and interrupted ones resume, so the same command continues "
            "a sweep; a run saved with another config, or one that fails (e.g. a diverging loss), is recorded as "
            "failed and the sweep goes on. OUT/sweep.csv lists every run's status. Choose hyper-parameters on validation data afterwards with "
            "`python -m workbench report OUT --tune` (a sweep folder stands for its finished runs)."
        ),
    )
    parser.add_argument("--config", help="YAML config file shared by every run")
    add_overrides_argument(parser, "overrides for every run")
    parser.add_argument("--algorithms", nargs="+", required=True, help="algorithms to train, e.g. erm sam sagm roga")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds (default: 0)")
    parser.add_argument("--grid", nargs="*", action="extend", default=[], metavar="[ALGS:]KEY=[V1, V2]",
                        help="a swept key and its values as a YAML list, e.g. 'roga,sagm:algorithm.hparams.rho=[0.02, "
                        "0.05]' (the optional prefix limits it to those algorithms); --grid may be repeated")
    parser.add_argument("--out", type=Path, required=True, help="sweep folder: one run directory per run")
    parser.add_argument("--dry-run", action="store_true", help="list the planned runs and their status; train nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Plan, then train (or list) the sweep; returns 1 on an unusable plan or when a run failed."""
    try:
        runs = plan_sweep(args.config, args.overrides, args.algorithms, args.seeds,
                          [parse_axis(text) for text in args.grid])
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(runs)} runs in {args.out}", file=sys.stderr)
    if args.dry_run:
        for planned in runs:
            print(f"{planned.name}\t{planned_status(planned, args.out / planned.name)}")
        return 0
    try:
        table = run_sweep(runs, args.out, lambda config, run_dir: train(config, run_dir, callbacks_from_config(config)),
                          errors=USER_ERRORS + RUN_FAILURES,
                          on_status=lambda row: print(f"{row['name']}: {row['status']}", file=sys.stderr))
    except KeyboardInterrupt:
        print(f"interrupted: {args.out / SWEEP_FILE} lists the runs still pending; {INTERRUPTED_HINT}", file=sys.stderr)
        return 130
    failed = table[table["status"].str.startswith("failed")]
    print(f"wrote {args.out / SWEEP_FILE}: {len(table) - len(failed)} of {len(table)} runs done"
          + (f"; {len(failed)} failed: {list(failed['name'])}" if len(failed) else ""), file=sys.stderr)
    return 1 if len(failed) else 0
