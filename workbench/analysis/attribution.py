"""Grad-CAM saliency of a detector and how well it falls on the manipulated region.

:class:`GradCAM` wraps captum's ``LayerGradCam``: the maps are ReLU'd, upsampled bilinearly to the
input size and returned as ``[N, 1, H, W]``. The layer defaults to timm's last feature stage
(``model.feature_info[-1]``), so one call works across backbones:

- CNNs (ResNet, EfficientNet, Xception, …): the stage output is a ``[N, C, h, w]`` map. Many of
  these nets apply in-place ReLUs (or ``x += shortcut``) right after that output; captum's layer
  hook saves the output and hands a *clone* downstream, so the saved activations are never
  overwritten (tests check this against a reference on Xception's and ResNet's in-place layers).
- ViTs: a block returns tokens ``[N, T, C]``. A forward hook drops the ``num_prefix_tokens``
  (class/register tokens), reshapes the patch tokens to the patch grid and passes that map through
  a probe module that captum attributes to, then rebuilds the tokens. A ViT that classifies from
  its class token (``global_pool="token"``) gets no gradient at the last block's patch-token
  outputs (only the class token reaches the head after the last block), so the default layer there
  is the last block's ``norm1``: the tokens its attention mixes into the class token.

Localisation scores compare CAMs with manipulation masks: the share of CAM energy inside the mask
and the pointing game (is the CAM's maximum inside the mask?). :func:`gradcam_maps` and
:func:`localisation_table` do both for several models on :class:`workbench.data.frames.Frames`, each
model seeing the images standardised with its own backbone's statistics.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from workbench.data.frames import Frames
from workbench.models import input_normalization


def _is_token_model(model: nn.Module) -> bool:
    return hasattr(model, "patch_embed") and hasattr(model, "num_prefix_tokens")


def default_layer_name(model: nn.Module) -> str:
    """Name of the module Grad-CAM hooks by default: timm's last feature stage (see module docstring)."""
    info = getattr(model, "feature_info", None)
    if info is None:
        raise ValueError(
            f"{type(model).__name__} has no timm feature_info; pass the layer to GradCAM explicitly"
        )
    names = [entry["module"] for entry in info] if isinstance(info, list) else list(info.module_name())
    if not names:
        raise ValueError(f"{type(model).__name__}.feature_info is empty; pass the layer to GradCAM explicitly")
    name = names[-1]
    if _is_token_model(model) and getattr(model, "global_pool", None) == "token":
        norm1 = f"{name}.norm1"
        if norm1 in dict(model.named_modules()):
            return norm1
    return name


def _resolve_layer(model: nn.Module, layer: str | nn.Module | None) -> tuple[str, nn.Module]:
    modules = dict(model.named_modules())
    if layer is None:
        layer = default_layer_name(model)
    if isinstance(layer, str):
        if layer not in modules:
            raise ValueError(f"{type(model).__name__} has no submodule named {layer!r}")
        return layer, modules[layer]
    for name, module in modules.items():
        if module is layer:
            return name, module
    raise ValueError(f"layer {type(layer).__name__} is not a submodule of {type(model).__name__}")


class GradCAM:
    """Grad-CAM (Selvaraju et al., 2017) of ``model`` at ``layer`` (a module name, a module, or None).

    ``attribute`` runs the model in eval mode and restores every submodule's train/eval flag
    afterwards; gradients come from ``torch.autograd.grad`` inside captum, so no ``.grad`` is
    written to the parameters.
    """

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None) -> None:
        if getattr(model, "output_fmt", "NCHW") != "NCHW":
            raise ValueError(
                f"{type(model).__name__} emits {model.output_fmt} feature maps; GradCAM handles NCHW maps and ViT tokens"
            )
        self.model = model
        self.layer_name, self.layer = _resolve_layer(model, layer)
        self.tokens = _is_token_model(model)
        self._probe = nn.Identity()

    def __repr__(self) -> str:
        return f"GradCAM({type(self.model).__name__}, layer={self.layer_name!r})"

    def _grid_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        embed = self.model.patch_embed
        if getattr(self.model, "dynamic_img_size", False):
            return tuple(embed.dynamic_feat_size(image_size))
        return tuple(embed.grid_size)

    @contextmanager
    def _token_grid(self, image_size: tuple[int, int]) -> Iterator[nn.Module]:
        """Yield the module captum should hook: the layer itself, or a probe that sees tokens as a map."""
        if not self.tokens:
            yield self.layer
            return
        prefix = self.model.num_prefix_tokens
        height, width = self._grid_size(image_size)

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
        """CAMs ``[N, 1, H, W]`` (non-negative) for class ``target`` (1 = fake) of images ``x`` ``[N, 3, H, W]``.

        ``normalize=True`` scales each map by its maximum to [0, 1] (an all-zero map stays zero).
        """
        if x.dim() != 4:
            raise ValueError(f"x must be a batch of images [N, C, H, W], got shape {tuple(x.shape)}")
        first = next(self.model.parameters(), None)
        device = first.device if first is not None else x.device
        inputs = x.detach().to(device).requires_grad_(True)
        if isinstance(target, torch.Tensor):
            target = target.to(device)
        image_size = (int(x.shape[-2]), int(x.shape[-1]))
        flags = [(module, module.training) for module in self.model.modules()]
        self.model.eval()
        try:
            with torch.enable_grad(), self._token_grid(image_size) as layer:
                cams = LayerGradCam(self.model, layer).attribute(inputs, target=target, relu_attributions=True)
        finally:
            for module, flag in flags:
                module.training = flag
        cams = LayerAttribution.interpolate(cams.detach(), image_size, interpolate_mode="bilinear")
        if normalize:
            peak = cams.amax(dim=(1, 2, 3), keepdim=True)
            cams = cams / torch.where(peak > 0, peak, torch.ones_like(peak))
        return cams


def _as_maps(values: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3:
        raise ValueError(f"{name} must be [N, 1, H, W] or [N, H, W], got shape {array.shape}")
    return array.astype(np.float64)


def localisation_scores(
    cams: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray, threshold: float = 0.5
) -> pd.DataFrame:
    """Per-image agreement between CAMs and manipulation masks (same H×W; masks in [0, 1]).

    Masks are binarised at ``threshold`` (soft blending masks included). Columns:
    ``energy_in_mask`` = Σ CAM·mask / Σ CAM; ``pointing_hit`` = the share of the CAM's maximum
    pixels that lie in the mask: 1 or 0 for a single peak, the hit probability under a random choice
    among tied maxima (an upsampled coarse CAM has a plateau of them); ``mask_fraction`` = share of
    pixels in the mask (what a uniform CAM would score on energy); ``reason`` says why the scores are
    NaN (an all-zero CAM or an empty mask, e.g. a real face) and is missing otherwise.
    """
    cam_maps, mask_maps = _as_maps(cams, "cams"), _as_maps(masks, "masks")
    if cam_maps.shape != mask_maps.shape:
        raise ValueError(f"cams have shape {cam_maps.shape} but masks have shape {mask_maps.shape}")
    if (cam_maps < 0).any():
        raise ValueError(f"cams must be non-negative (Grad-CAM is ReLU'd); minimum is {cam_maps.min()}")
    if mask_maps.min() < 0 or mask_maps.max() > 1:
        raise ValueError(f"masks must lie in [0, 1], got values in [{mask_maps.min()}, {mask_maps.max()}]")
    inside = mask_maps >= threshold
    rows = []
    for index, (cam, region) in enumerate(zip(cam_maps, inside)):
        total, fraction = cam.sum(), float(region.mean())
        reason = "CAM is zero everywhere" if total == 0 else "mask is empty" if not region.any() else None
        if reason is not None:
            rows.append((index, np.nan, np.nan, fraction, reason))
            continue
        peaks = cam == cam.max()
        rows.append((index, float(cam[region].sum() / total), float(region[peaks].mean()), fraction, None))
    frame = pd.DataFrame(rows, columns=["image", "energy_in_mask", "pointing_hit", "mask_fraction", "reason"])
    return frame.set_index("image")


def localisation_by_domain(
    cams: torch.Tensor | np.ndarray,
    masks: torch.Tensor | np.ndarray,
    domains: Sequence[str],
    threshold: float = 0.5,
) -> pd.DataFrame:
    """Mean localisation scores per domain (index), over the images where they are defined.

    Columns: ``energy_in_mask``, ``pointing_game`` (share of hits), ``mask_fraction`` (the chance
    level, averaged over the same images as the scores), ``n`` (images) and ``n_undefined`` (images
    skipped from the means, with the reason in :func:`localisation_scores`).
    """
    scores = localisation_scores(cams, masks, threshold)
    domains = [str(domain) for domain in domains]
    if len(domains) != len(scores):
        raise ValueError(f"{len(domains)} domain names for {len(scores)} CAMs")
    scores["domain"] = domains
    grouped = scores.groupby("domain", sort=False)
    return pd.DataFrame(
        {
            "energy_in_mask": grouped["energy_in_mask"].mean(),
            "pointing_game": grouped["pointing_hit"].mean(),
            "mask_fraction": scores["mask_fraction"].where(scores["reason"].isna()).groupby(scores["domain"], sort=False).mean(),
            "n": grouped.size(),
            "n_undefined": grouped["reason"].count(),
        }
    )


def gradcam_maps(
    models: Mapping[str, nn.Module], frames: Frames, target: int = 1, layer: str | None = None
) -> dict[str, np.ndarray]:
    """Each model's Grad-CAM of class ``target`` (1 = fake) on ``frames``, ``{name: [N, H, W]}`` in [0, 1].

    Each model sees the frames standardised with its own backbone's statistics, as in training.
    """
    return {name: GradCAM(model, layer).attribute(frames.inputs(*input_normalization(model)), target=target,
                                                  normalize=True)[:, 0].cpu().numpy()
            for name, model in models.items()}


def localisation_table(cams: Mapping[str, np.ndarray], frames: Frames, threshold: float = 0.5) -> pd.DataFrame:
    """Per model and domain: CAM energy inside the manipulation mask, pointing game and mask area."""
    tables = [localisation_by_domain(maps, frames.masks, frames.domains, threshold).assign(algorithm=name)
              for name, maps in cams.items()]
    table = pd.concat(tables).reset_index().rename(columns={"index": "domain"})
    return table[["algorithm", "domain", "energy_in_mask", "pointing_game", "mask_fraction", "n", "n_undefined"]]
