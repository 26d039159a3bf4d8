"""``python -m workbench lab`` (``make lab``): JupyterLab on 127.0.0.1 with a URL the user can open.

The token goes to JupyterLab through the ``JUPYTER_TOKEN`` environment variable, never on its command
line, so other users of the machine cannot read it from the process list; the URL with the token is
printed first.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from workbench.cli import add_command

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "lab",
        run,
        help="open JupyterLab on 127.0.0.1 with the notebooks; prints the URL to open",
        description=(
            "Starts JupyterLab on 127.0.0.1 (no browser) in the notebooks folder and prints the URL with "
            "its access token. The token is $JUPYTER_TOKEN if set, else a new random one; it is passed in "
            "the environment, not on the command line. Stop the server with Ctrl-C."
        ),
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("JUPYTER_PORT", "8888")),
        help="port on 127.0.0.1 (default $JUPYTER_PORT or 8888; a busy port is an error, not silently another one)",
    )
    parser.add_argument("--notebook-dir", default=str(NOTEBOOKS), help="folder JupyterLab opens (default: notebooks/)")


def lab_command(port: int, notebook_dir: str) -> list[str]:
    """JupyterLab's command line: loopback only, a fixed port, no browser, and no token on it."""
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--no-browser",
        f"--notebook-dir={notebook_dir}",
    ]
    return command + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])


def run(args: argparse.Namespace) -> int:
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_hex(16)
    print(f"JupyterLab: http://127.0.0.1:{args.port}/lab?token={token}", flush=True)
    command = lab_command(args.port, args.notebook_dir)
    os.execve(command[0], command, {**os.environ, "JUPYTER_TOKEN": token})
    return 0
