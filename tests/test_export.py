"""save_figure: files by suffix, valid PNG/PDF/SVG (plotly through kaleido + Chromium, matplotlib via savefig)."""

from __future__ import annotations

import os

import numpy as np
import plotly.graph_objects as go
import pytest
from matplotlib.figure import Figure

from workbench.viz import cosine_heatmap, cosine_heatmap_static, save_figure
from workbench.viz.export import DEBIAN_CHROMIUM, kaleido_session, use_system_chromium

MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF-"}


def assert_valid(path, suffix):
    data = path.read_bytes()
    if suffix == ".svg":
        assert b"<svg" in data[:500] and data.rstrip().endswith(b"</svg>")
    else:
        assert data.startswith(MAGIC[suffix])


@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg"])
def test_matplotlib_figures_are_saved_by_suffix(tmp_path, suffix):
    path = save_figure(cosine_heatmap_static(np.eye(2)), tmp_path / "nested" / f"heat{suffix}")
    assert path == tmp_path / "nested" / f"heat{suffix}"
    assert_valid(path, suffix)


def test_plotly_html_embeds_plotly_js(tmp_path):
    path = save_figure(cosine_heatmap(np.eye(2), ["A", "B"]), tmp_path / "heat.html")
    text = path.read_text()
    assert "Plotly.newPlot" in text and '"A"' in text


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_CHROMIUM.exists() and "BROWSER_PATH" not in os.environ, reason="no Chromium for kaleido")
def test_plotly_images_through_kaleido(tmp_path):
    figure = cosine_heatmap(np.eye(2), ["A", "B"])
    assert_valid(save_figure(figure, tmp_path / "alone.png", width=300, height=300, scale=1), ".png")
    with kaleido_session():
        for suffix in (".png", ".pdf", ".svg"):
            assert_valid(save_figure(figure, tmp_path / f"heat{suffix}", width=300, height=300, scale=1), suffix)
        assert_valid(save_figure(go.FigureWidget(figure), tmp_path / "widget.png", scale=1), ".png")


def test_bad_suffix_or_object_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not '.jpg'"):
        save_figure(go.Figure(), tmp_path / "a.jpg")
    with pytest.raises(ValueError, match="matplotlib figures are saved as"):
        save_figure(Figure(), tmp_path / "a.html")
    with pytest.raises(ValueError, match="no suffix"):
        save_figure(go.Figure(), tmp_path / "a")
    with pytest.raises(TypeError, match="cannot save a dict"):
        save_figure({}, tmp_path / "a.png")
    assert not list(tmp_path.iterdir())


def test_system_chromium_is_used_unless_browser_path_is_set(monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", "/opt/custom/chrome")
    assert use_system_chromium() == "/opt/custom/chrome"
    monkeypatch.delenv("BROWSER_PATH")
    expected = str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.exists() else None
    assert use_system_chromium() == expected
    assert os.environ.get("BROWSER_PATH") == expected
