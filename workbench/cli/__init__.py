"""Subcommands of ``python -m workbench``; each module exposes ``register(subparsers)``.

A command is added with :func:`add_command`, which records the exceptions that mean "this input cannot be
used" for it; :func:`run_command` runs it and turns those into one ``error: <message>`` line (exit status
1) and Ctrl-C into the command's resume hint (exit status 130). Other exceptions keep their traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from workbench.config import ConfigError
from workbench.data.manifest import ManifestError
from workbench.models.weights import PretrainedWeightsError
from workbench.training.checkpoint import CheckpointError
from workbench.training.evaluation import NonFiniteOutputError
from workbench.training.records import RecordsError
from workbench.training.trainer import NonFiniteLossError

# The library's errors about its inputs (and a diverged run), for the commands that train or score runs.
USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    ManifestError,
    RecordsError,
    CheckpointError,
    FileExistsError,
    FileNotFoundError,
    NonFiniteLossError,
    NonFiniteOutputError,
    PretrainedWeightsError,
)
RESUME_HINT = "run the same command again to resume from the last checkpoint (checkpoints/last.pt)"

Command = Callable[[argparse.Namespace], int | None]


class CommandError(Exception):
    """An unusable command-line input, found by the command itself (e.g. a flag out of range)."""


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    run: Command,
    *,
    errors: tuple[type[Exception], ...] = (),
    interrupted: Callable[[argparse.Namespace], str] | None = None,
    **parser_options,
) -> argparse.ArgumentParser:
    """A subcommand that runs ``run``; ``errors`` are reported as ``error: <message>``, and ``interrupted``
    (given the arguments) says on Ctrl-C how to continue."""
    parser = subparsers.add_parser(name, **parser_options)
    parser.set_defaults(func=run, errors=errors, interrupted=interrupted)
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; its input errors become one line on stderr and exit status 1."""
    try:
        return int(args.func(args) or 0)
    except (CommandError, *args.errors) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # KeyError's str() adds quotes
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.interrupted is None:
            raise
        print(f"interrupted: {args.interrupted(args)}", file=sys.stderr)
        return 130


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
