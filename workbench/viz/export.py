"""Write a figure to disk by file suffix: plotly through kaleido, matplotlib through ``savefig``.

Kaleido (v1) drives a Chromium to render plotly figures. It looks for a browser through
choreographer, which honours the ``BROWSER_PATH`` environment variable before searching ``PATH``;
when Debian's ``/usr/bin/chromium`` exists (``.ci/run`` installs it) and ``BROWSER_PATH`` is unset,
it is pointed there, so export works without kaleido downloading a Chrome of its own.

Each plotly export starts a fresh Chromium (seconds); wrap many exports in :func:`kaleido_session`
to keep one browser running for all of them.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import kaleido
from matplotlib.figure import Figure
from plotly.basedatatypes import BaseFigure

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
PLOTLY_SUFFIXES = (".png", ".pdf", ".svg", ".html")
MATPLOTLIB_SUFFIXES = (".png", ".pdf", ".svg")


def use_system_chromium() -> str | None:
    """Point kaleido at Debian's Chromium unless ``BROWSER_PATH`` is set; return the browser path in use."""
    if "BROWSER_PATH" not in os.environ and DEBIAN_CHROMIUM.exists():
        os.environ["BROWSER_PATH"] = str(DEBIAN_CHROMIUM)
    return os.environ.get("BROWSER_PATH")


@contextmanager
def kaleido_session() -> Iterator[None]:
    """Keep one kaleido Chromium running for every plotly export inside the block."""
    use_system_chromium()
    kaleido.start_sync_server(silence_warnings=True)
    try:
        yield
    finally:
        kaleido.stop_sync_server(silence_warnings=True)


def save_figure(
    figure: BaseFigure | Figure,
    path: str | Path,
    width: int | None = None,
    height: int | None = None,
    scale: float = 2.0,
) -> Path:
    """Save ``figure`` to ``path`` (.png/.pdf/.svg, or .html for plotly) and return the path.

    ``width``/``height`` (pixels) and ``scale`` apply to plotly images; matplotlib figures keep
    their own size and are written at ``100 * scale`` dpi. Parent folders are created.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if isinstance(figure, BaseFigure):  # go.Figure and go.FigureWidget
        if suffix not in PLOTLY_SUFFIXES:
            raise ValueError(
                f"{path}: plotly figures are saved as {', '.join(PLOTLY_SUFFIXES)}, not {suffix or 'no suffix'!r}"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".html":
            figure.write_html(path, include_plotlyjs=True)
        else:
            use_system_chromium()
            with warnings.catch_warnings():  # plotly's notice that a running kaleido_session ignores its options
                warnings.filterwarnings("ignore", message="The kopts argument is ignored")
                figure.write_image(path, format=suffix[1:], width=width, height=height, scale=scale)
        return path
    if isinstance(figure, Figure):
        if suffix not in MATPLOTLIB_SUFFIXES:
            raise ValueError(
                f"{path}: matplotlib figures are saved as {', '.join(MATPLOTLIB_SUFFIXES)}, "
                f"not {suffix or 'no suffix'!r}"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format=suffix[1:], dpi=100 * scale, bbox_inches="tight")
        return path
    raise TypeError(f"cannot save a {type(figure).__name__}: expected a plotly or matplotlib figure")


def show_static(figure: Figure, dpi: int = 120) -> None:
    """Display a matplotlib figure in the notebook as a PNG.

    The ``*_static`` builders of :mod:`workbench.viz` make figures without pyplot, which Jupyter's
    inline backend does not register for display unless pyplot was set up first.
    """
    from IPython.display import Image as PngImage
    from IPython.display import display

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    display(PngImage(data=buffer.getvalue(), format="png"))
