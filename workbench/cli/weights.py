"""``python -m workbench weights``: timm's pretrained weights for offline machines (fetch ahead, or import a file)."""

from __future__ import annotations

import argparse
import sys

from workbench.cli import add_command
from workbench.models.weights import PretrainedWeightsError, fetch, import_file


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "weights",
        help="fill timm's weight cache ahead of time (model.pretrained: true on offline machines)",
        description=(
            "model.pretrained: true loads timm's own ImageNet weights from its cache (the Hugging Face "
            "cache $HF_HOME/hub, or torch's $TORCH_HOME/hub for weights kept at a URL), downloading them "
            "unless HF_HUB_OFFLINE is set. `fetch` downloads them now, on a machine with internet (e.g. "
            "a login node sharing the cache with offline compute nodes); `import` files a checkpoint you "
            "already have where the offline loading looks."
        ),
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    fetching = add_command(
        actions, "fetch", run_fetch, help="download timm's pretrained weights of each model into the cache"
    )
    fetching.add_argument("names", nargs="+", help="timm model names, e.g. efficientnet_b4 legacy_xception")
    importing = add_command(
        actions,
        "import",
        run_import,
        errors=(FileNotFoundError, PretrainedWeightsError, RuntimeError),
        help="put a downloaded checkpoint where timm's offline loading finds it",
    )
    importing.add_argument("name", help="timm model name")
    importing.add_argument(
        "file",
        help="the checkpoint timm would download (model.safetensors, pytorch_model.bin, "
        "or the file at the model's URL)",
    )


def run_fetch(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.names:
        try:
            print(f"{name}: {fetch(name)}")
        except (OSError, RuntimeError, ValueError) as exc:  # unknown model, no network, HF_HUB_OFFLINE set
            print(
                f"error: {name}: cannot fetch its weights ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                "this needs internet and HF_HUB_OFFLINE unset",
                file=sys.stderr,
            )
            failed = 1
    return failed


def run_import(args: argparse.Namespace) -> int:
    print(f"{args.name}: {import_file(args.name, args.file)}")
    return 0
