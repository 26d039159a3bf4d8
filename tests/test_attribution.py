"""Attribution maps (against hand-written references and models whose right map is known), the default
layer rule, and the localisation scores per domain, depth and method."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import timm
import torch
import torch.nn.functional as F
from tiny_models import live_timm_model
from torch import nn

from workbench.analysis.attribution import LAYER_METHODS, METHODS, AttributionOptions, GradCAM, attribute
from workbench.analysis.attribution_layers import stage_sizes
from workbench.analysis.localisation import localisation_scores


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
    model = live_timm_model(name)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    cams = GradCAM(model, layer).attribute(x, target=1)
    expected = reference_gradcam(model, layer, x, target=1)
    assert cams.shape == (2, 1, size, size)
    assert (cams >= 0).all()
    assert (cams.amax(dim=(1, 2, 3)) > 0).all()
    torch.testing.assert_close(cams, expected, rtol=1e-4, atol=1e-6 * float(expected.max()))


def test_in_place_hazard_is_real_for_bn_before_in_place_add():
    """A hook that keeps the output without protecting it sees values overwritten by `x += shortcut`."""
    model = live_timm_model("test_resnet").eval()
    x = torch.randn(1, 3, 64, 64)
    kept, snapshot = {}, {}

    def hook(module, args, output):
        kept["a"], snapshot["a"] = output, output.detach().clone()

    handle = model.layer4[0].bn2.register_forward_hook(hook)
    model(x)
    handle.remove()
    assert not torch.equal(kept["a"].detach(), snapshot["a"])


def test_class_token_vit_needs_the_norm1_layer():
    model = live_timm_model("test_vit")
    x = torch.randn(2, 3, 64, 64)
    assert GradCAM(model, "blocks.5").attribute(x).abs().sum() == 0
    assert GradCAM(model).attribute(x).abs().sum() > 0


def test_restores_modes_and_leaves_no_gradients():
    model = live_timm_model("test_resnet")
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
    model = live_timm_model("test_resnet")
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
    model = live_timm_model("test_resnet")
    with pytest.raises(
        ValueError, match="no submodule named 'layer9'; its feature stages are act1, layer1, layer2, layer3, layer4"
    ):
        GradCAM(model, "layer9")
    with pytest.raises(ValueError, match="no submodule named 'layer9'"):
        stage_sizes(model, 64, ["layer9"])
    with pytest.raises(ValueError, match="unknown attribution method 'lime'"):
        attribute(model, torch.randn(1, 3, 32, 32), "lime")
    with pytest.raises(ValueError, match="'saliency' attributes to the input pixels; layer='layer2'"):
        attribute(model, torch.randn(1, 3, 32, 32), "saliency", layer="layer2")
    with pytest.raises(ValueError, match="occlusion_window=0 must be >= 1"):
        AttributionOptions(occlusion_window=0)
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
        GradCAM(live_timm_model("test_vit"), "head").attribute(torch.randn(2, 3, 64, 64))


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


@pytest.mark.parametrize("method", METHODS)
def test_every_method_finds_the_region_a_detector_looks_at(method):
    """The fake logit sees only the left half: every method's map lies there (one-pixel conv halo aside)."""
    model = LeftHalfDetector(32)
    x = torch.rand(4, 3, 32, 32)
    maps = attribute(model, x, method, target=1, layer="gate" if method in LAYER_METHODS else None)
    assert maps.shape == (4, 1, 32, 32) and (maps >= 0).all()
    left = torch.zeros(4, 1, 32, 32)
    left[..., :16] = 1
    on_region = localisation_scores(maps, left)
    off_region = localisation_scores(maps, 1 - left)
    assert (on_region["energy_in_mask"] > 0.95).all()
    assert (off_region["energy_in_mask"] < 0.05).all()
    assert (on_region["pointing_hit"] == 1).all() and (off_region["pointing_hit"] == 0).all()
    np.testing.assert_allclose(on_region["mask_fraction"], 0.5)


class Linear(nn.Module):
    """logits = W · x + b over the flattened image: every pixel method's map is known in closed form."""

    def __init__(self, size: int = 8) -> None:
        super().__init__()
        self.linear = nn.Linear(3 * size * size, 2)
        with torch.no_grad():
            self.linear.weight.normal_(generator=torch.Generator().manual_seed(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


def test_pixel_methods_on_a_linear_model_match_their_closed_forms():
    model = Linear(8)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    w = model.linear.weight[1].detach().reshape(3, 8, 8)
    saliency = attribute(model, x, "saliency")[:, 0]  # |∂y/∂x| summed over the colour channels
    torch.testing.assert_close(saliency, w.abs().sum(0).expand(2, 8, 8))
    integrated = attribute(model, x, "integrated_gradients", options=AttributionOptions(ig_steps=4))[:, 0]
    torch.testing.assert_close(integrated, (x * w).abs().sum(1))  # IG from 0 of a linear map: x ⊙ w, exactly
    occluded = attribute(model, x, "occlusion", options=AttributionOptions(occlusion_window=4))[:, 0]
    # blanking a 4 × 4 window (all channels) drops the logit by that window's Σ x·w; positive drops only
    contribution = (x * w).sum(1).reshape(2, 2, 4, 2, 4).sum(dim=(2, 4))
    expected = contribution.clamp(min=0).repeat_interleave(4, dim=1).repeat_interleave(4, dim=2)
    torch.testing.assert_close(occluded, expected)
    half = attribute(model, x, "occlusion", options=AttributionOptions(occlusion_window=4, occlusion_stride=2))
    assert half.shape == (2, 1, 8, 8) and not torch.allclose(half[:, 0], occluded)  # overlapping windows average


class ConvReLU(nn.Module):
    """1×1 conv → ReLU → global mean → linear: guided backpropagation and Grad-CAM written out by hand below."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(4)
        self.conv = nn.Conv2d(3, 5, 1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(5, 2)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.normal_(generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.conv(x)).mean(dim=(2, 3)))


def test_guided_gradcam_matches_a_hand_computation():
    model = ConvReLU()
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        a = model.conv(x)  # [N, C, h, w], the hooked layer
    w_fake, cells = model.head.weight[1].detach(), 36
    # Grad-CAM at conv: dy/dA = w_c/HW where A > 0 (the ReLU passes), α_c its spatial mean
    grad_a = (w_fake[None, :, None, None] / cells) * (a > 0)
    cam = torch.relu((grad_a.mean(dim=(2, 3), keepdim=True) * a).sum(1, keepdim=True))
    # guided backprop: the ReLU passes gradient only where its input and the incoming gradient are positive
    guided_a = (w_fake[None, :, None, None] / cells).clamp(min=0) * (a > 0)
    guided_x = torch.einsum("nchw,ci->nihw", guided_a, model.conv.weight.detach()[:, :, 0, 0])
    expected = (guided_x * cam).abs().sum(1, keepdim=True)
    torch.testing.assert_close(attribute(model, x, "guided_gradcam", layer="conv"), expected)
    torch.testing.assert_close(attribute(model, x, "gradcam", layer="conv"), cam)


def test_guided_backprop_is_unaffected_by_in_place_relus():
    model = live_timm_model("test_resnet")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    plain = copy.deepcopy(model)
    for module in plain.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    assert any(isinstance(m, nn.ReLU) and m.inplace for m in model.modules())
    torch.testing.assert_close(
        attribute(model, x, "guided_gradcam", layer="layer1"), attribute(plain, x, "guided_gradcam", layer="layer1")
    )


@pytest.mark.parametrize("method", METHODS)
def test_every_method_restores_modes_and_leaves_no_gradients(method):
    model = live_timm_model("test_resnet")
    model.train()
    model.layer1.eval()
    flags = {name: module.training for name, module in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    attribute(model, torch.randn(2, 3, 32, 32), method, options=AttributionOptions(ig_steps=2))
    assert {name: module.training for name, module in model.named_modules()} == flags
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def measure_costs(name: str = "resnet18", size: int = 224, batch: int = 8) -> pd.DataFrame:
    """Seconds per image of every method on a random-init ``name`` at ``size`` px: one thread, after a warm-up.

    ``HF_HUB_OFFLINE=1 .venv/bin/python tests/test_attribution.py resnet18 224 8`` (docs/analysis.md).
    """
    import time

    torch.set_num_threads(1)
    model = timm.create_model(name, pretrained=False, num_classes=2)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    rows = []
    for method in METHODS:
        attribute(model, x[:1], method)  # warm-up
        started = time.perf_counter()
        attribute(model, x, method)
        rows.append((method, (time.perf_counter() - started) / batch))
    return pd.DataFrame(rows, columns=["method", "seconds_per_image"])


if __name__ == "__main__":
    import sys

    arguments = sys.argv[1:]
    print(
        measure_costs(arguments[0], int(arguments[1]), int(arguments[2])).to_string(index=False)
        if arguments
        else measure_costs().to_string(index=False)
    )
