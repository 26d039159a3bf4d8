"""``python -m workbench <command>``: the same API as the notebooks, for long runs and scripts."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from workbench.cli import run_command

COMMANDS = (
    "synth",
    "train",
    "adopt",
    "sweep",
    "eval",
    "demo",
    "report",
    "analyse",
    "algorithms",
    "weights",
    "preprocess",
    "manifest",
    "predict",
    "lab",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workbench",
        description="RoGA workbench: train and analyse domain-generalised deepfake detectors.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"workbench.cli.{'evaluate' if name == 'eval' else name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
