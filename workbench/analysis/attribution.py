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

**Which layer.** Grad-CAM needs a layer, and its map has that layer's resolution: a stride-32 stage
sees a 64 px face as 2 × 2 cells, which cannot point at a blended region. :func:`feature_stages`
lists the candidate layers (timm's ``feature_info`` stages, shallow to deep) and
:func:`stage_sizes` measures their map sizes at an input size; :func:`default_layer_name` picks the
**deepest stage whose map is at least** :data:`MIN_MAP_SIZE` **(8) cells on its shorter side** — the
most semantic layer that still resolves a face region — or, when no stage is that large (a small
ViT input), the stage with the largest map. Naming a layer overrides the rule.

Notes on layers:

- CNNs (ResNet, EfficientNet, Xception, …): the stage output is a ``[N, C, h, w]`` map. Many of
  these nets apply in-place ReLUs (or ``x += shortcut``) right after that output; captum's layer
  hook saves the output and hands a *clone* downstream, so the saved activations are never
  overwritten (tests check this against a reference on Xception's and ResNet's in-place layers).
- ViTs: a block returns tokens ``[N, T, C]``. A forward hook drops the ``num_prefix_tokens``
  (class/register tokens), reshapes the patch tokens to the patch grid and passes that map through
  a probe module that captum attributes to, then rebuilds the tokens. A ViT that classifies from
  its class token (``global_pool="token"``) gets no gradient at the last block's patch-token
  outputs (only the class token reaches the head after the last block), so its last stage is the
  last block's ``norm1``: the tokens its attention mixes into the class token.

**Scores.** :func:`localisation_scores` compares maps with manipulation masks: the share of the map's
energy inside the mask and the pointing game (is the map's maximum inside the mask?). A uniform map
scores the mask's area share on both (the chance level). :func:`localisation_by_depth` scores Grad-CAM
at every stage and :func:`compare_methods` every method, on :class:`workbench.data.frames.Frames`,
each model seeing the images standardised with its own backbone's statistics.

**Controls.** Beating the uniform map is a low bar: a network's maps follow image structure (faces,
edges) whether or not it learned anything. :func:`untrained_twin` builds the same architecture with
random weights — the model-randomisation test of Adebayo et al. (2018); a detector's localisation
means something where it clearly beats its untrained twin's.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from captum.attr import GuidedGradCam, IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion, Saliency
from torch import nn

from workbench.data.frames import Frames
from workbench.models import create_model, input_normalization

MIN_MAP_SIZE = 8
METHODS: tuple[str, ...] = ("gradcam", "guided_gradcam", "integrated_gradients", "saliency", "occlusion")
LAYER_METHODS: tuple[str, ...] = ("gradcam", "guided_gradcam")
SCORE_COLUMNS: tuple[str, ...] = ("energy_in_mask", "pointing_game", "mask_fraction")


def _is_token_model(model: nn.Module) -> bool:
    return hasattr(model, "patch_embed") and hasattr(model, "num_prefix_tokens")


def _size_pair(size: int | Sequence[int]) -> tuple[int, int]:
    pair = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)[-2:]
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"input_size must be an int or (height, width), got {size!r}")
    return pair


def untrained_twin(model_config: Mapping[str, object], seed: int = 0) -> nn.Module:
    """A run's architecture (config ``model`` section: ``name``, ``kwargs``) with random weights, in eval mode.

    Drawn from a generator seeded by ``seed``, so the global random state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(str(model_config["name"]), pretrained=False, **dict(model_config.get("kwargs") or {}))
    return model.eval()


def feature_stages(model: nn.Module) -> list[str]:
    """Module names of timm's feature stages, shallow to deep: the layers Grad-CAM is offered at.

    A class-token ViT's last stage is its last block's ``norm1`` (see the module docstring).
    """
    info = getattr(model, "feature_info", None)
    if info is None:
        raise ValueError(f"{type(model).__name__} has no timm feature_info; pass the layer to attribute to explicitly")
    names = [entry["module"] for entry in info] if isinstance(info, list) else list(info.module_name())
    if not names:
        raise ValueError(f"{type(model).__name__}.feature_info is empty; pass the layer to attribute to explicitly")
    if _is_token_model(model) and getattr(model, "global_pool", None) == "token":
        norm1 = f"{names[-1]}.norm1"
        if norm1 in dict(model.named_modules()):
            names[-1] = norm1
    return names


def _token_grid(model: nn.Module, image_size: tuple[int, int]) -> tuple[int, int]:
    embed = model.patch_embed
    if getattr(model, "dynamic_img_size", False):
        return tuple(int(s) for s in embed.dynamic_feat_size(image_size))
    return tuple(int(s) for s in embed.grid_size)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside the block; every submodule's own train/eval flag restored afterwards."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def _device(model: nn.Module, fallback: torch.device) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else fallback


def stage_sizes(model: nn.Module, input_size: int | Sequence[int], layers: Sequence[str] | None = None) -> pd.DataFrame:
    """Map size of each layer (default :func:`feature_stages`) for an input of ``input_size``.

    Measured with one forward pass of a blank image in eval mode (the model is left unchanged).
    Returns a DataFrame indexed by ``layer`` (shallow to deep) with ``depth`` (0, 1, …), ``height``
    and ``width``; a ViT's token layers report their patch grid.
    """
    size = _size_pair(input_size)
    layers = feature_stages(model) if layers is None else list(layers)
    modules = dict(model.named_modules())
    for name in layers:
        if name not in modules:
            raise ValueError(unknown_layer_message(model, name))
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            shapes.setdefault(name, tuple(output.shape))

        return hook

    handles = [modules[name].register_forward_hook(record(name)) for name in layers]
    first = next(model.parameters(), None)
    blank = torch.zeros(
        1,
        3,
        *size,
        device=_device(model, torch.device("cpu")),
        dtype=first.dtype if first is not None else torch.float32,
    )
    try:
        with _eval_mode(model), torch.no_grad():
            model(blank)
    finally:
        for handle in handles:
            handle.remove()
    rows = []
    for depth, name in enumerate(layers):
        shape = shapes.get(name)
        if shape is None:
            raise ValueError(f"layer {name!r} of {type(model).__name__} was not called in the forward pass")
        if len(shape) == 4:
            height, width = shape[2], shape[3]
        elif len(shape) == 3 and _is_token_model(model):
            height, width = _token_grid(model, size)
        else:
            raise ValueError(f"layer {name!r} returned shape {shape}; expected a map [N, C, h, w] or ViT tokens")
        rows.append((name, depth, height, width))
    return pd.DataFrame(rows, columns=["layer", "depth", "height", "width"]).set_index("layer")


def model_input_size(model: nn.Module) -> tuple[int, int]:
    """The input size a timm backbone was designed for (``pretrained_cfg["input_size"]``), else 224 × 224."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return _size_pair(cfg.get("input_size", (3, 224, 224)))


def default_layer_name(
    model: nn.Module, input_size: int | Sequence[int] | None = None, min_size: int = MIN_MAP_SIZE
) -> str:
    """The layer Grad-CAM uses by default: the deepest feature stage whose map has at least ``min_size``
    cells on its shorter side at ``input_size`` (default: the backbone's design size); when none
    has, the stage with the largest map (the deepest of equals).
    """
    sizes = stage_sizes(model, model_input_size(model) if input_size is None else input_size)
    short = sizes[["height", "width"]].min(axis=1)
    large_enough = short[short >= min_size]
    if len(large_enough):
        return str(large_enough.index[-1])
    return str(short[short == short.max()].index[-1])


def chosen_layers(
    models: Mapping[str, nn.Module], input_size: int | Sequence[int], layer: str | None = None
) -> pd.DataFrame:
    """The layer each model's Grad-CAM uses at ``input_size`` (``layer``, or the default rule) and its map size.

    One row per model (index ``algorithm``): ``layer``, ``height``, ``width``, ``default`` (chosen by
    :func:`default_layer_name`).
    """
    rows = []
    for name, model in models.items():
        chosen = default_layer_name(model, input_size) if layer is None else resolve_layer(model, layer)[0]
        size = stage_sizes(model, input_size, [chosen]).iloc[0]
        rows.append((name, chosen, int(size["height"]), int(size["width"]), layer is None))
    return pd.DataFrame(rows, columns=["algorithm", "layer", "height", "width", "default"]).set_index("algorithm")


def unknown_layer_message(model: nn.Module, layer: str) -> str:
    """``model`` has no module ``layer``: the message lists the stages one can name instead."""
    try:
        stages = ", ".join(feature_stages(model))
    except ValueError:
        stages = ", ".join(name for name, _ in model.named_children())
    return (
        f"{type(model).__name__} has no submodule named {layer!r}; its feature stages are {stages} "
        "(any name from model.named_modules() works)"
    )


def resolve_layer(
    model: nn.Module, layer: str | nn.Module | None, input_size: int | Sequence[int] | None = None
) -> tuple[str, nn.Module]:
    """``(name, module)`` of ``layer``: a module name, a submodule, or None for :func:`default_layer_name`."""
    modules = dict(model.named_modules())
    if layer is None:
        layer = default_layer_name(model, input_size)
    if isinstance(layer, str):
        if layer not in modules:
            raise ValueError(unknown_layer_message(model, layer))
        return layer, modules[layer]
    for name, module in modules.items():
        if module is layer:
            return name, module
    raise ValueError(f"layer {type(layer).__name__} is not a submodule of {type(model).__name__}")


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
        self.tokens = _is_token_model(model)
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
        height, width = _token_grid(self.model, image_size)

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
        device = _device(self.model, x.device)
        inputs = x.detach().to(device).requires_grad_(True)
        target = _target(target, device)
        image_size = (int(x.shape[-2]), int(x.shape[-1]))
        with _eval_mode(self.model), torch.enable_grad(), self._hooked_layer(image_size) as layer:
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
    device = _device(model, x.device)
    inputs = x.detach().to(device).requires_grad_(True)
    target = _target(target, device)
    with _eval_mode(model), torch.enable_grad():
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
    """Per-image agreement between maps and manipulation masks (same H×W; masks in [0, 1]).

    Masks are binarised at ``threshold`` (soft blending masks included). Columns:
    ``energy_in_mask`` = Σ map·mask / Σ map; ``pointing_hit`` = the share of the map's maximum
    pixels that lie in the mask: 1 or 0 for a single peak, the hit probability under a random choice
    among tied maxima (an upsampled coarse CAM has a plateau of them); ``mask_fraction`` = share of
    pixels in the mask (what a uniform map scores on both); ``reason`` says why the scores are
    NaN (an all-zero map or an empty mask, e.g. a real face) and is missing otherwise.
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
    level of both, averaged over the same images as the scores), ``n`` (images) and ``n_undefined``
    (images skipped from the means, with the reason in :func:`localisation_scores`).
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
            "mask_fraction": scores["mask_fraction"]
            .where(scores["reason"].isna())
            .groupby(scores["domain"], sort=False)
            .mean(),
            "n": grouped.size(),
            "n_undefined": grouped["reason"].count(),
        }
    )


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


def localisation_table(cams: Mapping[str, np.ndarray], frames: Frames, threshold: float = 0.5) -> pd.DataFrame:
    """Per model and domain: map energy inside the manipulation mask, pointing game and mask area."""
    tables = [
        localisation_by_domain(maps, frames.masks, frames.domains, threshold).assign(algorithm=name)
        for name, maps in cams.items()
    ]
    table = pd.concat(tables).reset_index().rename(columns={"index": "domain"})
    return table[["algorithm", "domain", *SCORE_COLUMNS, "n", "n_undefined"]]


def localisation_by_depth(
    models: Mapping[str, nn.Module],
    frames: Frames,
    layers: Sequence[str] | None = None,
    target: int = 1,
    threshold: float = 0.5,
) -> pd.DataFrame:
    """Grad-CAM localisation of every model at every layer (default: each model's :func:`feature_stages`).

    One row per model, layer and domain: ``algorithm``, ``layer``, ``depth`` (0 = shallowest),
    ``height``, ``width`` (the layer's map at the frames' size), ``domain`` and the columns of
    :func:`localisation_by_domain`.
    """
    size = tuple(frames.images.shape[-2:])
    tables = []
    for name, model in models.items():
        sizes = stage_sizes(model, size, layers)
        x = frames.inputs(*input_normalization(model))
        for layer, stage in sizes.iterrows():
            maps = GradCAM(model, layer).attribute(x, target)[:, 0].cpu().numpy()
            scores = localisation_by_domain(maps, frames.masks, frames.domains, threshold)
            tables.append(
                scores.rename_axis("domain")
                .reset_index()
                .assign(
                    algorithm=name,
                    layer=layer,
                    depth=int(stage["depth"]),
                    height=int(stage["height"]),
                    width=int(stage["width"]),
                )
            )
    table = pd.concat(tables, ignore_index=True)
    return table[["algorithm", "layer", "depth", "height", "width", "domain", *SCORE_COLUMNS, "n", "n_undefined"]]


@dataclass
class MethodComparison:
    """What :func:`compare_methods` returns.

    ``maps``: ``{method: {algorithm: [N, H, W]}}`` in [0, 1]; ``table``: one row per algorithm,
    method and domain with the scores of :func:`localisation_by_domain` and ``seconds_per_image``
    (wall time of the method on all frames / N, the same for every domain of a row's model and method).
    """

    maps: dict[str, dict[str, np.ndarray]]
    table: pd.DataFrame


def compare_methods(
    models: Mapping[str, nn.Module],
    frames: Frames,
    methods: Sequence[str] = ("gradcam", "guided_gradcam", "integrated_gradients", "occlusion"),
    layer: str | None = None,
    target: int = 1,
    threshold: float = 0.5,
    options: AttributionOptions = AttributionOptions(),
) -> MethodComparison:
    """Every method's maps of every model on ``frames``, scored against the masks and timed.

    ``layer`` applies to the layer methods (None: each model's :func:`default_layer_name`).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown attribution method(s) {unknown}; choose from {list(METHODS)}")
    maps: dict[str, dict[str, np.ndarray]] = {method: {} for method in methods}
    tables = []
    for name, model in models.items():
        x = frames.inputs(*input_normalization(model))
        for method in methods:
            started = time.perf_counter()
            values = (
                attribute(
                    model,
                    x,
                    method,
                    target,
                    layer if method in LAYER_METHODS else None,
                    normalize=True,
                    options=options,
                )[:, 0]
                .cpu()
                .numpy()
            )
            seconds = (time.perf_counter() - started) / len(x)
            maps[method][name] = values
            scores = localisation_by_domain(values, frames.masks, frames.domains, threshold)
            tables.append(
                scores.rename_axis("domain")
                .reset_index()
                .assign(algorithm=name, method=method, seconds_per_image=seconds)
            )
    table = pd.concat(tables, ignore_index=True)
    return MethodComparison(
        maps, table[["algorithm", "method", "domain", *SCORE_COLUMNS, "n", "n_undefined", "seconds_per_image"]]
    )


def mean_over_domains(table: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Scores averaged over domains (each domain weighs the same) per ``by`` group, in order of appearance.

    Keeps the first value of any other column that is constant within a group (e.g. ``depth``,
    ``height``, ``seconds_per_image``); ``domains`` counts the domains with a defined score.
    """
    missing = [c for c in [*by, "domain", *SCORE_COLUMNS] if c not in table.columns]
    if missing:
        raise ValueError(f"the localisation table needs column(s) {missing}; have {list(table.columns)}")
    grouped = table.groupby(list(by), sort=False)
    means = grouped[list(SCORE_COLUMNS)].mean()
    means["domains"] = grouped["energy_in_mask"].count()
    constant = [
        c
        for c in table.columns
        if c not in (*by, "domain", *SCORE_COLUMNS, "n", "n_undefined")
        and (grouped[c].nunique(dropna=False) <= 1).all()
    ]
    return means.join(grouped[constant].first()).reset_index()
