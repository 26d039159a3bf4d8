"""``python -m workbench eval``: score a checkpoint on every evaluation group of a run's protocol."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from workbench.cli.train import USER_ERRORS
from workbench.config import load_config
from workbench.training import Trainer, load_checkpoint


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a run's checkpoint (optionally on another manifest)",
        description=(
            "Load a checkpoint of a run (default: the selected best_source_val.pt) and compute AUC, EER, AP, "
            "ACC and video AUC on the run's evaluation groups, or on the domains of another manifest given "
            "with --set data.manifest=... data.target_domains=[...]. Prints JSON; --out writes it and the "
            "per-frame predictions."
        ),
    )
    parser.add_argument("run_dir", help="run directory written by `train`")
    parser.add_argument("--checkpoint", default="best_source_val.pt", help="file name under checkpoints/")
    parser.add_argument("--set", dest="overrides", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                        help="config overrides (e.g. another manifest and target domains; --set may be repeated)")
    parser.add_argument("--out", help="directory for metrics.json and predictions.csv")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate the checkpoint and print (and write) the metrics; returns 1 with a one-line message on unusable inputs."""
    try:
        state, results, predictions = evaluate_checkpoint(Path(args.run_dir), args.checkpoint, args.overrides)
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


def evaluate_checkpoint(run_dir: Path, checkpoint: str, overrides: list[str]) -> tuple[dict, dict, pd.DataFrame]:
    """The checkpoint's state, its metrics on every evaluation group and the predictions behind them."""
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise FileNotFoundError(f"{run_dir} has no config.yaml; is it a run directory?")
    trainer = Trainer(load_config(saved, overrides), run_dir)
    state = load_checkpoint(run_dir / "checkpoints" / checkpoint, map_location=trainer.device)
    trainer.model.load_state_dict(state["model"])
    results, predictions = trainer.evaluate()
    return state, results, predictions
