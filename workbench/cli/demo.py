"""``python -m workbench demo``: ERM vs RoGA on the embedded benchmark, with a report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from workbench.cli import USER_ERRORS, add_command, add_overrides_argument
from workbench.config import load_config
from workbench.demo import DEMO_ALGORITHMS, gap_lines, run_demo

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "demo",
        run,
        errors=USER_ERRORS,
        interrupted=lambda args: "run the same command again: finished runs are reused, interrupted ones resume",
        help="generate the embedded benchmark, train ERM and RoGA, compare them",
        description=(
            "Generates (or reuses) the embedded multi-domain forgery benchmark, trains each algorithm with the "
            "same seed and budget on the CPU, evaluates on the source domains and the held-out forgery domains, "
            "prints a comparison table and writes <out>/report.md with PNG figures: AUC bars, a Grad-CAM gallery and "
            "Grad-CAM localisation against depth. Runs are <out>/<algorithm>-seed<seed>, as a sweep names them: a "
            "finished run with the same config is reused (--fresh trains it again), an interrupted one resumes."
        ),
    )
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="demo config (default: configs/demo.yaml)")
    add_overrides_argument(parser, "config overrides")
    parser.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    parser.add_argument("--algorithms", nargs="+", default=list(DEMO_ALGORITHMS), help="algorithms to compare")
    parser.add_argument("--fresh", action="store_true", help="delete this demo's runs in <out> and train them again")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    config = load_config(args.config, args.overrides)
    table, differences, report = run_demo(config, args.out, args.algorithms, args.fresh)
    print()
    print(table.to_string(float_format="{:.3f}".format))
    print()
    print("\n".join(line.removeprefix("- ").replace("**", "") for line in gap_lines(table, differences)))
    if differences is not None:
        print(
            f"[low, high]: {100 * differences['ci_level'].iloc[0]:g}% paired video-bootstrap interval of the "
            f"difference to {differences['baseline'].iloc[0]}; see the report"
        )
    print(f"\nreport: {report}")
    print(f"demo wall time: {time.perf_counter() - started:.1f} s")
    return 0
