"""``python -m workbench eval``: score a checkpoint on every evaluation group of a run's protocol."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workbench.cli import add_overrides_argument
from workbench.cli.train import USER_ERRORS
from workbench.training.runs import CHECKPOINT_SELECTIONS
from workbench.training.scoring import score_checkpoint


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a run's checkpoint (optionally on another manifest)",
        description=(
            "Load a checkpoint of a run (default: the source_val-selected best_source_val.pt) and compute AUC, EER, AP, "
            "ACC and video AUC on the run's evaluation groups, or on the domains of another manifest given "
            "with --set data.manifest=... data.target_domains=[...]. Prints JSON; --out writes it and the "
            "per-frame predictions."
        ),
    )
    parser.add_argument("run_dir", help="run directory written by `train`")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--selection", choices=CHECKPOINT_SELECTIONS, default="source_val",
                        help="the model-selection rule whose kept model is evaluated (best_<rule>.pt, or last.pt "
                             "for 'last'; lodo and oracle need train.checkpoint_rules); default source_val")
    chosen.add_argument("--checkpoint", help="a file name under checkpoints/ instead of --selection")
    add_overrides_argument(parser, "config overrides (e.g. another manifest and target domains)")
    parser.add_argument("--out", help="directory for metrics.json and predictions.csv")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate the checkpoint and print (and write) the metrics; returns 1 with a one-line message on unusable inputs."""
    try:
        state, results, predictions = score_checkpoint(Path(args.run_dir), args.overrides, args.checkpoint,
                                                       args.selection)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"step": int(state["step"]), "eval": results}, indent=2))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps({"step": int(state["step"]), "eval": results}, indent=2))
        predictions.to_csv(out / "predictions.csv", index=False)
    return 0
