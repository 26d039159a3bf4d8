"""The demo: ERM and RoGA trained with the same seed and budget, compared on source and held-out domains.

Everything comes from the library (trainer, selection, report tables, analysis, figures); this module
only orchestrates the runs and writes ``report.md``: the results table of
:func:`workbench.training.table_text.to_markdown` (source-test and held-out AUC with bootstrap CIs), each
algorithm's held-out mean and gap and their differences to ERM with paired video-bootstrap intervals
(:func:`workbench.training.comparison.baseline_differences`; two numbers without one say nothing), the bars
of :func:`workbench.viz.results_bars_static` as a PNG, and
where the detectors look: a Grad-CAM gallery at the default layer
(:func:`workbench.analysis.attribution_layers.default_layer_name`), localisation against depth, and a table
of energy in the mask and pointing game against chance on the source and held-out domains.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.analysis.attribution import gradcam_maps
from workbench.analysis.attribution_layers import chosen_layers
from workbench.analysis.callbacks import train_with_callbacks
from workbench.analysis.localisation import localisation_by_depth, mean_over_domains, untrained_twin
from workbench.data.frames import load_frames, pick_frames
from workbench.training.cells import RunPredictions
from workbench.training.comparison import GAP, HELD_OUT_MEAN, baseline_differences, format_difference
from workbench.training.report import report_tables, to_markdown
from workbench.training.runs import load_run_model, run_manifest
from workbench.training.sweep import ensure_runs, plan_sweep
from workbench.viz import (
    frame_gallery_inputs,
    gradcam_gallery_static,
    localisation_depth_static,
    results_bars_static,
    save_figure,
)

DEMO_ALGORITHMS = ("erm", "roga")
DEMO_BASELINE = "erm"


def train_algorithms(
    config: dict[str, Any], out_dir: Path, algorithms: Sequence[str], fresh: bool = False
) -> dict[str, Path]:
    """Each algorithm with the same config (seed, data, budget), as the sweep runner runs it
    (:func:`workbench.training.sweep.ensure_runs`: ``out_dir/<algorithm>-seed<seed>``, a finished run with
    the same config reused, an interrupted one resumed); ``fresh`` deletes those run directories first."""
    runs = plan_sweep(config, [], algorithms, [config["train"]["seed"]])
    if fresh:
        for run in runs:
            shutil.rmtree(out_dir / run.name, ignore_errors=True)
    return dict(zip(algorithms, ensure_runs(runs, out_dir, train_with_callbacks)))


def comparison_table(runs: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Per algorithm: selected step, source-val/test and per-target ``metric``, held-out mean and gap.

    ``runs`` is a :func:`~workbench.training.collect.collect` table with one run per algorithm. Adds
    ``held_out_mean`` (mean over the ``target/*`` groups that have a value) and ``gap`` = source-test − held-out
    mean.
    """
    groups = [c.split(":", 1)[0] for c in runs.columns if c.endswith(f":{metric}")]
    columns = {f"{g}:{metric}": g for g in groups if g in ("source_val", "source_test") or g.startswith("target/")}
    table = runs.set_index("algorithm")[["step", *columns]].rename(columns=columns)
    targets = [g for g in columns.values() if g.startswith("target/")]
    table["held_out_mean"] = table[targets].mean(axis=1, skipna=True) if targets else float("nan")
    table["gap"] = table["source_test"] - table["held_out_mean"]
    return table


def _number(value: Any) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3f}"


def gap_lines(table: pd.DataFrame, differences: pd.DataFrame | None = None) -> list[str]:
    """One markdown bullet per algorithm of a :func:`comparison_table`: selected step, held-out mean and gap,
    and, for algorithms in ``differences`` (:func:`~workbench.training.comparison.baseline_differences`), both
    differences to the baseline with their paired intervals (bold when an interval excludes 0)."""
    lines = []
    for name, row in table.iterrows():
        held_out, gap = _number(row["held_out_mean"]), _number(row["gap"])
        line = f"- {name} (step {row['step']:.0f}): held-out mean {held_out}, gap {gap}"
        own = differences[differences["algorithm"] == name] if differences is not None else pd.DataFrame()
        if len(own):
            baseline = own["baseline"].iloc[0]
            parts = []
            for group in (HELD_OUT_MEAN, GAP):
                match = own[own["group"] == group]
                if len(match):
                    r = match.iloc[0]
                    difference = format_difference(r.difference, r.ci_low, r.ci_high, r.excludes_zero)
                    parts.append(f"{group.replace('_', ' ')} {difference}")
            line += f"; minus {baseline}: " + ", ".join(parts)
        lines.append(line)
    return lines


def demo_differences(
    per_run: pd.DataFrame, summary: pd.DataFrame, predictions: RunPredictions, baseline: str = DEMO_BASELINE
) -> pd.DataFrame | None:
    """Each other algorithm's differences to ``baseline`` on every group of ``summary``, held-out mean and gap,
    with paired video-bootstrap intervals; None when ``baseline`` was not trained or nothing else was."""
    if baseline not in set(per_run["algorithm"]) or per_run["algorithm"].nunique() < 2:
        return None
    return baseline_differences(per_run, baseline, list(dict.fromkeys(summary["group"])), predictions=predictions)


def localisation_section(runs: dict[str, Path], config: dict[str, Any], out_dir: Path, per_domain: int = 16) -> str:
    """Markdown on where the selected models look; writes ``gradcam.png`` and ``gradcam_depth.png`` to ``out_dir``.

    Grad-CAM of the fake logit on ``per_domain`` masked test fakes of every domain, at the default
    layer (and at every stage for the depth figure), for each model and for the same network with
    random weights (:func:`~workbench.analysis.localisation.untrained_twin`, the control); scores are
    averaged over the source and over the held-out domains, each domain weighing the same.
    """
    models = {name: load_run_model(run_dir) for name, run_dir in runs.items()}
    models["untrained"] = untrained_twin(config["model"])
    manifest, roots = run_manifest(config)
    sources, targets = list(config["data"]["source_domains"]), list(config["data"]["target_domains"] or ())
    size = int(config["data"]["image_size"])
    frames = load_frames(pick_frames(manifest, per_domain, sources + targets, split="test", label=1), roots, size)
    layers = chosen_layers(models, size)
    cams = gradcam_maps(models, frames)
    first = frames.first_per_domain()
    shown = {n: m[first] for n, m in cams.items() if n != "untrained"}
    save_figure(gradcam_gallery_static(**frame_gallery_inputs(frames.subset(first), shown)), out_dir / "gradcam.png")
    depth = localisation_by_depth(models, frames)
    default = layers["layer"].iloc[0] if layers["layer"].nunique() == 1 else None
    save_figure(localisation_depth_static(depth, default_layer=default), out_dir / "gradcam_depth.png")
    lines = [
        "| algorithm | layer (map) | energy in mask, source / held-out | pointing game, source / held-out | "
        "chance, source / held-out |",
        "|---|---|---|---|---|",
    ]
    for name, layer in layers.iterrows():
        at_layer = depth[(depth["algorithm"] == name) & (depth["layer"] == layer["layer"])]
        cells = []
        for column in ("energy_in_mask", "pointing_game", "mask_fraction"):
            means = [
                mean_over_domains(at_layer[at_layer["domain"].isin(group)], ["algorithm"])[column]
                for group in (sources, targets)
            ]
            cells.append(" / ".join(_number(m.iloc[0]) if len(m) else "n/a" for m in means))
        lines.append(f"| {name} | {layer['layer']} ({layer['height']}×{layer['width']}) | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    return f"""## Where the detectors look

Grad-CAM of the fake logit on {per_domain} masked test fakes per domain, at the deepest stage whose map
is at least 8 × 8 at {size} px. *Energy in mask*: share of the map inside the manipulated region;
*pointing game*: share of faces whose map peaks inside it; a uniform map scores the mask's area share
on both (*chance*). *untrained* is the same network with random weights: maps follow faces and edges
without any training, so a detector localises where it beats this control, not just chance.

{table}

![Grad-CAM gallery](gradcam.png)

Localisation at every stage (averaged over all domains):

![localisation against depth](gradcam_depth.png)
"""


def write_report(
    table: pd.DataFrame,
    summary: pd.DataFrame,
    config: dict[str, Any],
    out_dir: Path,
    wall_s: float,
    localisation: str = "",
    differences: pd.DataFrame | None = None,
) -> Path:
    """``report.md``: the summary's results table, the gaps of ``table`` with ``differences`` (see
    :func:`gap_lines`), the figure, ``localisation`` (a markdown section, e.g. :func:`localisation_section`)
    and how the numbers were made.

    ``summary`` is :func:`workbench.training.report.summarise` of the runs (source-val selection).
    """
    save_figure(
        results_bars_static(summary, metric="AUC", title="Frame AUC: source test vs held-out forgery domains"),
        out_dir / "comparison.png",
    )
    gaps = "\n".join(gap_lines(table, differences))
    paired = (
        ""
        if differences is None
        else (
            f"\nBracketed: the {100 * differences['ci_level'].iloc[0]:g}% paired video bootstrap of the difference to "
            f"{differences['baseline'].iloc[0]} (both detectors scored on the same resampled test videos), rounded "
            "outward; **bold** when it excludes 0. It covers which test videos were drawn, not seed-to-seed variance "
            "(one seed each here).\n"
        )
    )
    text = f"""# Demo: ERM vs RoGA on the embedded forgery benchmark

Backbone `{config["model"]["name"]}` (random init), {config["train"]["steps"]} steps, batch
{config["data"]["batch_size"]} ({len(config["data"]["source_domains"])} source domains:
{", ".join(config["data"]["source_domains"])}), seed {config["train"]["seed"]}, same data and budget for
every algorithm. Held-out forgery domains: {", ".join(config["data"]["target_domains"])}.
Checkpoints selected by source-domain validation AUC (no target data used for selection).

{to_markdown(summary)}
Held-out mean AUC and `gap` = source-test AUC − mean held-out AUC, per algorithm:

{gaps}
{paired}
![comparison](comparison.png)

{localisation}
Total wall time {wall_s:.0f} s.
"""
    path = out_dir / "report.md"
    path.write_text(text)
    return path


def run_demo(
    config: dict[str, Any],
    out_dir: str | Path = "runs/demo",
    algorithms: Sequence[str] = DEMO_ALGORITHMS,
    fresh: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame | None, Path]:
    """Train (see :func:`train_algorithms`), compare, and write the report; return the :func:`comparison_table`,
    the differences to :data:`DEMO_BASELINE` (:func:`demo_differences`) and the report path."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = train_algorithms(config, out_dir, algorithms, fresh)
    predictions = RunPredictions()
    per_run, summary = report_tables(runs.values(), predictions=predictions)
    table = comparison_table(per_run)
    differences = demo_differences(per_run, summary, predictions)
    localisation = localisation_section(runs, config, out_dir)
    report = write_report(table, summary, config, out_dir, time.perf_counter() - started, localisation, differences)
    return table, differences, report
