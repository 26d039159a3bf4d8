"""``python -m workbench train``: train one run from a YAML config plus overrides."""

from __future__ import annotations

import argparse
import sys

from workbench.analysis.callbacks import callbacks_from_config
from workbench.cli import add_overrides_argument
from workbench.config import ConfigError, load_config
from workbench.data.manifest import ManifestError
from workbench.models.weights import PretrainedWeightsError
from workbench.training.checkpoint import CheckpointError
from workbench.training.evaluation import NonFiniteOutputError
from workbench.training.records import RecordsError
from workbench.training.trainer import NonFiniteLossError, train

INTERRUPTED_HINT = "run the same command again to resume from the last checkpoint (checkpoints/last.pt)"
# The library's errors about its inputs (and a diverged run): printed as one line (no traceback), exit status 1.
USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    ManifestError,
    RecordsError,
    CheckpointError,
    FileExistsError,
    FileNotFoundError,
    NonFiniteLossError,
    NonFiniteOutputError,
    PretrainedWeightsError,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train (or resume) the run; returns 1 with a one-line message on unusable inputs."""
    try:
        config = load_config(args.config, args.overrides)
        run_dir = train(config, args.run_dir, callbacks_from_config(config))
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: {INTERRUPTED_HINT}", file=sys.stderr)
        return 130
    print(f"run written to {run_dir}")
    return 0
