"""One colour per algorithm, shared by every figure so ERM/SAM/SAGM/RoGA read the same everywhere."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import plotly.colors

ALGORITHM_COLOURS: dict[str, str] = {
    "erm": "#7f7f7f",
    "sam": "#1f77b4",
    "sagm": "#2ca02c",
    "roga": "#d62728",
}

_FALLBACK = plotly.colors.qualitative.Plotly


def colours_for(labels: Iterable[str]) -> dict[str, str]:
    """Colour per label: the fixed algorithm colour when the label names one, else the next free palette colour."""
    labels = list(dict.fromkeys(labels))
    used = {ALGORITHM_COLOURS[label.lower()] for label in labels if label.lower() in ALGORITHM_COLOURS}
    spare = itertools.cycle([colour for colour in _FALLBACK if colour not in used] or _FALLBACK)
    return {label: ALGORITHM_COLOURS.get(label.lower()) or next(spare) for label in labels}
