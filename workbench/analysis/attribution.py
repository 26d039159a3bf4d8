"""Where a detector looks: attribution maps of its fake logit and how well they fall on the manipulated region.

**Methods** (captum's implementations; :data:`METHODS`), each giving a non-negative map ``[N, 1, H, W]``
at the input size:

- ``"gradcam"``: captum's ``LayerGradCam`` at a feature stage, ReLU'd and upsampled bilinearly;
- ``"guided_gradcam"``: captum's ``GuidedGradCam`` (guided backpropagation × the upsampled CAM);
- ``"integrated_gradients"``: captum's ``IntegratedGradients`` from a zero baseline (the dataset's
  mean colour, since inputs are standardised) in ``ig_steps`` steps;
- ``"saliency"``: captum's ``Saliency``, the input gradient;
- ``"occlusion"``: captum's ``Occlusion``: the drop of the fake logit when a square window (side
  ``occlusion_window``, default 1/8 of the image, moved by its own side) is set to the zero baseline.

Pixel-space methods (guided Grad-CAM, integrated gradients, saliency) are signed per colour channel;
their map is the sum of absolute values over the channels (evidence of either sign, as these maps are
usually shown). Grad-CAM and occlusion are class-discriminative: their map keeps the evidence *for*
fake (ReLU).

The layer a layer method attributes to is chosen in :mod:`workbench.analysis.attribution_layers`;
how the maps fall on manipulation masks is scored in :mod:`workbench.analysis.localisation`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import GuidedGradCam, IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion, Saliency
from torch import nn

from workbench.analysis.attribution_layers import eval_mode, is_token_model, parameter_device, resolve_layer, token_grid
from workbench.data.frames import Frames
from workbench.models import input_normalization

METHODS: tuple[str, ...] = ("gradcam", "guided_gradcam", "integrated_gradients", "saliency", "occlusion")
LAYER_METHODS: tuple[str, ...] = ("gradcam", "guided_gradcam")


def _normalise_peak(maps: torch.Tensor) -> torch.Tensor:
    """Each map divided by its maximum (an all-zero map stays zero)."""
    peak = maps.amax(dim=(1, 2, 3), keepdim=True)
    return maps / torch.where(peak > 0, peak, torch.ones_like(peak))


def _target(target: int | Sequence[int] | torch.Tensor, device: torch.device) -> int | list[int] | torch.Tensor:
    if isinstance(target, torch.Tensor):
        return target.to(device)
    return target if isinstance(target, int) else list(target)


def _check_images(x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"x must be a batch of images [N, C, H, W], got shape {tuple(x.shape)}")


class GradCAM:
    """Grad-CAM (Selvaraju et al., 2017) of ``model`` at ``layer``; with ``guided=True`` guided Grad-CAM.

    ``layer``: a module name, a module, or None for :func:`default_layer_name` at ``input_size``
    (an int or ``(height, width)``; default the backbone's design size — pass the size of the images
    you will attribute). ``attribute`` runs the model in eval mode and restores every submodule's
    train/eval flag afterwards; gradients come from ``torch.autograd.grad`` inside captum, so no
    ``.grad`` is written to the parameters.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module | None = None,
        input_size: int | Sequence[int] | None = None,
        guided: bool = False,
    ) -> None:
        if getattr(model, "output_fmt", "NCHW") != "NCHW":
            raise ValueError(
                f"{type(model).__name__} emits {model.output_fmt} feature maps; "
                "GradCAM handles NCHW maps and ViT tokens"
            )
        self.model = model
        self.guided = guided
        self.layer_name, self.layer = resolve_layer(model, layer, input_size)
        self.tokens = is_token_model(model)
        self._probe = nn.Identity()

    def __repr__(self) -> str:
        kind = "GuidedGradCAM" if self.guided else "GradCAM"
        return f"{kind}({type(self.model).__name__}, layer={self.layer_name!r})"

    @contextmanager
    def _hooked_layer(self, image_size: tuple[int, int]) -> Iterator[nn.Module]:
        """Yield the module captum should hook: the layer itself, or a probe that sees tokens as a map."""
        if not self.tokens:
            yield self.layer
            return
        prefix = self.model.num_prefix_tokens
        height, width = token_grid(self.model, image_size)

        def as_grid(module: nn.Module, args: tuple, tokens: torch.Tensor) -> torch.Tensor:
            if tokens.dim() == 4:  # a spatial layer inside a ViT (e.g. the patch projection)
                return self._probe(tokens)
            if tokens.dim() != 3 or tokens.shape[1] - prefix != height * width:
                raise ValueError(
                    f"layer {self.layer_name!r} returned shape {tuple(tokens.shape)}; expected a map [N, C, h, w] "
                    f"or tokens [N, {prefix} + {height}×{width}, C] for a {image_size} input"
                )
            patches = tokens[:, prefix:]
            grid = patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], height, width)
            grid = self._probe(grid)
            return torch.cat([tokens[:, :prefix], grid.flatten(2).transpose(1, 2)], dim=1)

        handle = self.layer.register_forward_hook(as_grid)
        try:
            yield self._probe
        finally:
            handle.remove()

    def attribute(
        self, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor = 1, normalize: bool = False
    ) -> torch.Tensor:
        """Maps ``[N, 1, H, W]`` (non-negative) for class ``target`` (1 = fake) of images ``x`` ``[N, 3, H, W]``.

        ``normalize=True`` scales each map by its maximum to [0, 1] (an all-zero map stays zero).
        """
        _check_images(x)
        device = parameter_device(self.model, x.device)
        inputs = x.detach().to(device).requires_grad_(True)
        target = _target(target, device)
        image_size = (int(x.shape[-2]), int(x.shape[-1]))
        with eval_mode(self.model), torch.enable_grad(), self._hooked_layer(image_size) as layer:
            if self.guided:
                with warnings.catch_warnings():  # captum's notice that it hooks (and then unhooks) the ReLUs
                    warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
                    maps = GuidedGradCam(self.model, layer).attribute(
                        inputs, target=target, interpolate_mode="bilinear"
                    )
                maps = maps.detach().abs().sum(dim=1, keepdim=True)
            else:
                maps = LayerGradCam(self.model, layer).attribute(inputs, target=target, relu_attributions=True)
                maps = LayerAttribution.interpolate(maps.detach(), image_size, interpolate_mode="bilinear")
        return _normalise_peak(maps) if normalize else maps


@dataclass(frozen=True)
class AttributionOptions:
    """Settings of the methods that have any: integrated-gradient steps and the occlusion window.

    ``occlusion_window=None`` uses 1/8 of the shorter image side (at least 2 px), so occlusion
    resolves an 8 × 8 grid like the default Grad-CAM layer; ``occlusion_stride=None`` moves the
    window by its own side (non-overlapping windows: 64 forward passes per image; a stride of half
    the window gives smoother maps for four times the cost). ``internal_batch_size`` bounds the
    perturbed images per forward pass of integrated gradients and occlusion.
    """

    ig_steps: int = 32
    occlusion_window: int | None = None
    occlusion_stride: int | None = None
    internal_batch_size: int = 64

    def __post_init__(self) -> None:
        for name in ("ig_steps", "internal_batch_size", "occlusion_window", "occlusion_stride"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}={value} must be >= 1")

    def window(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """Occlusion window side and stride for images of ``image_size``."""
        side = self.occlusion_window or max(2, min(image_size) // 8)
        return side, self.occlusion_stride or side


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    method: str = "gradcam",
    target: int | Sequence[int] | torch.Tensor = 1,
    layer: str | nn.Module | None = None,
    normalize: bool = False,
    options: AttributionOptions = AttributionOptions(),
) -> torch.Tensor:
    """Non-negative maps ``[N, 1, H, W]`` of ``method`` (see :data:`METHODS`) for class ``target`` of ``x``.

    ``layer`` (Grad-CAM and guided Grad-CAM only; None: :func:`default_layer_name` at ``x``'s size).
    The model runs in eval mode and keeps its flags, weights and ``.grad``.
    """
    _check_images(x)
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {list(METHODS)}")
    size = (int(x.shape[-2]), int(x.shape[-1]))
    if method in LAYER_METHODS:
        return GradCAM(model, layer, size, guided=method == "guided_gradcam").attribute(x, target, normalize)
    if layer is not None:
        raise ValueError(
            f"method {method!r} attributes to the input pixels; layer={layer!r} applies to {list(LAYER_METHODS)}"
        )
    device = parameter_device(model, x.device)
    inputs = x.detach().to(device).requires_grad_(True)
    target = _target(target, device)
    with eval_mode(model), torch.enable_grad():
        if method == "saliency":
            maps = Saliency(model).attribute(inputs, target=target, abs=True).sum(dim=1, keepdim=True)
        elif method == "integrated_gradients":
            maps = (
                IntegratedGradients(model)
                .attribute(
                    inputs,
                    baselines=0.0,
                    target=target,
                    n_steps=options.ig_steps,
                    internal_batch_size=max(options.internal_batch_size, len(inputs)),  # captum needs >= N
                )
                .abs()
                .sum(dim=1, keepdim=True)
            )
        else:
            side, stride = options.window(size)
            maps = (
                Occlusion(model)
                .attribute(
                    inputs,
                    sliding_window_shapes=(x.shape[1], side, side),
                    strides=(x.shape[1], stride, stride),
                    baselines=0.0,
                    target=target,
                    perturbations_per_eval=options.internal_batch_size,
                )
                .mean(dim=1, keepdim=True)
                .clamp(min=0)
            )
    maps = maps.detach()
    return _normalise_peak(maps) if normalize else maps


def attribution_maps(
    models: Mapping[str, nn.Module],
    frames: Frames,
    method: str = "gradcam",
    target: int = 1,
    layer: str | None = None,
    options: AttributionOptions = AttributionOptions(),
) -> dict[str, np.ndarray]:
    """Each model's ``method`` map of class ``target`` (1 = fake) on ``frames``, ``{name: [N, H, W]}`` in [0, 1].

    Each model sees the frames standardised with its own backbone's statistics, as in training;
    each map is scaled by its maximum. ``layer`` None: each model's :func:`default_layer_name` at
    the frames' size.
    """
    return {
        name: attribute(
            model, frames.inputs(*input_normalization(model)), method, target, layer, normalize=True, options=options
        )[:, 0]
        .cpu()
        .numpy()
        for name, model in models.items()
    }


def gradcam_maps(
    models: Mapping[str, nn.Module], frames: Frames, target: int = 1, layer: str | None = None
) -> dict[str, np.ndarray]:
    """:func:`attribution_maps` of Grad-CAM."""
    return attribution_maps(models, frames, "gradcam", target, layer)
