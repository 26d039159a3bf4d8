"""The layer Grad-CAM attributes to: the model's feature stages, their map sizes, the default choice.

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
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from torch import nn

MIN_MAP_SIZE = 8


def is_token_model(model: nn.Module) -> bool:
    return hasattr(model, "patch_embed") and hasattr(model, "num_prefix_tokens")


def size_pair(size: int | Sequence[int]) -> tuple[int, int]:
    pair = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)[-2:]
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"input_size must be an int or (height, width), got {size!r}")
    return pair


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
    if is_token_model(model) and getattr(model, "global_pool", None) == "token":
        norm1 = f"{names[-1]}.norm1"
        if norm1 in dict(model.named_modules()):
            names[-1] = norm1
    return names


def token_grid(model: nn.Module, image_size: tuple[int, int]) -> tuple[int, int]:
    embed = model.patch_embed
    if getattr(model, "dynamic_img_size", False):
        return tuple(int(s) for s in embed.dynamic_feat_size(image_size))
    return tuple(int(s) for s in embed.grid_size)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside the block; every submodule's own train/eval flag restored afterwards."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def parameter_device(model: nn.Module, fallback: torch.device) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else fallback


def stage_sizes(model: nn.Module, input_size: int | Sequence[int], layers: Sequence[str] | None = None) -> pd.DataFrame:
    """Map size of each layer (default :func:`feature_stages`) for an input of ``input_size``.

    Measured with one forward pass of a blank image in eval mode (the model is left unchanged).
    Returns a DataFrame indexed by ``layer`` (shallow to deep) with ``depth`` (0, 1, …), ``height``
    and ``width``; a ViT's token layers report their patch grid.
    """
    size = size_pair(input_size)
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
        device=parameter_device(model, torch.device("cpu")),
        dtype=first.dtype if first is not None else torch.float32,
    )
    try:
        with eval_mode(model), torch.no_grad():
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
        elif len(shape) == 3 and is_token_model(model):
            height, width = token_grid(model, size)
        else:
            raise ValueError(f"layer {name!r} returned shape {shape}; expected a map [N, C, h, w] or ViT tokens")
        rows.append((name, depth, height, width))
    return pd.DataFrame(rows, columns=["layer", "depth", "height", "width"]).set_index("layer")


def model_input_size(model: nn.Module) -> tuple[int, int]:
    """The input size a timm backbone was designed for (``pretrained_cfg["input_size"]``), else 224 × 224."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return size_pair(cfg.get("input_size", (3, 224, 224)))


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
