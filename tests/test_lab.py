"""``python -m workbench lab``: a URL the user can open, and the token kept off the process list."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow
def test_lab_prints_an_openable_url_and_keeps_the_token_out_of_the_process_list(tmp_path):
    port = free_port()
    token = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    env = {
        **os.environ,
        "JUPYTER_TOKEN": token,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench", "lab", "--port", str(port), "--notebook-dir", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        url = process.stdout.readline().strip().removeprefix("JupyterLab: ")
        assert url == f"http://127.0.0.1:{port}/lab?token={token}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if status(url) == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
            time.sleep(0.5)
        assert status(f"http://127.0.0.1:{port}/api/contents?token=wrong") == 403
        cmdline = open(f"/proc/{process.pid}/cmdline", "rb").read().decode()
        assert "jupyter" in cmdline and token not in cmdline
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
