"""Why runs generalise, in one table: alignment, sharpness and Grad-CAM localisation of each selected model.

For every run directory the model its ``selection`` rule picked (default ``best_source_val.pt``;
``train.checkpoint_rules`` keeps the others) is analysed on data drawn
from the run's own manifest with a fixed seed, so runs of one protocol are measured on the same
images:

- **alignment** (:func:`workbench.analysis.alignment_summary`) on one batch per source domain
  (``split``, ``per_domain`` images, half fakes, half reals): mean cos(g_k, g), mean cos(g_k^p, g) at
  the ascent points, and the share of domain pairs with conflicting gradients;
- **ε-sharpness** (:func:`workbench.analysis.sharpness_per_domain`) of each source domain's loss on
  the same batches at ``rho``, and its mean;
- **localisation** (:func:`workbench.analysis.attribution.gradcam_maps` of the fake logit against the
  manipulation masks): energy inside the mask, pointing game and the mask's area share (what a
  uniform map would score), per domain that has masks, on ``localisation_per_domain`` fakes of
  ``localisation_split``; means over the source and over the held-out domains. ``gradcam_layer``
  defaults to the deepest feature stage whose map is at least 8 × 8 at the run's image size
  (:func:`workbench.analysis.attribution_layers.default_layer_name`; the last stage of a stride-32 network
  sees a 64 px face as 2 × 2 cells, too coarse to point at a blended region); the layer used and its
  map size are the ``gradcam_layer`` and ``gradcam_map`` columns. Domains without any mask are listed
  in ``no_masks`` rather than dropped silently.

Everything runs in eval mode and leaves the models unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.analysis.attribution import gradcam_maps
from workbench.analysis.attribution_layers import chosen_layers
from workbench.analysis.batches import analysis_batches
from workbench.analysis.gradients import alignment_summary
from workbench.analysis.localisation import localisation_by_domain
from workbench.analysis.sharpness import sharpness_per_domain
from workbench.data.frames import load_frames, pick_frames
from workbench.training.collect import config_variants, expand_sweeps, read_config, run_complete
from workbench.training.runs import CHECKPOINT_SELECTIONS, load_run_model, run_manifest, selected_checkpoint

SUMMARY_COLUMNS = (
    "cos_clean_mean",
    "cos_perturbed_mean",
    "conflict_rate",
    "sharpness_mean",
    "energy_in_mask_source",
    "energy_in_mask_target",
    "pointing_game_source",
    "pointing_game_target",
    "mask_fraction_source",
    "mask_fraction_target",
)
# Runs are pooled over seeds only: one summary row per algorithm, backbone and config variant.
SUMMARY_KEYS: tuple[str, ...] = ("algorithm", "backbone", "variant")


@dataclass(frozen=True)
class AnalysisSettings:
    """What is measured and on which images (the same for every run analysed together)."""

    split: str = "val"
    per_domain: int = 16
    rho: float = 0.05
    alpha: float = 0.001
    localisation_split: str = "test"
    localisation_per_domain: int = 16
    mask_threshold: float = 0.5
    gradcam_layer: str | None = None
    seed: int = 0
    device: str = "cpu"
    selection: str = "source_val"

    def __post_init__(self) -> None:
        if self.selection not in CHECKPOINT_SELECTIONS:
            raise ValueError(f"selection={self.selection!r} must be one of {list(CHECKPOINT_SELECTIONS)}")
        if self.per_domain < 2 or self.localisation_per_domain < 1:
            raise ValueError(
                f"per_domain={self.per_domain} must be >= 2 and localisation_per_domain="
                f"{self.localisation_per_domain} >= 1"
            )
        if self.rho <= 0:
            raise ValueError(f"rho={self.rho} must be positive")


def localisation(
    model: torch.nn.Module,
    config: dict[str, Any],
    manifest: pd.DataFrame,
    roots: list[Path],
    settings: AnalysisSettings,
) -> tuple[pd.DataFrame, list[str]]:
    """Grad-CAM localisation per domain with masks (index: domain) and the domains that have none,
    on the run's ``manifest`` (and its dataset ``roots``)."""
    data = config["data"]
    domains = list(data["source_domains"]) + list(data["target_domains"] or ())
    has_mask = manifest["mask_path"].notna() if "mask_path" in manifest.columns else pd.Series(False, manifest.index)
    fakes = manifest[has_mask & (manifest["label"] == 1) & (manifest["split"] == settings.localisation_split)]
    with_masks = [d for d in domains if (fakes["domain"] == d).any()]
    without = [d for d in domains if d not in with_masks]
    if not with_masks:
        return pd.DataFrame(columns=["energy_in_mask", "pointing_game", "mask_fraction", "n", "n_undefined"]), without
    rows = pick_frames(fakes, settings.localisation_per_domain, with_masks, seed=settings.seed)
    frames = load_frames(rows, roots, int(data["image_size"]))
    cams = gradcam_maps({"model": model}, frames, layer=settings.gradcam_layer)["model"]
    return localisation_by_domain(cams, frames.masks, frames.domains, settings.mask_threshold), without


def _mean_over(table: pd.DataFrame, domains: Sequence[str], column: str) -> float:
    values = table.loc[[d for d in domains if d in table.index], column] if len(table) else pd.Series(dtype=float)
    return float(values.mean()) if values.notna().any() else float("nan")


def analyse_run(
    run_dir: str | Path, settings: AnalysisSettings = AnalysisSettings(), config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One row of measurements for the selected model of ``run_dir`` (see the module docstring).

    ``config``: the run's ``config.yaml`` when the caller has read it already.
    """
    run_dir = Path(run_dir)
    checkpoint = selected_checkpoint(run_dir, settings.selection)  # names the path if it is not a run directory
    model = load_run_model(run_dir, checkpoint, device=settings.device)
    config = config if config is not None else read_config(run_dir)
    manifest, roots = run_manifest(config)  # read and validated once for both measurements
    batches, domains = analysis_batches(
        config, settings.split, settings.per_domain, settings.seed, settings.device, manifest=(manifest, roots)
    )
    alignment = alignment_summary(model, batches, settings.rho, settings.alpha, domain_names=domains)
    sharpness = sharpness_per_domain(model, batches, [settings.rho], domain_names=domains)
    located, no_masks = localisation(model, config, manifest, roots, settings)
    targets = list(config["data"]["target_domains"] or ())
    layer = chosen_layers({"model": model}, int(config["data"]["image_size"]), settings.gradcam_layer).loc["model"]
    row: dict[str, Any] = {
        "run": str(run_dir),
        "algorithm": config["algorithm"]["name"],
        "seed": config["train"]["seed"],
        "backbone": config["model"]["name"],
        "gradcam_layer": layer["layer"],
        "gradcam_map": f"{layer['height']}×{layer['width']}",
        "cos_clean_mean": alignment["cos_clean_mean"],
        "cos_perturbed_mean": alignment["cos_perturbed_mean"],
        "conflict_rate": alignment["conflict_rate"],
        "sharpness_mean": float(sharpness["sharpness"].mean()),
    }
    for column in ("energy_in_mask", "pointing_game", "mask_fraction"):
        row[f"{column}_source"] = _mean_over(located, domains, column)
        row[f"{column}_target"] = _mean_over(located, targets, column)
    for name, value in alignment.items():
        if name.startswith(("cos_clean/", "cos_perturbed/")):
            row[name] = value
    for record in sharpness.itertuples():
        row[f"sharpness/{record.domain}"] = record.sharpness
    for domain, scores in located.iterrows():
        for column in ("energy_in_mask", "pointing_game", "mask_fraction", "n", "n_undefined"):
            row[f"{column}/{domain}"] = scores[column]
    row["no_masks"] = ",".join(no_masks)
    return {**row, **{f"setting.{k}": v for k, v in asdict(settings).items()}}


def analyse_runs(run_dirs: Iterable[str | Path], settings: AnalysisSettings = AnalysisSettings()) -> pd.DataFrame:
    """:func:`analyse_run` for every run directory, one row each (a sweep folder stands for its finished runs).

    ``variant`` names the config keys that set a run apart from other runs of its algorithm and
    backbone (:func:`workbench.training.collect.config_variants`), so ablations are never pooled.
    ``complete`` is False for a run without a ``done`` marker (analysed, with an
    :class:`~workbench.training.collect.IncompleteRunWarning`, as ``report`` does).
    """
    run_dirs = expand_sweeps(run_dirs)
    if not run_dirs:
        raise ValueError("no run directories to analyse")
    configs = [read_config(run_dir) for run_dir in run_dirs]
    # a directory without a config is not a run: analyse_run refuses it, naming it
    complete = [run_complete(run_dir, stacklevel=2) if config else False for run_dir, config in zip(run_dirs, configs)]
    rows = [analyse_run(run_dir, settings, config) for run_dir, config in zip(run_dirs, configs)]
    return pd.DataFrame(rows).assign(variant=config_variants(configs), complete=complete)


def summarise_analysis(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation (ddof=1; NaN for one run) and run count of the main columns per
    algorithm, backbone and config variant (runs that differ otherwise are never pooled)."""
    grouped = table.groupby([k for k in SUMMARY_KEYS if k in table.columns], sort=False)[list(SUMMARY_COLUMNS)]
    summary = grouped.agg(["mean", "std"])
    summary[("runs", "n")] = grouped.size()
    return summary


def summary_markdown(table: pd.DataFrame) -> str:
    """The per-run table and the per-algorithm summary as markdown (mean ± std over runs)."""
    per_run = table[["algorithm", "backbone", "seed", "gradcam_layer", "gradcam_map", *SUMMARY_COLUMNS]].round(3)
    summary = summarise_analysis(table)
    cells = pd.DataFrame(index=summary.index)
    for column in SUMMARY_COLUMNS:
        means, stds = summary[(column, "mean")], summary[(column, "std")]
        cells[column] = [f"{m:.3f}" if np.isnan(s) else f"{m:.3f} ± {s:.3f}" for m, s in zip(means, stds)]
    cells["runs"] = summary[("runs", "n")]
    return (
        per_run.to_markdown(index=False)
        + "\n\nMean ± std over runs:\n\n"
        + cells.reset_index().to_markdown(index=False)
        + "\n"
    )
