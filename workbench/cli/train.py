"""``python -m workbench train``: train one run from a YAML config plus overrides."""

from __future__ import annotations

import argparse

from workbench.config import load_config
from workbench.analysis.callbacks import callbacks_from_config
from workbench.training import Trainer


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a detector (ERM, SAM, SAGM, RoGA) and write a run directory",
        description=(
            "Train one algorithm on the source domains of a manifest (or the embedded synthetic benchmark), "
            "evaluating every train.eval_every steps on source-val, source-test and each held-out domain. "
            "Writes runs/<name>/{config.yaml,records.jsonl,checkpoints/,predictions.csv,done}. "
            "Rerunning an interrupted run resumes it from checkpoints/last.pt."
        ),
    )
    parser.add_argument("--config", help="YAML config file (keys: see workbench/config.py DEFAULT_CONFIG)")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides such as algorithm.name=roga train.steps=500 algorithm.hparams.rho=0.1")
    parser.add_argument("--run-dir", help="run directory (default: run.dir/run.name)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    run_dir = Trainer(config, args.run_dir, callbacks_from_config(config)).fit()
    print(f"run written to {run_dir}")
    return 0
