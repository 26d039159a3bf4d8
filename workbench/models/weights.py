"""timm's pretrained weights: loaded through timm (Hugging Face cache, ``HF_HUB_OFFLINE``), fetched ahead of
time for offline machines, or placed in the cache from a file the user already has.

timm keeps each model's weights either on the Hugging Face Hub (``pretrained_cfg["hf_hub_id"]``, cached
under ``$HF_HOME/hub``) or at a URL (cached under ``$TORCH_HOME/hub/checkpoints``). Compute nodes are often
offline: ``python -m workbench weights fetch NAME`` on a machine with internet fills the shared cache;
``weights import NAME FILE`` puts a downloaded file where timm's offline loading finds it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

CACHE_REVISION = "0" * 40  # the commit an imported file is filed under in the Hugging Face cache


class PretrainedWeightsError(ValueError):
    """Pretrained weights that cannot be loaded (offline without a cached copy, unknown source); one line that
    says what to do."""


def pretrained_source(name: str) -> tuple[str, str]:
    """Where timm keeps ``name``'s default pretrained weights: ``("hf", "<org>/<repo>")`` or ``("url", url)``."""
    with torch.device("meta"):
        cfg = timm.create_model(name, pretrained=False).pretrained_cfg
    if cfg.get("hf_hub_id"):
        return "hf", cfg["hf_hub_id"]
    if cfg.get("url"):
        return "url", cfg["url"]
    raise PretrainedWeightsError(
        f"timm model {name!r} has no pretrained weights (its pretrained_cfg names no "
        "Hugging Face repository or URL); set model.pretrained to a local weights file"
    )


def load_pretrained(name: str, num_classes: int = 2, **kwargs: Any) -> nn.Module:
    """``timm.create_model(name, pretrained=True)`` with ``num_classes`` logits (the classifier is freshly
    initialised); the weights come from timm's cache, or are downloaded unless the hub is offline."""
    try:
        return timm.create_model(name, pretrained=True, num_classes=num_classes, **kwargs)
    except (OSError, RuntimeError, ValueError) as exc:
        kind, where = pretrained_source(name)
        cache = "the Hugging Face cache ($HF_HOME/hub)" if kind == "hf" else "torch's hub cache ($TORCH_HOME/hub)"
        raise PretrainedWeightsError(
            f"model.pretrained: cannot load timm's weights of {name!r} ({where}) from {cache}: the hub is offline "
            f"or unreachable and there is no cached copy ({type(exc).__name__}); run `python -m workbench weights "
            f"fetch {name}` where there is internet, or `weights import {name} FILE` with a copy you have, or set "
            "model.pretrained to a local weights file"
        ) from None


def fetch(name: str) -> Path:
    """Download ``name``'s pretrained weights into timm's cache (a no-op when cached); return the cached file."""
    timm.create_model(name, pretrained=True)
    return cached_file(name)


def cached_file(name: str) -> Path:
    """The cached file of ``name``'s pretrained weights; ``FileNotFoundError`` naming where it was looked for."""
    kind, where = pretrained_source(name)
    if kind == "url":
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(where).name
        if path.is_file():
            return path
        raise FileNotFoundError(f"{path} does not exist: {name!r}'s weights are not cached")
    from huggingface_hub import try_to_load_from_cache

    repo, _, revision = where.partition("@")
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename, revision=revision or None)
        if isinstance(found, str):
            return Path(found)
    raise FileNotFoundError(f"{name!r}'s weights ({where}) are not in the Hugging Face cache")


def import_file(name: str, file: str | Path) -> Path:
    """Place a weights file the user already has where timm's offline loading of ``name`` finds it; return it.

    The file must be the checkpoint timm would download (``model.safetensors`` or ``pytorch_model.bin``
    of the Hugging Face repository, or the file at the model's URL); it is checked by loading it into
    the model before it is copied.
    """
    file = Path(file).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"weights file {str(file)!r} does not exist")
    model = timm.create_model(name, pretrained=False)
    try:
        missing, unexpected = model.load_state_dict(timm.models.load_state_dict(str(file)), strict=False)
    except RuntimeError as exc:  # shapes that do not fit
        why = str(exc).strip().splitlines()[-1].strip()
        raise PretrainedWeightsError(f"{file} is not a checkpoint of timm model {name!r} ({why})") from None
    if missing or unexpected:
        raise PretrainedWeightsError(
            f"{file} is not a checkpoint of timm model {name!r}: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    kind, where = pretrained_source(name)
    if kind == "url":
        target = Path(torch.hub.get_dir()) / "checkpoints" / Path(where).name
    else:
        from huggingface_hub import constants

        repo, _, revision = where.partition("@")
        folder = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
        commit = revision if len(revision) == 40 else CACHE_REVISION
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / (revision or "main")).write_text(commit)
        filename = "model.safetensors" if file.suffix == ".safetensors" else "pytorch_model.bin"
        target = folder / "snapshots" / commit / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file, target)
    return target
