"""ρ explorer: moving the slider or the domain selector updates the figure with the analysis values."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from tiny_models import cnn_with_bn

from workbench.algorithms.param_vector import unit
from workbench.analysis.gradients import alignment_summary, domain_gradients, per_domain_perturbed_loss
from workbench.analysis.landscape import loss_along_direction
from workbench.viz import RhoExplorer
from workbench.viz.explorer import OTHER, SELECTED

NAMES = ["SWAP", "REENACT", "GAN"]
ALPHA = 0.001


def tiny_setup():
    model = cnn_with_bn(seed=0, dtype=torch.float32)
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(6, 3, 8, 8, generator=generator) + k, torch.tensor([0, 1] * 3)) for k in range(len(NAMES))]
    return model, batches


def bars(explorer, index):
    return np.asarray(explorer.figure.data[index].y, dtype=float)


def test_panel_is_assembled_from_widgets():
    model, batches = tiny_setup()
    explorer = RhoExplorer(model, batches, NAMES, rhos=(0.0, 0.5), alpha=ALPHA)
    assert isinstance(explorer.slider, widgets.FloatSlider) and explorer.slider.continuous_update is False
    assert (explorer.slider.min, explorer.slider.max, explorer.slider.value) == (0.0, 0.5, 0.05)
    assert list(explorer.domain.options) == NAMES
    assert isinstance(explorer.figure, go.FigureWidget) and len(explorer.figure.data) == 6
    assert explorer.slider in explorer.widget.children[0].children
    assert explorer.figure in explorer.widget.children


def test_slider_recomputes_losses_and_cosines_in_place():
    model, batches = tiny_setup()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    explorer = RhoExplorer(model, batches, NAMES, rhos=(0.0, 0.5), alpha=ALPHA)
    figure = explorer.figure
    before_loss, before_cos = bars(explorer, 1), bars(explorer, 3)
    start = alignment_summary(model, batches, 0.05, ALPHA, domain_names=NAMES)
    np.testing.assert_allclose(before_loss, [start[f"loss_perturbed/{n}"] for n in NAMES], rtol=1e-6)

    explorer.slider.value = 0.4

    assert explorer.figure is figure  # updated in place, not replaced
    after_loss, after_cos = bars(explorer, 1), bars(explorer, 3)
    assert not np.allclose(after_loss, before_loss) and not np.allclose(after_cos, before_cos)
    np.testing.assert_allclose(after_loss, per_domain_perturbed_loss(model, batches, 0.4, ALPHA), rtol=1e-6)
    expected = alignment_summary(model, batches, 0.4, ALPHA, domain_names=NAMES)
    np.testing.assert_allclose(after_cos, [expected[f"cos_perturbed/{n}"] for n in NAMES], rtol=1e-5)
    np.testing.assert_allclose(bars(explorer, 0), [expected[f"loss/{n}"] for n in NAMES], rtol=1e-6)
    np.testing.assert_allclose(bars(explorer, 2), [expected[f"cos_clean/{n}"] for n in NAMES], rtol=1e-5)

    direction = unit(domain_gradients(model, batches)[0])
    marker = figure.data[5]
    assert marker.x == (0.4,)
    np.testing.assert_allclose(marker.y, loss_along_direction(model, batches[0], direction, [0.4]), rtol=1e-6)
    assert "ρ = 0.400" in figure.layout.title.text
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_domain_selector_switches_the_slice():
    model, batches = tiny_setup()
    explorer = RhoExplorer(model, batches, NAMES, rhos=(0.0, 0.5), alpha=ALPHA, slice_points=11)
    offsets = np.linspace(-0.5, 0.5, 11)
    np.testing.assert_allclose(explorer.figure.data[4].x, offsets)
    first = np.asarray(explorer.figure.data[4].y)

    explorer.domain.value = "GAN"

    direction = unit(domain_gradients(model, batches)[2])
    sliced = np.asarray(explorer.figure.data[4].y)
    np.testing.assert_allclose(sliced, loss_along_direction(model, batches[2], direction, offsets), rtol=1e-6)
    assert not np.allclose(sliced, first)
    assert list(explorer.figure.data[1].marker.color) == [OTHER, OTHER, SELECTED]
    np.testing.assert_allclose(explorer.figure.data[5].y, loss_along_direction(model, batches[2], direction, [0.05]))


def test_bad_arguments_are_refused():
    model, batches = tiny_setup()
    with pytest.raises(ValueError, match="outside the slider range"):
        RhoExplorer(model, batches, NAMES, rhos=(0.0, 0.5), rho=0.7)
    with pytest.raises(ValueError, match="0 <= min < max"):
        RhoExplorer(model, batches, NAMES, rhos=(0.5, 0.1))
    with pytest.raises(ValueError, match="at least 2 domain"):
        RhoExplorer(model, batches[:1], NAMES[:1])
    with pytest.raises(ValueError, match="2 domain names for 3"):
        RhoExplorer(model, batches, NAMES[:2])


def test_the_model_selector_switches_between_algorithms():
    model, batches = tiny_setup()
    other = cnn_with_bn(seed=3, dtype=torch.float32)
    explorer = RhoExplorer({"erm": model, "roga": other}, batches, NAMES, alpha=ALPHA, start="roga")
    assert explorer.chosen in explorer.widget.children[0].children and explorer.model is other
    for name, shown in (("roga", other), ("erm", model)):
        explorer.chosen.value = name
        expected = alignment_summary(shown, batches, explorer.slider.value, ALPHA, domain_names=NAMES)
        np.testing.assert_allclose(bars(explorer, 3), [expected[f"cos_perturbed/{d}"] for d in NAMES], rtol=1e-6)
        assert explorer.figure.layout.title.text.startswith(f"{name}: ")
    with pytest.raises(ValueError, match="start='sam' is not one of the models"):
        RhoExplorer({"erm": model}, batches, NAMES, start="sam")
