"""Subcommands of ``python -m workbench``; each module exposes ``register(subparsers)``."""

from __future__ import annotations

import argparse


def add_overrides_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--set KEY=VALUE ...`` into ``args.overrides``; repeated ``--set`` flags all count."""
    parser.add_argument(
        "--set",
        dest="overrides",
        nargs="*",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help=f"{help_text} (--set may be repeated)",
    )
