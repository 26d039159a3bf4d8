"""Localisation scores against masks, per domain, depth and method, and the untrained control."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_models import live_timm_model

from workbench.analysis.attribution import GradCAM, attribute, gradcam_maps
from workbench.analysis.attribution_layers import feature_stages
from workbench.analysis.localisation import (
    compare_methods,
    localisation_by_depth,
    localisation_by_domain,
    localisation_scores,
    localisation_table,
    mean_over_domains,
    untrained_twin,
)
from workbench.data.frames import Frames


def test_localisation_scores_by_hand():
    cams = np.array([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]], [[5.0, 1.0], [1.0, 1.0]]])
    masks = np.array([[[0.9, 0.0], [0.2, 0.6]], [[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    scores = localisation_scores(cams, masks)
    assert scores.loc[0, "energy_in_mask"] == pytest.approx((1 + 4) / 10)  # 0.2 is below the threshold
    assert scores.loc[0, "pointing_hit"] == 1
    assert scores.loc[0, "mask_fraction"] == 0.5
    assert np.isnan(scores.loc[1, "energy_in_mask"]) and scores.loc[1, "reason"] == "CAM is zero everywhere"
    assert np.isnan(scores.loc[2, "pointing_hit"]) and scores.loc[2, "reason"] == "mask is empty"
    assert pd.isna(scores.loc[0, "reason"])
    loose = localisation_scores(cams[:1], masks[:1], threshold=0.1)
    assert loose.loc[0, "energy_in_mask"] == pytest.approx((1 + 3 + 4) / 10)


def test_pointing_game_scores_a_plateau_of_tied_maxima_by_its_share_in_the_mask():
    """An upsampled coarse CAM peaks on a plateau: 3 of its 4 maximum pixels in the mask score 0.75."""
    cam = np.array([[[2.0, 2.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 1.0]]])
    mask = np.array([[[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    assert localisation_scores(cam, mask).loc[0, "pointing_hit"] == pytest.approx(0.75)


def test_localisation_by_domain_means_defined_images():
    cams = np.zeros((4, 2, 2))
    cams[:, 0, 0] = 1.0
    cams[1, 1, 1] = 3.0
    masks = np.zeros((4, 2, 2))
    masks[:, 0, 0] = 1.0
    masks[3] = 0.0  # e.g. a real face: no manipulated region
    table = localisation_by_domain(cams, masks, ["A", "A", "B", "B"])
    assert list(table.index) == ["A", "B"]
    assert table.loc["A", "energy_in_mask"] == pytest.approx((1.0 + 0.25) / 2)
    assert table.loc["A", "pointing_game"] == pytest.approx(0.5)
    assert table.loc["B", "energy_in_mask"] == pytest.approx(1.0)
    assert table.loc["B", "n"] == 2 and table.loc["B", "n_undefined"] == 1
    assert table.loc["A", "n_undefined"] == 0
    assert table.loc["B", "mask_fraction"] == pytest.approx(0.25)  # chance over the scored image only
    assert np.isnan(localisation_by_domain(np.zeros((1, 2, 2)), masks[:1], ["C"]).loc["C", "mask_fraction"])


def test_localisation_input_errors():
    with pytest.raises(ValueError, match="shape"):
        localisation_scores(np.ones((2, 4, 4)), np.ones((2, 8, 8)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        localisation_scores(np.ones((1, 2, 2)), np.full((1, 2, 2), 255.0))
    with pytest.raises(ValueError, match="non-negative"):
        localisation_scores(-np.ones((1, 2, 2)), np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="3 domain names for 2 CAMs"):
        localisation_by_domain(np.ones((2, 2, 2)), np.ones((2, 2, 2)), ["A", "B", "C"])


def test_gradcam_maps_feed_each_model_its_own_normalisation_and_tabulate_by_domain():
    resnet, xception = (
        live_timm_model("test_resnet"),
        live_timm_model("legacy_xception"),
    )  # different pretrained_cfg mean/std
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 64, 64), generator=gen, dtype=torch.uint8)
    masks = np.zeros((3, 64, 64))
    masks[:, :32] = 1.0
    frames = Frames(pd.DataFrame({"domain": ["A", "A", "B"], "label": [1, 1, 1]}), images, masks)
    cams = gradcam_maps({"resnet": resnet, "xception": xception}, frames)
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    for name, model in (("resnet", resnet), ("xception", xception)):
        x = (images.float() / 255.0 - 0.5) / 0.5  # both backbones are trained with mean = std = 0.5
        expected = GradCAM(model, input_size=64).attribute(x, target=1, normalize=True)[:, 0].numpy()
        np.testing.assert_allclose(cams[name], expected, atol=1e-6)
    # ImageNet statistics would have given the resnet clearly different maps.
    wrong = GradCAM(resnet, input_size=64).attribute(frames.inputs(*imagenet), target=1, normalize=True)[:, 0].numpy()
    assert np.abs(cams["resnet"] - wrong).max() > 0.05
    table = localisation_table(cams, frames)
    assert list(zip(table["algorithm"], table["domain"])) == [
        ("resnet", "A"),
        ("resnet", "B"),
        ("xception", "A"),
        ("xception", "B"),
    ]
    direct = localisation_by_domain(cams["xception"], masks, frames.domains)
    row = table[(table["algorithm"] == "xception") & (table["domain"] == "B")].iloc[0]
    assert row["energy_in_mask"] == pytest.approx(direct.loc["B", "energy_in_mask"])
    assert row["mask_fraction"] == pytest.approx(0.5) and row["n"] == 1


def depth_frames(size: int = 32) -> Frames:
    gen = torch.Generator().manual_seed(7)
    images = torch.randint(0, 256, (4, 3, size, size), generator=gen, dtype=torch.uint8)
    masks = np.zeros((4, size, size))
    masks[:, : size // 2, : size // 2] = 1.0
    masks[3] = 0.0  # one frame without a mask: no score
    return Frames(pd.DataFrame({"domain": ["A", "A", "B", "B"], "label": [1, 1, 1, 1]}), images, masks)


def test_localisation_by_depth_scores_every_stage_as_a_direct_computation_does():
    frames = depth_frames()
    model = live_timm_model("test_resnet")
    table = localisation_by_depth({"erm": model}, frames)
    assert list(dict.fromkeys(table["layer"])) == feature_stages(model)
    assert list(table.drop_duplicates("layer")["height"]) == [16, 8, 4, 2, 1]
    x = frames.inputs((0.5,) * 3, (0.5,) * 3)
    for layer in ("act1", "layer2"):
        direct = localisation_by_domain(GradCAM(model, layer).attribute(x)[:, 0].numpy(), frames.masks, frames.domains)
        rows = table[table["layer"] == layer].set_index("domain")
        np.testing.assert_allclose(
            rows[["energy_in_mask", "pointing_game", "mask_fraction"]].to_numpy(),
            direct[["energy_in_mask", "pointing_game", "mask_fraction"]].to_numpy(),
        )
        assert rows.loc["B", "n_undefined"] == 1
    chosen = localisation_by_depth({"erm": model}, frames, layers=["layer1"])
    assert list(chosen["layer"]) == ["layer1", "layer1"] and list(chosen["depth"]) == [0, 0]


def test_compare_methods_scores_and_times_every_method():
    frames = depth_frames()
    model = live_timm_model("test_resnet")
    result = compare_methods({"erm": model}, frames, methods=("gradcam", "saliency", "occlusion"), layer="layer1")
    assert list(result.maps) == ["gradcam", "saliency", "occlusion"]
    table = result.table
    assert list(zip(table["method"], table["domain"])) == [(m, d) for m in result.maps for d in ("A", "B")]
    assert (table["seconds_per_image"] > 0).all()
    x = frames.inputs((0.5,) * 3, (0.5,) * 3)
    expected = attribute(model, x, "gradcam", layer="layer1", normalize=True)[:, 0].numpy()
    np.testing.assert_allclose(result.maps["gradcam"]["erm"], expected, atol=1e-6)
    for method, maps in result.maps.items():
        assert maps["erm"].max() == pytest.approx(1.0)
        direct = localisation_by_domain(maps["erm"], frames.masks, frames.domains)
        np.testing.assert_allclose(table[table["method"] == method]["energy_in_mask"], direct["energy_in_mask"])
    with pytest.raises(ValueError, match=r"unknown attribution method\(s\) \['cam'\]"):
        compare_methods({"erm": model}, frames, methods=("cam",))


def test_untrained_twin_is_the_architecture_with_seeded_random_weights():
    state = torch.random.get_rng_state()
    twin = untrained_twin({"name": "test_resnet", "kwargs": {"drop_rate": 0.1}}, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is untouched
    again = untrained_twin({"name": "test_resnet", "kwargs": {"drop_rate": 0.1}}, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(twin.state_dict().values(), again.state_dict().values()))
    other = untrained_twin({"name": "test_resnet"}, seed=4)
    assert not torch.equal(twin.conv1[0].weight, other.conv1[0].weight)
    assert twin.num_classes == 2 and twin.drop_rate == 0.1 and not twin.training


def test_mean_over_domains_weighs_domains_equally_and_keeps_constant_columns():
    table = pd.DataFrame(
        {
            "algorithm": ["erm"] * 4,
            "layer": ["a", "a", "b", "b"],
            "depth": [0, 0, 1, 1],
            "domain": ["A", "B"] * 2,
            "energy_in_mask": [0.2, 0.6, 0.1, np.nan],
            "pointing_game": [0.0, 1.0, 1.0, np.nan],
            "mask_fraction": [0.1, 0.3, 0.1, np.nan],
            "n": [10, 2, 10, 2],
            "n_undefined": [0, 0, 0, 2],
        }
    )
    means = mean_over_domains(table, ["algorithm", "layer"])
    assert list(means["layer"]) == ["a", "b"] and list(means["depth"]) == [0, 1]
    np.testing.assert_allclose(means["energy_in_mask"], [0.4, 0.1])  # not weighted by n
    np.testing.assert_allclose(means["mask_fraction"], [0.2, 0.1])
    assert list(means["domains"]) == [2, 1] and "n" not in means.columns
    with pytest.raises(ValueError, match=r"needs column\(s\) \['domain'\]"):
        mean_over_domains(table.drop(columns="domain"), ["algorithm"])
