"""One look for every figure: a colour-blind-safe style per algorithm, print sizes, and the attribution colour map.

**Algorithms.** ERM is a neutral grey and RoGA the accent (Okabe–Ito vermillion). Every other
registered algorithm (:data:`workbench.algorithms.ALGORITHMS`) takes a colour of the Okabe–Ito
palette (:data:`PALETTE`) by its place in the sorted list of registered names, so an algorithm keeps
its colour whatever else a figure shows; labels that are not algorithms follow, sorted. A label such
as ``"roga (algorithm.hparams.rho=0.1)"`` or ``"RoGA"`` takes the colour of the algorithm it starts
with. With more algorithms than colours, colours repeat: labels that share a colour within a figure
are told apart by line dash, marker and bar hatch (:data:`VARIANTS`), in that same order. The
styles are given in plotly's and matplotlib's terms alike, so interactive and print figures agree.

**Sizes.** Print figures are drawn at column width (:data:`COLUMN_WIDTH_IN`, 3.4 in; two columns:
:data:`PAGE_WIDTH_IN`) with 8 pt text; plotly figures use :data:`PLOTLY_FONT_SIZE` and keep their
legend outside the plotting area.

**Attribution maps** use a perceptual colour map (matplotlib's ``inferno``) whose opacity rises from
zero with the value: where a map is zero the face shows untinted (:func:`attribution_colourscale`,
:func:`attribution_colourmap`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib
import numpy as np
import plotly.graph_objects as go
from matplotlib.colors import ListedColormap

from workbench.algorithms import ALGORITHMS  # the registry is the one list of algorithms

NEUTRAL = "#7A7A7A"  # ERM
ACCENT = "#D55E00"  # RoGA: Okabe–Ito vermillion
FIXED_COLOURS: dict[str, str] = {"erm": NEUTRAL, "roga": ACCENT}
# Okabe & Ito (2008), "Color Universal Design", without vermillion (the accent) and black (reference lines).
PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442")
# Paul Tol's "muted" scheme: colour-blind-safe colours for categories that are not algorithms (domains).
CATEGORY_PALETTE: tuple[str, ...] = (
    "#332288",
    "#88CCEE",
    "#44AA99",
    "#117733",
    "#999933",
    "#DDCC77",
    "#CC6677",
    "#882255",
    "#AA4499",
)
REFERENCE = "#000000"  # chance levels and other reference lines/markers (drawn dotted)
OUTLINE = "#00E5FF"  # manipulation-mask outlines over faces and attribution maps


@dataclass(frozen=True)
class Variant:
    """How labels that share a colour are told apart: plotly and matplotlib names of one look."""

    dash: str
    marker: str
    hatch: str
    dash_pattern: tuple[float, ...]  # matplotlib/seaborn on-off lengths in points; () is a solid line
    mpl_marker: str
    mpl_hatch: str

    @property
    def mpl_dash(self) -> str | tuple:
        """The matplotlib ``linestyle``."""
        return (0, self.dash_pattern) if self.dash_pattern else "-"

    @property
    def seaborn_dash(self) -> tuple[float, ...] | str:
        """The entry of seaborn's ``dashes`` mapping."""
        return self.dash_pattern or ""


VARIANTS: tuple[Variant, ...] = (
    Variant("solid", "circle", "", (), "o", ""),
    Variant("dash", "square", "/", (4, 1.5), "s", "//"),
    Variant("dot", "diamond", "x", (1, 1.2), "D", "xx"),
    Variant("dashdot", "triangle-up", "\\", (4, 1.5, 1, 1.5), "^", "\\\\"),
    Variant("longdash", "cross", "+", (8, 3), "P", "++"),
    Variant("longdashdot", "star", ".", (8, 3, 2, 3), "*", ".."),
)


@dataclass(frozen=True)
class Style:
    """A label's colour and variant (plotly: ``dash``, ``marker``, ``hatch``; matplotlib: ``mpl_*``; seaborn:
    ``seaborn_dash``)."""

    colour: str
    variant: Variant = VARIANTS[0]

    @property
    def dash(self) -> str:
        return self.variant.dash

    @property
    def marker(self) -> str:
        return self.variant.marker

    @property
    def hatch(self) -> str:
        return self.variant.hatch

    @property
    def mpl_dash(self) -> str | tuple:
        return self.variant.mpl_dash

    @property
    def seaborn_dash(self) -> tuple[float, ...] | str:
        return self.variant.seaborn_dash

    @property
    def mpl_marker(self) -> str:
        return self.variant.mpl_marker

    @property
    def mpl_hatch(self) -> str:
        return self.variant.mpl_hatch


def registered_algorithms() -> dict[str, str]:
    """``{name: display name}`` of every registered algorithm (the display name is its class name)."""
    return {name: cls.__name__ for name, cls in ALGORITHMS.items()}


_LEADING_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def algorithm_of(label: str) -> str | None:
    """The registered algorithm a label names or starts with (``"RoGA (rho=0.1)"`` → ``"roga"``), else None."""
    match = _LEADING_NAME.match(str(label))
    name = match.group(0).lower() if match else None
    return name if name in FIXED_COLOURS or name in registered_algorithms() else None


def display_name(label: str) -> str:
    """``label`` with its leading algorithm name spelled as the algorithm's class (``"erm"`` → ``"ERM"``)."""
    label = str(label)
    name = algorithm_of(label)
    if name is None:
        return label
    match = _LEADING_NAME.match(label)
    return registered_algorithms().get(name, name) + label[match.end() :]


def styles_for(labels: Iterable[str]) -> dict[str, Style]:
    """A distinct :class:`Style` per label (in the labels' order); see the module docstring for the rule."""
    labels = [str(label) for label in dict.fromkeys(labels)]
    ranked = sorted(name for name in registered_algorithms() if name not in FIXED_COLOURS)
    keys = {label: algorithm_of(label) or label.lower() for label in labels}
    others = sorted({key for key in keys.values() if key not in FIXED_COLOURS and key not in ranked})
    slots = {name: i for i, name in enumerate([*ranked, *others])}

    def colour(key: str) -> str:
        return FIXED_COLOURS.get(key) or PALETTE[slots[key] % len(PALETTE)]

    styles: dict[str, Style] = {}
    by_colour: dict[str, list[str]] = {}
    for label in sorted(labels, key=lambda lb: (slots.get(keys[lb], -1), lb)):
        by_colour.setdefault(colour(keys[label]), []).append(label)
    for shade, members in by_colour.items():
        for index, label in enumerate(members):
            styles[label] = Style(shade, VARIANTS[index % len(VARIANTS)])
    return {label: styles[label] for label in labels}


def colours_for(labels: Iterable[str]) -> dict[str, str]:
    """The colour of each label (:func:`styles_for`), in the labels' order."""
    return {label: style.colour for label, style in styles_for(labels).items()}


# ------------------------------------------------------------------------------------- sizes
COLUMN_WIDTH_IN = 3.4
PAGE_WIDTH_IN = 7.0
PRINT_FONT_PT = 8
PLOTLY_FONT_SIZE = 14
PRINT_RC: dict[str, object] = {
    "font.size": PRINT_FONT_PT,
    "axes.titlesize": PRINT_FONT_PT + 1,
    "axes.labelsize": PRINT_FONT_PT,
    "xtick.labelsize": PRINT_FONT_PT - 1,
    "ytick.labelsize": PRINT_FONT_PT - 1,
    "legend.fontsize": PRINT_FONT_PT - 1,
    "legend.title_fontsize": PRINT_FONT_PT,
    "figure.titlesize": PRINT_FONT_PT + 2,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "hatch.linewidth": 0.6,
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
}


@contextmanager
def print_style() -> Iterator[None]:
    """Matplotlib settings of print figures (8 pt text, thin frames) while a figure is built."""
    with matplotlib.rc_context(PRINT_RC):
        yield


def legend_outside(figure: go.Figure, title: str | None = None) -> go.Figure:
    """Put a plotly figure's legend in rows between its title and its plotting area (never over data).

    The top margin grows with the rows the legend needs at the figure's width (set ``width`` and
    ``height`` first; builders of this package do).
    """
    entries = {trace.name for trace in figure.data if getattr(trace, "showlegend", None) is not False and trace.name}
    width = figure.layout.width or 700
    height = figure.layout.height or 450
    entry = max(120, 8 * max((len(name) for name in entries), default=0) + 50)  # px: symbol and text
    rows = -(-len(entries) // max(1, int((width - 40) // entry))) if entries else 0
    top = 95 + 26 * rows
    figure.update_layout(
        title=dict(yref="container", y=1 - 12 / height, yanchor="top"),
        legend=dict(
            orientation="h",
            yref="container",
            y=1 - 50 / height,
            yanchor="top",
            xanchor="left",
            x=0,
            title_text=title,
            entrywidth=entry,
            entrywidthmode="pixels",
            traceorder="normal",
        ),
        margin=dict(t=top),
    )
    return figure


def tick_text(text: str, width: int = 12) -> str:
    """``text`` broken at spaces into lines of about ``width`` characters (``<br>``), for horizontal tick labels."""
    lines: list[str] = []
    for word in str(text).split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def paper_layout(figure: go.Figure, **layout: object) -> go.Figure:
    """White background, :data:`PLOTLY_FONT_SIZE` text and light grids; ``layout`` is applied last."""
    figure.update_layout(
        template="simple_white", font=dict(size=PLOTLY_FONT_SIZE), title_font_size=PLOTLY_FONT_SIZE + 2
    )
    figure.update_xaxes(showgrid=True, gridcolor="#E5E5E5")
    figure.update_yaxes(showgrid=True, gridcolor="#E5E5E5")
    figure.update_annotations(font_size=PLOTLY_FONT_SIZE)
    figure.update_layout(**layout)
    return figure


# ------------------------------------------------------------------------- attribution maps
ATTRIBUTION_CMAP = "inferno"


def _ramp(opacity: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity={opacity} must lie in [0, 1]")
    values = np.linspace(0.0, 1.0, steps)
    # a perceptual map, lifted off its darkest end so a weak response is not black; alpha rises with the value
    colours = matplotlib.colormaps[ATTRIBUTION_CMAP](0.15 + 0.85 * values)
    colours[:, 3] = opacity * np.clip(values / 0.6, 0.0, 1.0) ** 1.5
    return values, colours


def attribution_colourscale(opacity: float = 0.7, steps: int = 11) -> list[list]:
    """Plotly colour scale of attribution maps: transparent at 0, opaque up to ``opacity`` from 0.6 of the maximum up.

    Opacity rises as (value / 0.6)^1.5, so the weak, diffuse part of a map barely tints the face.
    """
    values, colours = _ramp(opacity, steps)
    return [
        [float(v), f"rgba({r * 255:.0f}, {g * 255:.0f}, {b * 255:.0f}, {a:.3f})"]
        for v, (r, g, b, a) in zip(values, colours)
    ]


def attribution_colourmap(opacity: float = 0.7, steps: int = 256) -> ListedColormap:
    """The matplotlib twin of :func:`attribution_colourscale`."""
    return ListedColormap(_ramp(opacity, steps)[1], name=f"attribution_{opacity:g}")
