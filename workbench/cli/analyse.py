"""``python -m workbench analyse RUNS...``: alignment, sharpness and Grad-CAM localisation of trained runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.analysis.run_summary import AnalysisSettings, analyse_runs, summary_markdown
from workbench.cli import add_command
from workbench.data.manifest import ManifestError
from workbench.training.runs import CHECKPOINT_SELECTIONS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``analyse`` subcommand."""
    defaults = AnalysisSettings()
    parser = add_command(
        subparsers,
        "analyse",
        run,
        errors=(ValueError, FileNotFoundError, ManifestError),
        help="why runs generalise: gradient alignment, sharpness and Grad-CAM localisation per run",
        description=(
            "Load each run's selected checkpoint (best_source_val.pt, or another rule's with --selection) and "
            "measure, on images drawn from the "
            "run's own manifest with a fixed seed: cos(g_k, g) and cos(g_k^p, g) on one batch per source "
            "domain, the gradient conflict rate, each source domain's ε-sharpness, and Grad-CAM "
            "localisation of the fake logit against the manipulation masks (energy in mask, pointing game, "
            "mask area = chance level) for every source and held-out domain with masks. Prints a per-run "
            "table and mean ± std per algorithm; writes analysis.csv (every per-domain value) and "
            "analysis.md to --out. See docs/analysis.md."
        ),
    )
    parser.add_argument(
        "runs",
        nargs="+",
        type=Path,
        help="run directories (each with config.yaml and checkpoints/), or sweep folders (their finished runs)",
    )
    parser.add_argument("--split", default=defaults.split, help="split of the alignment/sharpness batches")
    parser.add_argument(
        "--per-domain",
        type=int,
        default=defaults.per_domain,
        help="images per source-domain batch (half fakes, half reals)",
    )
    parser.add_argument("--rho", type=float, default=defaults.rho, help="ascent radius for alignment and sharpness")
    parser.add_argument("--alpha", type=float, default=defaults.alpha, help="RoGA's alignment step in the ascent")
    parser.add_argument(
        "--localisation-split",
        default=defaults.localisation_split,
        help="split of the fakes whose Grad-CAMs are scored against masks",
    )
    parser.add_argument(
        "--localisation-per-domain",
        type=int,
        default=defaults.localisation_per_domain,
        help="fakes with masks per domain for Grad-CAM",
    )
    parser.add_argument(
        "--mask-threshold", type=float, default=defaults.mask_threshold, help="masks are binarised at this value"
    )
    parser.add_argument(
        "--gradcam-layer",
        default=defaults.gradcam_layer,
        help="module to attribute Grad-CAM to (default: the deepest feature stage whose map is at "
        "least 8×8 at the run's image size)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the image draws")
    parser.add_argument("--device", default=defaults.device, help="torch device (default: cpu)")
    parser.add_argument(
        "--selection",
        choices=CHECKPOINT_SELECTIONS,
        default=defaults.selection,
        help="whose model is analysed: a selection rule's kept best_<rule>.pt (lodo and oracle need "
        "train.checkpoint_rules) or 'last'; default source_val",
    )
    parser.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: ./reports)")


def run(args: argparse.Namespace) -> int:
    """Analyse, print and write."""
    settings = AnalysisSettings(
        split=args.split,
        per_domain=args.per_domain,
        rho=args.rho,
        alpha=args.alpha,
        localisation_split=args.localisation_split,
        localisation_per_domain=args.localisation_per_domain,
        mask_threshold=args.mask_threshold,
        gradcam_layer=args.gradcam_layer,
        seed=args.seed,
        device=args.device,
        selection=args.selection,
    )
    table = analyse_runs(args.runs, settings)
    text = summary_markdown(table)
    print(text, end="")
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "analysis.csv", index=False)
    (args.out / "analysis.md").write_text(text)
    print(f"wrote {args.out / 'analysis.csv'} and {args.out / 'analysis.md'}", file=sys.stderr)
    return 0
