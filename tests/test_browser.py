"""JupyterLab in headless Chromium: run the notebooks with widgets, work their controls, see the plots change.

``03_gradient_alignment``: move the ρ slider of the ρ explorer. ``05_gradcam``: switch the layer,
algorithm, method and domain of the attribution explorer. ``07_inspect_media``: move the frame slider of
the media inspector (its sample clip goes to the git-ignored ``runs/notebooks/media/``). One ``jupyter lab``
serves them all (free
loopback port, random token, its own process group, stopped by its process-group id); Playwright
drives Debian's ``/usr/bin/chromium`` (never a downloaded browser). The notebooks get the tiny
parameters of ``test_notebooks`` and reuse the runs of its ``shared_runs`` fixture. Screenshots go to
the tests' folders and to ``runs/browser_test.png`` and ``runs/browser_test_05.png`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import papermill
import pytest
from test_notebooks import KERNEL_ENV, NOTEBOOKS_DIR, shared_parameters, shared_runs  # noqa: F401  (a fixture)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NOTEBOOK = "03_gradient_alignment"
SCREENSHOT_COPY = Path(__file__).resolve().parents[1] / "runs" / "browser_test.png"
# The explorer's figure is the plotly plot whose title holds "ρ =" (workbench.viz.RhoExplorer; with several
# models the title starts with the one shown); its
# traces are, in order: L_k(θ), L_k(θ + ε_k), cos(g_k, g), cos(g_k^p, g), the loss slice, the marked ρ.
EXPLORER_DATA_JS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const plot = plots.find(p => p.layout && p.layout.title && String(p.layout.title.text || '').includes('ρ ='));
  if (!plot) return null;
  return JSON.stringify({title: plot.layout.title.text, data: plot.data.map(t => ({x: t.x, y: t.y}))});
}"""
# workbench.viz.AttributionExplorer's figure: title "Attribution explorer: …"; traces 0, 1: the face,
# 2: the map, 3, 4: mask outlines. Sums stand for the arrays (plotly.js may hold them as typed arrays).
ATTRIBUTION_DATA_JS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const plot = plots.find(p => p.layout && p.layout.title
                               && String(p.layout.title.text || '').startsWith('Attribution explorer'));
  if (!plot) return null;
  const total = v => v == null ? 0 : typeof v === 'number' ? v
    : ArrayBuffer.isView(v) ? Array.from(v).reduce((a, b) => a + b, 0)
    : Array.isArray(v) ? v.reduce((a, b) => a + total(b), 0) : NaN;
  return JSON.stringify({title: plot.layout.title.text, image: total(plot.data[0].z), map: total(plot.data[2].z),
                         mask: total(plot.data[3].z)});
}"""
# workbench.viz.media_inspector.MediaInspector's figure: title "<file> · frame N · …"; traces 0, 1: the crop,
# 2: the Grad-CAM map, 5: the line marking the frame on the timeline.
INSPECTOR_DATA_JS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const plot = plots.find(p => p.layout && p.layout.title && String(p.layout.title.text || '').includes(' · frame '));
  if (!plot) return null;
  const total = v => v == null ? 0 : typeof v === 'number' ? v
    : ArrayBuffer.isView(v) ? Array.from(v).reduce((a, b) => a + b, 0)
    : Array.isArray(v) ? v.reduce((a, b) => a + total(b), 0) : NaN;
  return JSON.stringify({title: plot.layout.title.text, image: total(plot.data[0].z), map: total(plot.data[2].z),
                         marker: Array.from(plot.data[5].x)});
}"""
NOTEBOOK_PARAMETERS = {
    NOTEBOOK: {"batch_per_domain": 4},
    "05_gradcam": {"per_domain": 2, "method_per_domain": 1},
    "07_inspect_media": {"frames": 6, "crop_size": 64, "gradcam_layer": "layer2"},
}  # layer1: zero maps
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
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, headers={"Authorization": f"token {token}"}
    )
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


class Lab:
    """A JupyterLab server on a folder of prepared notebooks, and a headless Chromium driven by Playwright."""

    def __init__(self, root: Path, port: int, token: str, browser: Any) -> None:
        self.root, self.port, self.token, self.browser = root, port, token, browser

    def run_notebook(self, name: str, ready_js: str) -> Any:
        """Open ``name`` in a new page, Run All Cells, and wait until ``ready_js`` holds and the kernel is idle."""
        page = self.browser.new_page(viewport={"width": 1500, "height": 1000})
        # a workspace of its own, reset: Lab would otherwise reopen the notebooks of earlier pages beside it
        page.goto(f"http://127.0.0.1:{self.port}/lab/workspaces/{name}/tree/{name}.ipynb?reset&token={self.token}")
        # the notebook's kernel (kernelspec "python3": this interpreter) has started and is idle
        page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000, polling=500)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        page.wait_for_function(f"({ready_js})() !== null || ({TRACEBACK_JS})() !== ''", timeout=300_000, polling=1000)
        failure = page.evaluate(TRACEBACK_JS)
        assert not failure, f"{name} failed in JupyterLab:\n{failure}"
        page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000, polling=500)  # every cell has run
        page.wait_for_timeout(2000)  # the widget has applied every update
        return page


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """JupyterLab (loopback port, random token, own process group) with 03 and 05 prepared with tiny parameters."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    runs = request.getfixturevalue("shared_runs")
    sync_api = pytest.importorskip("playwright.sync_api")
    base = tmp_path_factory.mktemp("browser")
    root = base / "lab"
    root.mkdir()
    for name, parameters in NOTEBOOK_PARAMETERS.items():
        papermill.execute_notebook(
            str(NOTEBOOKS_DIR / f"{name}.ipynb"),
            str(root / f"{name}.ipynb"),
            parameters={**shared_parameters(runs), **parameters},
            prepare_only=True,
            progress_bar=False,
        )
    settings = base / "settings"
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))  # no "get Jupyter news?" toast over the page
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        **KERNEL_ENV,
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
    }
    log = base / "jupyter.log"
    with log.open("w") as log_handle:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "lab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                *(["--allow-root"] if os.geteuid() == 0 else []),
            ],
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=root,
            start_new_session=True,
        )
    try:
        wait_for_server(server, port, token, log)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                yield Lab(root, port, token, browser)
            finally:
                browser.close()
    finally:
        stop_server(server, port, token)
    assert server.poll() is not None


def keep_screenshot(page: Any, path: Path, copy: Path) -> None:
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, copy)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(480)
def test_rho_slider_updates_the_explorer_plot_in_jupyterlab(lab: Lab, tmp_path: Path) -> None:
    page = lab.run_notebook(NOTEBOOK, EXPLORER_DATA_JS)
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
        timeout=120_000,
        polling=500,
    )
    page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000, polling=500)
    page.wait_for_timeout(2000)  # let plotly finish drawing before reading data and the screenshot
    after = json.loads(page.evaluate(EXPLORER_DATA_JS))
    keep_screenshot(page, tmp_path / "browser_test.png", SCREENSHOT_COPY)
    page.close()

    assert before["title"] != after["title"]  # it names the current ρ
    changed = [i for i, (b, a) in enumerate(zip(before["data"], after["data"])) if b["y"] != a["y"]]
    assert 1 in changed and 3 in changed and 5 in changed, (before, after)  # L_k(θ + ε_k), cos(g_k^p, g), marked ρ
    assert before["data"][0]["y"] == after["data"][0]["y"]  # L_k(θ) does not depend on ρ
    assert before["data"][5]["x"] != after["data"][5]["x"]  # the marker moved to the new ρ


def choose(page: Any, control: str, option: str, before: dict[str, Any]) -> dict[str, Any]:
    """Pick ``option`` in the explorer's ``control`` dropdown; wait for the kernel to redraw; return the new state."""
    dropdown = page.locator(".widget-dropdown").filter(has=page.locator("label", has_text=re.compile(f"^{control}$")))
    select = dropdown.locator("select")
    select.scroll_into_view_if_needed()
    select.select_option(label=option)
    page.wait_for_function(
        f"JSON.parse(({ATTRIBUTION_DATA_JS})()).title !== {json.dumps(before['title'])}", timeout=120_000, polling=500
    )
    page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000, polling=500)
    page.wait_for_timeout(1500)
    return json.loads(page.evaluate(ATTRIBUTION_DATA_JS))


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(480)
def test_attribution_explorer_redraws_for_layer_algorithm_method_and_domain(lab: Lab, tmp_path: Path) -> None:
    """05_gradcam's explorer: each dropdown makes the kernel recompute the map and the plot show it."""
    page = lab.run_notebook("05_gradcam", ATTRIBUTION_DATA_JS)
    start = json.loads(page.evaluate(ATTRIBUTION_DATA_JS))
    assert "ERM · Grad-CAM at layer1 (8×8) · SYN-SWAP" in start["title"]  # the default layer at 32 px
    layer = choose(page, "layer", "act1 · 16×16", start)
    assert "Grad-CAM at act1 (16×16)" in layer["title"]
    algorithm = choose(page, "algorithm", "RoGA", layer)
    assert "RoGA · Grad-CAM at act1" in algorithm["title"]
    method = choose(page, "method", "Integrated Gradients", algorithm)
    assert "RoGA · Integrated Gradients · SYN-SWAP" in method["title"]
    assert method["map"] > 0 and method["map"] != algorithm["map"]  # |IG| is never zero everywhere
    domain = choose(page, "domain", "SYN-GAN", method)
    assert domain["title"].endswith("SYN-GAN") or "SYN-GAN<br>" in domain["title"]
    assert domain["image"] != method["image"] and domain["mask"] != method["mask"]  # another face, another mask
    keep_screenshot(page, tmp_path / "browser_test_05.png", SCREENSHOT_COPY.with_name("browser_test_05.png"))
    page.close()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(480)
def test_frame_slider_updates_the_media_inspector_in_jupyterlab(lab: Lab, tmp_path: Path) -> None:
    """07_inspect_media: two steps of the frame slider show another frame's crop, map and timeline marker."""
    page = lab.run_notebook("07_inspect_media", INSPECTOR_DATA_JS)
    before = json.loads(page.evaluate(INSPECTOR_DATA_JS))
    handle = page.locator(".widget-slider .noUi-handle").last
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        f"JSON.parse(({INSPECTOR_DATA_JS})()).title !== {json.dumps(before['title'])}", timeout=120_000, polling=500
    )
    page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000, polling=500)
    page.wait_for_timeout(2000)
    after = json.loads(page.evaluate(INSPECTOR_DATA_JS))
    keep_screenshot(page, tmp_path / "browser_test_07.png", SCREENSHOT_COPY.with_name("browser_test_07.png"))
    page.close()

    assert before["title"].startswith("sample_clip.avi · frame 0 · P(fake) = ") and before["marker"] == [0, 0]
    assert after["title"].startswith("sample_clip.avi · frame 7 · P(fake) = ") and after["marker"] == [7, 7]
    assert after["image"] != before["image"] and after["map"] != before["map"]
