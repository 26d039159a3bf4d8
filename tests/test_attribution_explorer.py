"""Attribution explorer: every selector redraws the figure with the map the analysis function gives."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import timm
import torch

from workbench.analysis.attribution import attribute
from workbench.analysis.localisation import localisation_scores
from workbench.data.frames import Frames
from workbench.viz import AttributionExplorer
from workbench.viz.style import attribution_colourscale


def models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    built = {name: timm.create_model("test_resnet", pretrained=False, num_classes=2) for name in ("erm", "roga")}
    with torch.no_grad():
        for model in built.values():
            model.get_classifier().weight[1].abs_()  # a non-trivial fake-logit CAM
    return built


def frames() -> Frames:
    images = torch.randint(0, 256, (3, 3, 32, 32), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    masks = np.zeros((3, 32, 32))
    masks[0, 8:24, 8:24] = 1.0
    masks[2, :16] = 1.0
    return Frames(pd.DataFrame({"domain": ["SWAP", "SWAP", "GAN"], "label": [1, 1, 1]}), images, masks)


def expected_map(model: torch.nn.Module, faces: Frames, index: int, method: str, layer: str | None) -> np.ndarray:
    x = (faces.images[index : index + 1].float() / 255.0 - 0.5) / 0.5  # test_resnet: mean = std = 0.5
    return attribute(model, x, method, layer=layer, normalize=True)[0, 0].numpy()


def test_panel_starts_at_the_default_layer_of_the_first_domain():
    nets, faces = models(), frames()
    explorer = AttributionExplorer(nets, faces, methods=("gradcam", "occlusion"))
    assert isinstance(explorer.widget, widgets.VBox) and isinstance(explorer.figure, go.FigureWidget)
    assert explorer.layer.value == "layer1"  # 8 × 8 at 32 px
    assert explorer.layer.options[2] == ("layer2 · 4×4", "layer2")
    assert explorer.domain.options == ("SWAP", "GAN")  # the first frame of each domain
    assert [label for label, _ in explorer.algorithm.options] == ["ERM", "RoGA"]
    np.testing.assert_allclose(
        explorer.figure.data[2].z, expected_map(nets["erm"], faces, 0, "gradcam", "layer1"), atol=1e-6
    )
    np.testing.assert_array_equal(explorer.figure.data[3].z, faces.masks[0])
    scores = localisation_scores(explorer.figure.data[2].z[None], faces.masks[:1]).iloc[0]
    assert explorer.scores["energy_in_mask"] == pytest.approx(scores["energy_in_mask"])
    title = explorer.figure.layout.title.text
    assert title.startswith("Attribution explorer: ERM · Grad-CAM at layer1 (8×8) · SWAP")
    assert f"{scores['energy_in_mask']:.2f} of the map in the mask (chance 0.25)" in title


def test_every_selector_redraws_with_the_selected_map():
    nets, faces = models(), frames()
    explorer = AttributionExplorer(nets, faces, methods=("gradcam", "occlusion"))
    explorer.layer.value = "act1"
    np.testing.assert_allclose(
        explorer.figure.data[2].z, expected_map(nets["erm"], faces, 0, "gradcam", "act1"), atol=1e-6
    )
    explorer.algorithm.value = "roga"
    assert explorer.layer.value == "act1"  # kept: the same backbone has the same stages
    explorer.domain.value = "GAN"  # the third frame
    np.testing.assert_allclose(
        explorer.figure.data[2].z, expected_map(nets["roga"], faces, 2, "gradcam", "act1"), atol=1e-6
    )
    np.testing.assert_array_equal(explorer.figure.data[0].z, faces.images[2].permute(1, 2, 0).numpy())
    np.testing.assert_array_equal(explorer.figure.data[4].z, faces.masks[2])
    explorer.method.value = "occlusion"
    assert explorer.layer.disabled
    np.testing.assert_allclose(
        explorer.figure.data[2].z, expected_map(nets["roga"], faces, 2, "occlusion", None), atol=1e-6
    )
    assert "RoGA · Occlusion · GAN" in explorer.figure.layout.title.text
    explorer.opacity.value = 0.3
    assert explorer.figure.data[2].colorscale[-1][1] == attribution_colourscale(0.3)[-1][1]
    assert len(explorer._maps) == 5  # one map per selection so far, cached


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="no models"):
        AttributionExplorer({}, frames())
    with pytest.raises(ValueError, match=r"methods \['lime'\]"):
        AttributionExplorer(models(), frames(), methods=("lime",))
