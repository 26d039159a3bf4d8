"""Subcommands of ``python -m workbench``; each module exposes ``register(subparsers)``."""
