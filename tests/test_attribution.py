"""Grad-CAM (against a hand-written reference) and the localisation scores."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from workbench.analysis.attribution import (
    GradCAM,
    default_layer_name,
    gradcam_maps,
    localisation_by_domain,
    localisation_scores,
    localisation_table,
)
from workbench.data.frames import Frames


def _model(name: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=2, **kwargs)
    with torch.no_grad():  # timm zero-inits the last BN of residual blocks; randomise so every layer is live
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.normal_(1.0, 0.5)
                module.bias.normal_(0.0, 0.2)
        # random heads often give a fake-logit CAM that is zero everywhere after the ReLU; a
        # non-negative fake row keeps the maps non-trivial so the comparisons below mean something
        model.get_classifier().weight[1].abs_()
    return model


def reference_gradcam(model: nn.Module, layer: str, x: torch.Tensor, target: int) -> torch.Tensor:
    """Grad-CAM written out by hand on a copy of the model (no captum)."""
    model = copy.deepcopy(model).eval()
    store = {}

    def keep(module, args, output):
        store["a"] = output
        return output.clone()  # later in-place ops then act on the copy, not on the kept activations

    handle = model.get_submodule(layer).register_forward_hook(keep)
    logits = model(x)
    handle.remove()
    activations = store["a"]
    grads = torch.autograd.grad(logits[:, target].sum(), activations)[0]
    if activations.dim() == 3:  # ViT tokens: drop prefix tokens, lay the patches out on their grid
        prefix = model.num_prefix_tokens
        side = int(round((activations.shape[1] - prefix) ** 0.5))

        def to_grid(t):
            return t[:, prefix:].transpose(1, 2).reshape(t.shape[0], t.shape[2], side, side)

        activations, grads = to_grid(activations), to_grid(grads)
    cam = F.relu((grads.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False).detach()


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("test_resnet", {}, "layer4"),
        ("test_efficientnet", {}, "blocks.4"),
        ("legacy_xception", {}, "act4"),
        ("test_vit", {}, "blocks.5.norm1"),  # class-token pooling: the last block's input tokens
        ("test_vit2", {}, "blocks.7"),  # average pooling: the last block's output tokens
    ],
)
def test_default_layer_is_last_feature_stage(name, kwargs, expected):
    model = timm.create_model(name, pretrained=False, num_classes=2, **kwargs)
    assert default_layer_name(model) == expected
    assert GradCAM(model).layer_name == expected


CASES = [
    ("test_resnet", "layer4", 64),
    ("test_resnet", "layer4.0.bn2", 64),  # followed by `x += shortcut` and an in-place ReLU
    ("test_efficientnet", "blocks.4", 64),
    ("legacy_xception", "act4", 96),  # an in-place ReLU itself
    ("legacy_xception", "bn4", 96),  # its output is overwritten by the in-place act4
    ("test_vit", "blocks.5.norm1", 64),
    ("test_vit2", "blocks.7", 160),
    ("test_vit", "patch_embed.proj", 64),  # a spatial layer inside a ViT
]


@pytest.mark.parametrize("name, layer, size", CASES)
def test_gradcam_matches_reference(name, layer, size):
    model = _model(name)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    cams = GradCAM(model, layer).attribute(x, target=1)
    expected = reference_gradcam(model, layer, x, target=1)
    assert cams.shape == (2, 1, size, size)
    assert (cams >= 0).all()
    assert (cams.amax(dim=(1, 2, 3)) > 0).all()
    torch.testing.assert_close(cams, expected, rtol=1e-4, atol=1e-6 * float(expected.max()))


def test_in_place_hazard_is_real_for_bn_before_in_place_add():
    """A hook that keeps the output without protecting it sees values overwritten by `x += shortcut`."""
    model = _model("test_resnet").eval()
    x = torch.randn(1, 3, 64, 64)
    kept, snapshot = {}, {}

    def hook(module, args, output):
        kept["a"], snapshot["a"] = output, output.detach().clone()

    handle = model.layer4[0].bn2.register_forward_hook(hook)
    model(x)
    handle.remove()
    assert not torch.equal(kept["a"].detach(), snapshot["a"])


def test_class_token_vit_needs_the_norm1_layer():
    model = _model("test_vit")
    x = torch.randn(2, 3, 64, 64)
    assert GradCAM(model, "blocks.5").attribute(x).abs().sum() == 0
    assert GradCAM(model).attribute(x).abs().sum() > 0


def test_restores_modes_and_leaves_no_gradients():
    model = _model("test_resnet")
    model.train()
    model.layer1.eval()
    flags = {name: module.training for name, module in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    GradCAM(model).attribute(torch.randn(2, 3, 64, 64))
    assert {name: module.training for name, module in model.named_modules()} == flags
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_per_sample_targets_and_normalisation():
    model = _model("test_resnet")
    x = torch.randn(3, 3, 64, 64)
    gradcam = GradCAM(model)
    mixed = gradcam.attribute(x, target=[0, 1, 0])
    torch.testing.assert_close(mixed[[0, 2]], gradcam.attribute(x[[0, 2]], target=0))
    torch.testing.assert_close(mixed[[1]], gradcam.attribute(x[[1]], target=1))
    normalised = gradcam.attribute(x, target=1, normalize=True)
    raw = gradcam.attribute(x, target=1)
    peaks = raw.amax(dim=(1, 2, 3), keepdim=True)
    assert (peaks > 0).all()
    torch.testing.assert_close(normalised, raw / peaks)
    torch.testing.assert_close(normalised.amax(dim=(1, 2, 3)), torch.ones(3))


def test_bad_layer_and_input_are_rejected():
    model = _model("test_resnet")
    with pytest.raises(ValueError, match="no submodule named 'layer9'"):
        GradCAM(model, "layer9")
    with pytest.raises(ValueError, match="not a submodule"):
        GradCAM(model, nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        GradCAM(model).attribute(torch.randn(3, 64, 64))
    with pytest.raises(ValueError, match="feature_info"):
        GradCAM(nn.Sequential(nn.Conv2d(3, 2, 1)))
    channels_last = nn.Sequential(nn.Conv2d(3, 2, 1))
    channels_last.output_fmt = "NHWC"
    with pytest.raises(ValueError, match="emits NHWC feature maps"):
        GradCAM(channels_last, "0")
    with pytest.raises(ValueError, match=r"'head' returned shape \(2, 2\); expected a map"):
        GradCAM(_model("test_vit"), "head").attribute(torch.randn(2, 3, 64, 64))


class LeftHalfDetector(nn.Module):
    """A detector whose fake logit sees only the left half of the image (its features are gated)."""

    def __init__(self, size: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(4))
        self.gate = nn.Identity()
        self.register_buffer("left", torch.zeros(1, 1, size // 4, size // 4))
        self.left[..., : size // 8] = 1
        self.head = nn.Linear(4, 2)
        with torch.no_grad():
            self.features[0].weight.abs_()
            self.features[0].bias.zero_()
            self.head.weight.copy_(torch.tensor([[0.0] * 4, [1.0] * 4]))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gated = self.gate(self.features(x) * self.left)
        return self.head(gated.mean(dim=(2, 3)))


def test_cam_of_region_model_lies_in_that_region():
    model = LeftHalfDetector(32)
    x = torch.rand(4, 3, 32, 32)
    cams = GradCAM(model, "gate").attribute(x, target=1)
    left = torch.zeros(4, 1, 32, 32)
    left[..., :16] = 1
    on_region = localisation_scores(cams, left)
    off_region = localisation_scores(cams, 1 - left)
    assert (on_region["energy_in_mask"] > 0.95).all()
    assert (off_region["energy_in_mask"] < 0.05).all()
    assert (on_region["pointing_hit"] == 1).all() and (off_region["pointing_hit"] == 0).all()
    np.testing.assert_allclose(on_region["mask_fraction"], 0.5)


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
    resnet, xception = _model("test_resnet"), _model("legacy_xception")  # different pretrained_cfg mean/std
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 64, 64), generator=gen, dtype=torch.uint8)
    masks = np.zeros((3, 64, 64))
    masks[:, :32] = 1.0
    frames = Frames(pd.DataFrame({"domain": ["A", "A", "B"], "label": [1, 1, 1]}), images, masks)
    cams = gradcam_maps({"resnet": resnet, "xception": xception}, frames)
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    for name, model in (("resnet", resnet), ("xception", xception)):
        x = (images.float() / 255.0 - 0.5) / 0.5  # both backbones are trained with mean = std = 0.5
        expected = GradCAM(model).attribute(x, target=1, normalize=True)[:, 0].numpy()
        np.testing.assert_allclose(cams[name], expected, atol=1e-6)
    # ImageNet statistics would have given the resnet clearly different maps.
    wrong = GradCAM(resnet).attribute(frames.inputs(*imagenet), target=1, normalize=True)[:, 0].numpy()
    assert np.abs(cams["resnet"] - wrong).max() > 0.05
    table = localisation_table(cams, frames)
    assert list(zip(table["algorithm"], table["domain"])) == [("resnet", "A"), ("resnet", "B"),
                                                             ("xception", "A"), ("xception", "B")]
    direct = localisation_by_domain(cams["xception"], masks, frames.domains)
    row = table[(table["algorithm"] == "xception") & (table["domain"] == "B")].iloc[0]
    assert row["energy_in_mask"] == pytest.approx(direct.loc["B", "energy_in_mask"])
    assert row["mask_fraction"] == pytest.approx(0.5) and row["n"] == 1
