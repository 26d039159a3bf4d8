"""JupyterLab in headless Chromium: run 03_gradient_alignment, move the ρ slider, see the plot change.

Starts ``jupyter lab`` on a free loopback port with a random token in its own process group, drives
Debian's ``/usr/bin/chromium`` through Playwright (never a downloaded browser), and stops the server
by its process-group id. The notebook gets the tiny parameters of ``test_notebooks`` and reuses the
runs of its ``shared_runs`` fixture. The screenshot goes to the test's folder and to
``runs/browser_test.png`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import papermill
import pytest

from test_notebooks import KERNEL_ENV, NOTEBOOKS_DIR, shared_parameters, shared_runs  # noqa: F401  (a fixture)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
NOTEBOOK = "03_gradient_alignment"
SCREENSHOT_COPY = Path(__file__).resolve().parents[1] / "runs" / "browser_test.png"
# The explorer's figure is the plotly plot whose title starts with "ρ =" (workbench.viz.RhoExplorer); its
# traces are, in order: L_k(θ), L_k(θ + ε_k), cos(g_k, g), cos(g_k^p, g), the loss slice, the marked ρ.
EXPLORER_DATA_JS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const plot = plots.find(p => p.layout && p.layout.title && String(p.layout.title.text || '').startsWith('ρ ='));
  if (!plot) return null;
  return JSON.stringify({title: plot.layout.title.text, data: plot.data.map(t => ({x: t.x, y: t.y}))});
}"""
# A traceback in any output: the notebook failed, so there is nothing to wait for.
TRACEBACK_JS = """() => [...document.querySelectorAll('.jp-OutputArea-output')]
  .map(e => e.innerText).filter(t => t.includes('Traceback (most recent call last)')).join('\\n')"""


KERNEL_IDLE_JS = """() => document.querySelector('.jp-NotebookPanel .jp-Notebook .jp-Cell') !== null
  && document.body.innerText.includes('Python 3 (ipykernel) | Idle')
  && [...document.querySelectorAll('.jp-InputPrompt')].every(p => !p.innerText.includes('*'))"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(port: int, token: str, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
    return json.loads(body) if body else None


def wait_for_server(server: subprocess.Popen, port: int, token: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            api(port, token, "/api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer /api/status within {timeout} s:\n{log.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen, port: int, token: str) -> None:
    """Shut the kernels down through the API, then end the server's process group (SIGTERM, then SIGKILL)."""
    try:
        for kernel in api(port, token, "/api/kernels"):
            api(port, token, f"/api/kernels/{kernel['id']}", method="DELETE")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        pass  # the server is already gone; its process group is ended below either way
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(480)
def test_rho_slider_updates_the_explorer_plot_in_jupyterlab(tmp_path: Path, shared_runs: dict[str, Any]) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")

    root = tmp_path / "lab"
    root.mkdir()
    papermill.execute_notebook(str(NOTEBOOKS_DIR / f"{NOTEBOOK}.ipynb"), str(root / f"{NOTEBOOK}.ipynb"),
                               parameters={**shared_parameters(shared_runs), "batch_per_domain": 4},
                               prepare_only=True, progress_bar=False)
    settings = tmp_path / "settings"
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))  # no "get Jupyter news?" toast over the page
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, **KERNEL_ENV, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_DATA_DIR": str(tmp_path / "data"), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    log = tmp_path / "jupyter.log"
    with log.open("w") as log_handle:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             *(["--allow-root"] if os.geteuid() == 0 else [])],
            stdout=log_handle, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True,
        )
    try:
        wait_for_server(server, port, token, log)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK}.ipynb?token={token}")
                # the notebook's kernel (kernelspec "python3": this interpreter) has started and is idle
                page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000, polling=500)
                page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
                page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

                page.wait_for_function(f"({EXPLORER_DATA_JS})() !== null || ({TRACEBACK_JS})() !== ''",
                                       timeout=300_000, polling=1000)
                failure = page.evaluate(TRACEBACK_JS)
                assert not failure, f"{NOTEBOOK} failed in JupyterLab:\n{failure}"
                page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000, polling=500)  # every cell has run
                page.wait_for_timeout(2000)  # the widget has applied every update
                before = json.loads(page.evaluate(EXPLORER_DATA_JS))
                plot = page.locator(".js-plotly-plot", has_text="ρ =").last
                plot.scroll_into_view_if_needed()

                handle = page.locator(".widget-slider .noUi-handle").last
                handle.scroll_into_view_if_needed()
                handle.focus()
                for _ in range(5):
                    page.keyboard.press("ArrowRight")
                page.wait_for_function(  # the title names ρ: it changes once the kernel has recomputed
                    f"JSON.parse(({EXPLORER_DATA_JS})()).title !== {json.dumps(before['title'])}",
                    timeout=120_000, polling=500,
                )
                page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000, polling=500)
                page.wait_for_timeout(2000)  # let plotly finish drawing before reading data and the screenshot
                after = json.loads(page.evaluate(EXPLORER_DATA_JS))
                screenshot = tmp_path / "browser_test.png"
                page.screenshot(path=str(screenshot))
            finally:
                browser.close()
    finally:
        stop_server(server, port, token)
    assert server.poll() is not None

    assert before["title"] != after["title"]  # it names the current ρ
    changed = [i for i, (b, a) in enumerate(zip(before["data"], after["data"])) if b["y"] != a["y"]]
    assert 1 in changed and 3 in changed and 5 in changed, (before, after)  # L_k(θ + ε_k), cos(g_k^p, g), marked ρ
    assert before["data"][0]["y"] == after["data"][0]["y"]  # L_k(θ) does not depend on ρ
    assert before["data"][5]["x"] != after["data"][5]["x"]  # the marker moved to the new ρ
    SCREENSHOT_COPY.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, SCREENSHOT_COPY)
    assert screenshot.stat().st_size > 10_000
