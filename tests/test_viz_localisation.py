"""Localisation figures (workbench.viz.localisation): per-domain bars, depth lines and method bars, each with the
chance level a uniform map scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.viz import localisation_depth_figure, localisation_figure, method_comparison_figure
from workbench.viz.style import ACCENT

LOCALISATION = pd.DataFrame(
    {
        "algorithm": ["erm", "erm", "roga", "roga", "roga"],
        "domain": ["A", "B", "A", "B", "C"],
        "energy_in_mask": [0.2, 0.4, 0.6, 0.8, np.nan],  # C: no mask, dropped
        "pointing_game": [0.0, 1.0, 1.0, 1.0, np.nan],
        "mask_fraction": [0.1, 0.3, 0.1, 0.3, 0.0],
    }
)


def test_localisation_figure_bars_with_the_chance_level():
    figure = localisation_figure(LOCALISATION, held_out=["B"])
    assert [t.name for t in figure.data] == ["ERM", "RoGA", "chance (mask area)"]
    roga = figure.data[1]
    assert list(roga.x) == ["A", "B (held-out)"] and list(roga.y) == [0.6, 0.8]
    assert roga.marker.color == ACCENT
    assert list(figure.data[2].y) == [0.1, 0.3]
    assert figure.layout.barmode == "group" and figure.layout.yaxis.range[0] == 0
    assert figure.layout.yaxis.title.text == "energy in mask"
    pointing = localisation_figure(LOCALISATION, value="pointing_game")
    assert [t.name for t in pointing.data] == ["ERM", "RoGA", "chance (mask area)"]  # a uniform map scores the area
    assert pointing.layout.title.text == "Localisation per domain: pointing game"
    with pytest.raises(ValueError, match="value='mask_fraction'"):
        localisation_figure(LOCALISATION, value="mask_fraction")


DOMAIN_SCORES = ["domain", "energy_in_mask", "pointing_game", "mask_fraction", "n", "n_undefined"]


def depth_table() -> pd.DataFrame:
    rows = []
    for algorithm, shift in (("erm", 0.0), ("roga", 0.1)):
        for depth, (layer, side) in enumerate((("act1", 32), ("layer1", 16), ("layer2", 8))):
            for domain, fraction in (("A", 0.1), ("B", 0.3)):
                rows.append(
                    (
                        algorithm,
                        layer,
                        depth,
                        side,
                        side,
                        domain,
                        0.2 + shift + 0.1 * depth,
                        0.5 + shift,
                        fraction,
                        4,
                        0,
                    )
                )
    return pd.DataFrame(
        rows,
        columns=["algorithm", "layer", "depth", "height", "width", *DOMAIN_SCORES],
    )


def test_localisation_depth_figure_one_line_per_algorithm_and_the_chance_level():
    figure = localisation_depth_figure(depth_table(), default_layer="layer2")
    assert [a.text for a in figure.layout.annotations] == ["energy in mask", "pointing game"]
    assert [t.name for t in figure.data] == ["ERM", "ERM", "RoGA", "RoGA", "chance (mask area)", "chance (mask area)"]
    roga_energy = figure.data[2]
    assert list(roga_energy.x) == ["act1<br>32 × 32", "layer1<br>16 × 16", "layer2 (default)<br>8 × 8"]
    np.testing.assert_allclose(roga_energy.y, [0.3, 0.4, 0.5])
    np.testing.assert_allclose(figure.data[4].y, [0.2] * 3)  # mean mask area of A and B
    assert figure.data[4].line.dash == "dot" and sum(t.showlegend is not False for t in figure.data) == 3
    only_a = localisation_depth_figure(depth_table(), domains=["A"])
    np.testing.assert_allclose(only_a.data[4].y, [0.1] * 3)
    with pytest.raises(ValueError, match=r"no rows for domains \['Z'\]"):
        localisation_depth_figure(depth_table(), domains=["Z"])


def method_table() -> pd.DataFrame:
    rows = [
        (a, m, d, e, p, 0.2, 2, 0, 0.01)
        for a, base in (("erm", 0.3), ("roga", 0.4))
        for m, e, p in (("gradcam", base, 0.5), ("occlusion", base + 0.1, 0.75))
        for d in ("A", "B")
    ]
    return pd.DataFrame(
        rows,
        columns=["algorithm", "method", *DOMAIN_SCORES, "seconds_per_image"],
    )


def test_method_comparison_figure_bars_per_method():
    figure = method_comparison_figure(method_table())
    bars = [t for t in figure.data if t.type == "bar"]
    assert [t.name for t in bars] == ["ERM", "ERM", "RoGA", "RoGA"]
    assert list(bars[2].x) == ["Grad-CAM", "Occlusion"] and list(bars[2].y) == pytest.approx([0.4, 0.5])
    assert list(bars[3].y) == [0.5, 0.75]  # pointing game panel
    assert list(figure.data[-1].y) == pytest.approx([0.2, 0.2])
