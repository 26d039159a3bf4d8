"""``python -m workbench eval``: score a checkpoint on every evaluation group of a run's protocol, clean and
(``--perturb``) under DeeperForensics-1.0's perturbations."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from workbench.cli import USER_ERRORS, CommandError, add_command, add_overrides_argument
from workbench.data.perturbations import LEVELS, PERTURBATIONS
from workbench.training.robustness import robustness_table
from workbench.training.runs import CHECKPOINT_SELECTIONS
from workbench.training.scoring import load_checkpoint_model, score_model

N_BOOT = 1000  # video-bootstrap resamples per --perturb interval


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "eval",
        run,
        errors=USER_ERRORS,
        help="evaluate a run's checkpoint (optionally on another manifest)",
        description=(
            "Load a checkpoint of a run (default: the source_val-selected best_source_val.pt) and compute AUC, "
            "EER, AP, ACC and video AUC on the run's evaluation groups, or on the domains of another manifest given "
            "with --set data.manifest=... data.target_domains=[...]. Prints JSON; --out writes it and the "
            "per-frame predictions. --perturb also scores the frames under DeeperForensics-1.0's perturbations "
            "at the chosen severity levels and reports AUC with video-bootstrap intervals (robustness.csv)."
        ),
    )
    parser.add_argument("run_dir", help="run directory written by `train`")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument(
        "--selection",
        choices=CHECKPOINT_SELECTIONS,
        default="source_val",
        help="the model-selection rule whose kept model is evaluated (best_<rule>.pt, or last.pt "
        "for 'last'; lodo and oracle need train.checkpoint_rules); default source_val",
    )
    chosen.add_argument("--checkpoint", help="a file name under checkpoints/ instead of --selection")
    add_overrides_argument(parser, "config overrides (e.g. another manifest and target domains)")
    parser.add_argument("--out", help="directory for metrics.json, predictions.csv (and robustness.csv)")
    parser.add_argument(
        "--perturb",
        nargs="+",
        choices=["all", *PERTURBATIONS],
        metavar="PERTURBATION",
        help="DeeperForensics-1.0 perturbations to score under: all, or some of " + ", ".join(PERTURBATIONS),
    )
    parser.add_argument(
        "--levels",
        nargs="+",
        type=int,
        choices=LEVELS,
        metavar="LEVEL",
        help="severity levels 1-5 of --perturb (default: all five)",
    )
    parser.add_argument(
        "--n-boot", type=int, help=f"video-bootstrap resamples of each --perturb AUC interval (95%%; default {N_BOOT})"
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate the checkpoint (clean, and under ``--perturb``) and print (and write) the metrics."""
    if not args.perturb and (args.levels or args.n_boot is not None):
        raise CommandError("--levels and --n-boot apply to --perturb, which is not given")
    n_boot = N_BOOT if args.n_boot is None else args.n_boot
    if n_boot < 1:
        raise CommandError(f"--n-boot must be at least 1, got {n_boot}")
    state, model, config, device, data = load_checkpoint_model(
        Path(args.run_dir), args.overrides, args.checkpoint, args.selection
    )
    results, predictions = score_model(model, config, device, data)
    robustness = (
        None
        if not args.perturb
        else robustness_table(
            model,
            config,
            device,
            data,
            args.perturb,
            args.levels or LEVELS,
            clean=(results, predictions),
            n_boot=n_boot,
        )
    )
    metrics = {"step": int(state["step"]), "eval": results}
    shown = (
        metrics
        if robustness is None
        else {  # NaN (undefined AUC, the clean rows' parameter) as null
            **metrics,
            "robustness": robustness.astype(object).where(robustness.notna(), None).to_dict("records"),
        }
    )
    print(json.dumps(shown, indent=2))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        predictions.to_csv(out / "predictions.csv", index=False)
        if robustness is not None:
            robustness.to_csv(out / "robustness.csv", index=False)
    return 0
