"""``python -m workbench adopt WEIGHTS --out RUN_DIR``: a detector trained elsewhere as a finished run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from workbench.cli import USER_ERRORS, add_command, add_overrides_argument
from workbench.config import load_config
from workbench.training.adopt import adopt_run, input_convention
from workbench.training.run_dir import RunDir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``adopt`` subcommand."""
    parser = add_command(
        subparsers,
        "adopt",
        run,
        errors=(*USER_ERRORS, ValueError),  # ValueError: weights that do not fit model.name (keys named)
        help="make a finished run directory of a detector trained elsewhere (e.g. a DeepfakeBench checkpoint)",
        description=(
            "Load WEIGHTS into the config's model.name (e.g. deepfakebench_xception or "
            "deepfakebench_efficientnet_b4 for DeepfakeBench's detector checkpoints), score it on every evaluation "
            "group of the config's data with the model's own input normalisation, and write a finished run "
            "directory: config.yaml (train.steps 0, train.adopted = the file and its sha256), "
            "checkpoints/best_source_val.pt, one record, predictions.csv and the done marker. `eval`, `analyse`, "
            "`report` and notebooks 03-05 then read it like a trained run; `train` refuses it. "
            "See docs/reproduce.md."
        ),
    )
    parser.add_argument("weights", type=Path, help="the detector's weights file (.pth, .safetensors, .bin)")
    parser.add_argument("--config", help="YAML config of the data it is evaluated on (default: the built-in defaults)")
    add_overrides_argument(parser, "overrides such as model.name=deepfakebench_xception data.image_size=256")
    parser.add_argument(
        "--algorithm",
        default="erm",
        help="algorithm name the run is filed under (notebooks find <runs_dir>/<algorithm>-seed<seed>); default erm",
    )
    parser.add_argument("--out", type=Path, required=True, help="the new run directory (must not exist or be empty)")


def run(args: argparse.Namespace) -> int:
    """Adopt the weights and print the run's source-val and held-out AUCs."""
    config = load_config(args.config, [*args.overrides, f"algorithm.name={args.algorithm}"])
    run_dir = adopt_run(args.weights, config, args.out)
    record = RunDir(run_dir).load_records()[0]
    print(
        json.dumps(
            {
                "run_dir": str(run_dir),
                "input": input_convention(run_dir),
                "auc": {group: metrics.get("auc") for group, metrics in record["eval"].items()},
            },
            indent=2,
        )
    )
    return 0
