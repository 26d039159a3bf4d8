"""How well attribution maps fall on the manipulated region, against chance and an untrained control.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from workbench.analysis.attribution import LAYER_METHODS, METHODS, AttributionOptions, GradCAM, attribute
from workbench.analysis.attribution_layers import stage_sizes
from workbench.data.frames import Frames
from workbench.models import create_model, input_normalization

SCORE_COLUMNS: tuple[str, ...] = ("energy_in_mask", "pointing_game", "mask_fraction")


def untrained_twin(model_config: Mapping[str, object], seed: int = 0) -> nn.Module:
    """A run's architecture (config ``model`` section: ``name``, ``kwargs``) with random weights, in eval mode.

    Drawn from a generator seeded by ``seed``, so the global random state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(str(model_config["name"]), pretrained=False, **dict(model_config.get("kwargs") or {}))
    return model.eval()


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
    options: AttributionOptions | None = None,
) -> MethodComparison:
    """Every method's maps of every model on ``frames``, scored against the masks and timed.

    ``layer`` applies to the layer methods (None: each model's :func:`default_layer_name`).
    """
    options = options or AttributionOptions()
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
