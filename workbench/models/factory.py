"""Build timm backbones with a 2-logit (real, fake) head.

``pretrained`` is ``False``, ``True`` (timm's own weights, through timm: from its cache, downloaded
unless ``HF_HUB_OFFLINE`` is set; see :mod:`workbench.models.weights`) or a path to a local weights
file (``.safetensors``, ``.pth``, ``.bin``, or a checkpoint holding one under ``state_dict``/``model``).
A local file must match the architecture: a classifier whose shape differs from ``num_classes``
(ImageNet's 1000 classes) is left at its fresh initialisation, and any other missing or unexpected key
is an error, so a truncated or wrongly prefixed file never trains silently from random weights.
DeepfakeBench's Xception and EfficientNet-B4 detector checkpoints load into ``deepfakebench_xception`` and
``deepfakebench_efficientnet_b4`` (:mod:`workbench.models.deepfakebench`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from workbench.models.deepfakebench import CHECKPOINT_CONVERTERS, detector_layout
from workbench.models.weights import load_pretrained

KEYS_SHOWN = 5


def load_pretrained_file(path: str | Path) -> Path:
    """Check that a local weights file exists and return it as a Path."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file {str(path)!r} does not exist")
    return path


def create_model(
    name: str,
    pretrained: bool | str | Path = False,
    num_classes: int = 2,
    **kwargs: Any,
) -> nn.Module:
    """Create a timm model by name with ``num_classes`` logits (2 = real/fake by default).

    ``pretrained``: ``False`` for random initialisation, ``True`` for timm's pretrained weights, or a
    local weights file. Extra keyword arguments go to :func:`timm.create_model` (e.g. ``drop_rate``,
    ``img_size`` for ViTs).
    """
    if name not in timm.list_models() and not timm.is_model(name):
        raise ValueError(f"unknown timm model {name!r}")
    if pretrained is True:
        return load_pretrained(name, num_classes=num_classes, **kwargs)
    model = timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
    if pretrained:
        load_weights(model, load_pretrained_file(pretrained))
    return model


def _classifier_keys(model: nn.Module) -> set[str]:
    names = model.pretrained_cfg.get("classifier") or ()
    names = (names,) if isinstance(names, str) else names
    return {f"{name}.{part}" for name in names for part in ("weight", "bias")}


def _listing(keys: list[str]) -> str:
    more = f" (and {len(keys) - KEYS_SHOWN} more)" if len(keys) > KEYS_SHOWN else ""
    return f"{len(keys)} {keys[:KEYS_SHOWN]}{more}"


def load_weights(model: nn.Module, path: Path) -> None:
    """Load a local weights file into a timm ``model``; every key must match except a classifier for another
    number of classes (left at its fresh initialisation; never a DeepfakeBench detector's head).

    A DeepfakeBench detector checkpoint is converted for its registered model
    (:mod:`workbench.models.deepfakebench`; refused, naming that model, for any other); otherwise the timm
    module's ``checkpoint_filter_fn`` (original-format checkpoints, where timm has one) is applied first.
    Raises ``ValueError`` naming the file and the missing/unexpected keys or those whose shapes differ.
    """
    state = timm.models.load_state_dict(str(path))
    architecture = model.pretrained_cfg.get("architecture", "?")
    layout = detector_layout(state)
    if layout is not None and layout != architecture:
        raise ValueError(
            f"weights file {str(path)!r} is a DeepfakeBench detector checkpoint of the {layout} layout; "
            f"set the model name to {layout!r} (not {architecture!r}) to load it as DeepfakeBench "
            "computes it"
        )
    filter_fn = CHECKPOINT_CONVERTERS.get(architecture) or getattr(
        sys.modules[type(model).__module__], "checkpoint_filter_fn", None
    )
    if filter_fn is not None:
        state = filter_fn(state, model)
    own = model.state_dict()
    # a classifier for another number of classes (ImageNet's 1000) is left fresh; a detector's head never is
    resized = (
        set()
        if layout is not None
        else {
            k
            for k in _classifier_keys(model)
            if k in state
            and k in own
            and state[k].shape[0] != own[k].shape[0]
            and state[k].shape[1:] == own[k].shape[1:]
        }
    )
    for key in resized:
        del state[key]
    reshaped = [
        f"{k} {tuple(v.shape)} (model {tuple(own[k].shape)})"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if reshaped:
        raise ValueError(
            f"weights file {str(path)!r} does not match timm model {architecture}: "
            f"shapes differ for {_listing(reshaped)}"
        )
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in resized]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"weights file {str(path)!r} does not match timm model {type(model).__name__} "
            f"({architecture}): missing {_listing(missing)}, "
            f"unexpected {_listing(result.unexpected_keys)}"
        )


def penultimate_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pooled features that feed the classifier (timm ``forward_features`` + ``forward_head(pre_logits)``)."""
    features = model.forward_features(x)
    return model.forward_head(features, pre_logits=True)


def classifier_split(model: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]:
    """``(featurize, classifier)`` with ``classifier(featurize(x)) == model(x)``.

    For a timm model, ``featurize`` is :func:`penultimate_features` and ``classifier`` is
    ``model.get_classifier()``; for an ``nn.Sequential``, all layers but the last, and the last.
    Methods that regularise features (CORAL, MMD) or per-sample classifier gradients (Fishr) use it.
    """
    if hasattr(model, "forward_features") and hasattr(model, "get_classifier"):
        return (lambda x: penultimate_features(model, x)), model.get_classifier()
    if isinstance(model, nn.Sequential) and len(model) >= 2:
        return model[:-1], model[-1]
    raise TypeError(
        f"cannot split {type(model).__name__} into features and classifier: it is neither a timm "
        "model (forward_features/get_classifier) nor an nn.Sequential"
    )


def input_normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel (mean, std) the backbone's pretrained weights expect (timm ``pretrained_cfg``).

    ImageNet statistics for most models; 0.5/0.5 for e.g. ``legacy_xception`` or Inception-style nets.
    """
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean = tuple(float(v) for v in cfg.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(float(v) for v in cfg.get("std", (0.229, 0.224, 0.225)))
    return mean, std


def backbone_normalization(name: str, **kwargs: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """:func:`input_normalization` of a named backbone, read without allocating its weights.

    The model is built on PyTorch's ``meta`` device, so this is cheap even for large backbones; use it
    where images must be prepared for a model that is not loaded yet (analysis batches of a run).
    """
    if name not in timm.list_models() and not timm.is_model(name):
        raise ValueError(f"unknown timm model {name!r}")
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False, **kwargs)
    return input_normalization(model)
