"""``python -m workbench report RUNS...``: results table over run directories, selected per rule."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from workbench.cli import add_command
from workbench.config import ConfigError
from workbench.metrics import SCORE_METRICS
from workbench.training.cells import RunPredictions
from workbench.training.comparison import baseline_differences
from workbench.training.report import ReportError, report_markdown, report_tables, write_report
from workbench.training.selection import SELECTION_RULES, RecordsError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    parser = add_command(
        subparsers,
        "report",
        run,
        errors=(ReportError, ConfigError, RecordsError, FileNotFoundError),
        help="summarise runs into a results table (markdown + CSV)",
        description=(
            "Select one evaluation per run from its records.jsonl (model selection as post-processing), "
            "then report the mean over seeds (± std with two or more) with a bootstrap CI per "
            "algorithm/backbone and evaluation group, and each group's test-set size; the notes say what "
            "each interval resamples. Prints the markdown table and writes report.md, report.csv (summary) and "
            "runs.csv (one row per run, with the selected step) to --out. Runs without a 'done' marker are "
            "included and flagged."
        ),
    )
    parser.add_argument(
        "runs",
        nargs="+",
        type=Path,
        help="run directories (each with records.jsonl), or sweep folders (their finished runs)",
    )
    parser.add_argument(
        "--rule",
        choices=list(SELECTION_RULES),
        default="source_val",
        help="model-selection rule: source_val (training-domain validation, default), lodo "
        "(leave-one-domain-out), oracle (selects on target test data: diagnostic only), last",
    )
    parser.add_argument(
        "--metric",
        choices=list(SCORE_METRICS),
        default="auc",
        help="metric to report, and to select records on unless --selection-metric says otherwise",
    )
    parser.add_argument(
        "--selection-metric",
        choices=list(SCORE_METRICS),
        default=None,
        help="metric the selection rule compares records by (default: --metric); the notes say which",
    )
    parser.add_argument(
        "--groups", nargs="+", default=None, help="evaluation groups to show (default: source_test and every target/*)"
    )
    parser.add_argument(
        "--with-oracle", action="store_true", help="add oracle-selected columns, labelled [oracle], for comparison"
    )
    parser.add_argument(
        "--tune",
        action="store_true",
        help="hyper-parameter selection (after DomainBed): per algorithm and backbone, report only the config "
        "variant with the best mean selection score over its seeds (the rule's validation metric), and list "
        "the candidates in the notes",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="ALGORITHM",
        help="also tabulate every other algorithm's difference to this one (e.g. erm) per group, held-out mean and "
        "gap, with a paired video-bootstrap CI (the same resampled test videos for both, seeds averaged); "
        "differences whose CI excludes 0 are in bold; written to differences.csv too",
    )
    parser.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: ./reports)")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    parser.add_argument("--ci", type=float, default=0.95, help="confidence level (default: 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap random seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    """Build, print and write the report (the library's warnings once each, after the computation)."""
    predictions = RunPredictions()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs, summary = report_tables(
            args.runs,
            rule=args.rule,
            metric=args.metric,
            groups=args.groups,
            with_oracle=args.with_oracle,
            n_boot=args.n_boot,
            ci=args.ci,
            seed=args.seed,
            tune=args.tune,
            selection_metric=args.selection_metric,
            predictions=predictions,
        )
        differences = None
        if args.baseline is not None:
            compared = runs[runs["chosen"]] if args.tune else runs
            differences = baseline_differences(
                compared,
                args.baseline,
                list(dict.fromkeys(summary["group"])),
                args.metric,
                n_boot=args.n_boot,
                ci=args.ci,
                seed=args.seed,
                predictions=predictions,
            )
        text = report_markdown(summary, differences)
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"warning: {message}", file=sys.stderr)
    print(text, end="")
    paths = write_report(summary, args.out, runs=runs, differences=differences)
    print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0
