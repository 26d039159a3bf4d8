"""``python -m workbench train``: train one run from a YAML config plus overrides."""

from __future__ import annotations

import argparse

from workbench.analysis.callbacks import callbacks_from_config
from workbench.cli import RESUME_HINT, USER_ERRORS, add_command, add_overrides_argument
from workbench.config import load_config
from workbench.training.trainer import train


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "train",
        run,
        errors=USER_ERRORS,
        interrupted=lambda args: RESUME_HINT,
        help="train a detector with any algorithm of `algorithms` and write a run directory",
        description=(
            "Train one algorithm on the source domains of a manifest (or the embedded synthetic benchmark), "
            "evaluating every train.eval_every steps on source-val, source-test and each held-out domain. "
            "Writes runs/<name>/{config.yaml,records.jsonl,checkpoints/,predictions.csv,done}. "
            "Rerunning an interrupted run resumes it from checkpoints/last.pt."
        ),
    )
    parser.add_argument("--config", help="YAML config file (keys: see workbench/config.py DEFAULT_CONFIG)")
    add_overrides_argument(parser, "overrides such as algorithm.name=roga train.steps=500 algorithm.hparams.rho=0.1")
    parser.add_argument("--run-dir", help="run directory (default: run.dir/run.name)")


def run(args: argparse.Namespace) -> int:
    """Train (or resume) the run."""
    config = load_config(args.config, args.overrides)
    run_dir = train(config, args.run_dir, callbacks_from_config(config))
    print(f"run written to {run_dir}")
    return 0
