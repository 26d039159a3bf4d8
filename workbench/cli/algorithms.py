"""``python -m workbench algorithms``: the registered training algorithms, their papers and hyper-parameters."""

from __future__ import annotations

import argparse
import inspect

from tabulate import tabulate

from workbench.algorithms import ALGORITHMS, COMMON_HPARAMS, algorithm_class
from workbench.cli import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "algorithms",
        run,
        errors=(KeyError,),  # an unknown name, with the registered ones listed
        help="list the training algorithms (or describe one) with their hyper-parameters and defaults",
        description=(
            "Without a name: one line per registered algorithm (name, family, paper). With names: each "
            "one's update as implemented and every hyper-parameter it accepts, its default and its "
            "allowed values. Set them with --set algorithm.hparams.KEY=VALUE."
        ),
    )
    parser.add_argument("names", nargs="*", help="algorithms to describe (any case)")


def paper(name: str) -> str:
    """The first paragraph of the algorithm module's docstring: the method and its paper."""
    return " ".join((inspect.getmodule(algorithm_class(name)).__doc__ or "").strip().split("\n\n")[0].split())


def describe(name: str) -> str:
    """The module docstring and a table of every hyper-parameter (shared ones last) of one algorithm."""
    cls = algorithm_class(name)
    rows = [(key, param.default, param.describe(), param.doc) for key, param in cls.HPARAMS.items()]
    rows += [(key, param.default, param.describe(), f"(shared) {param.doc}") for key, param in COMMON_HPARAMS.items()]
    table = tabulate(rows, headers=["hyper-parameter", "default", "values", "meaning"], tablefmt="github")
    return f"{cls.name} ({cls.family})\n\n{inspect.getmodule(cls).__doc__.strip()}\n\n{table}\n"


def run(args: argparse.Namespace) -> int:
    if not args.names:
        rows = [(name, cls.family, paper(name)) for name, cls in sorted(ALGORITHMS.items())]
        print(tabulate(rows, headers=["name", "family", "method"], tablefmt="github"))
        return 0
    print("\n".join(describe(name) for name in args.names))
    return 0
