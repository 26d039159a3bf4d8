"""The one module the curated notebooks (``notebooks/*.ipynb``) import, so that they hold no logic of their own.

Defined here: :func:`training_config` (02's settings, with a tiny CPU fallback), :func:`train_runs` (one run per
algorithm in ``<runs_dir>/<algorithm>-seed<seed>``, a finished run with the same config reused, an interrupted
one resumed) and :func:`export_figures` (PNG and PDF through one kaleido session). Gathered from the library:
project-relative configs and paths (:mod:`workbench.project`), :class:`LiveTraining`
(:mod:`workbench.viz.live_training`), :class:`SharpnessSlider` (:mod:`workbench.viz.sharpness_slider`),
:func:`show_static` (:mod:`workbench.viz.export`), :func:`misclassified` and :func:`prediction_titles`
(:mod:`workbench.analysis.mistakes`) and :func:`manifest_counts` (:mod:`workbench.data.manifest`). Frames,
runs, analyses and figures come from their own modules (:mod:`workbench.data.frames`,
:mod:`workbench.training.runs`, :mod:`workbench.analysis`, :mod:`workbench.viz`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure as MatplotlibFigure
from plotly.basedatatypes import BaseFigure

from workbench.analysis.callbacks import train_with_callbacks
from workbench.analysis.mistakes import FRAME_KEY, misclassified, prediction_titles
from workbench.config import resolve_device
from workbench.data.manifest import manifest_counts
from workbench.project import (
    DEFAULT_CONFIG_FILE,
    PROJECT_ROOT,
    check_reusable,
    merge_overrides,
    notebook_config,
    project_path,
    resolve_project_paths,
)
from workbench.training.pipeline import steps_for_epochs
from workbench.training.run_dir import RunMismatchError
from workbench.training.sweep import ensure_runs, plan_sweep
from workbench.viz import kaleido_session, save_figure
from workbench.viz.export import show_static
from workbench.viz.live_training import LiveTraining, replace_figure
from workbench.viz.sharpness_slider import SharpnessSlider

# What notebooks import from here: the functions of this module and, from the library, the names they use most.
__all__ = [
    "CPU_TINY_OVERRIDES",
    "DEFAULT_CONFIG_FILE",
    "FRAME_KEY",
    "PROJECT_ROOT",
    "LiveTraining",
    "RunMismatchError",
    "SharpnessSlider",
    "check_reusable",
    "export_figures",
    "manifest_counts",
    "merge_overrides",
    "misclassified",
    "notebook_config",
    "prediction_titles",
    "project_path",
    "replace_figure",
    "resolve_project_paths",
    "run_dir_for",
    "show_static",
    "steps_for_epochs",
    "train_runs",
    "training_config",
]

# The configuration 02_train falls back to on a CPU: small benchmark, small backbone, minutes not hours.
CPU_TINY_OVERRIDES: dict[str, Any] = {
    "data": {
        "synthetic": {"videos_per_domain": 12, "frames_per_video": 4, "size": 64},
        "image_size": 64,
        "batch_size": 32,
        "eval_batch_size": 256,
    },
    "model": {"name": "resnet10t", "pretrained": False, "kwargs": {}},
    "train": {"steps": 60, "eval_every": 20},
}


def training_config(
    config_file: str | Path | None = DEFAULT_CONFIG_FILE,
    *,
    backbone: str | None = None,
    pretrained: bool | str | None = None,
    algorithm: str | None = None,
    hparams: Mapping[str, Any] | None = None,
    manifest: str | Path | None = None,
    data_root: str | Path | None = None,
    source_domains: Sequence[str] | None = None,
    target_domains: Sequence[str] | None = None,
    image_size: int | None = None,
    batch_size: int | None = None,
    eval_every: int | None = None,
    alignment_every: int | None = None,
    device: str | None = None,
    cpu_tiny: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[dict, bool]:
    """The config of a training run from the settings a researcher varies; ``None`` keeps ``config_file``'s value.

    On a CPU (the resolved ``train.device``) with ``cpu_tiny`` the :data:`CPU_TINY_OVERRIDES` (small
    benchmark, ``resnet10t``, 60 steps) replace the backbone and budget so the run finishes in
    minutes. ``overrides`` are applied last. Returns the config and whether the tiny configuration
    was used.
    """
    settings = {
        "model": {"name": backbone, "pretrained": pretrained},
        "algorithm": {"name": algorithm, "hparams": dict(hparams or {})},
        "data": {
            "manifest": None if manifest is None else str(manifest),
            "root": None if data_root is None else str(data_root),
            "source_domains": None if source_domains is None else list(source_domains),
            "target_domains": None if target_domains is None else list(target_domains),
            "image_size": image_size,
            "batch_size": batch_size,
        },
        "train": {"eval_every": eval_every, "alignment_every": alignment_every, "device": device},
    }
    chosen = {section: {k: v for k, v in values.items() if v is not None} for section, values in settings.items()}
    tiny = cpu_tiny and resolve_device(notebook_config(config_file, chosen, overrides)["train"]["device"]).type == "cpu"
    config = notebook_config(config_file, chosen, CPU_TINY_OVERRIDES if tiny else None, overrides)
    return config, tiny


# --------------------------------------------------------------------------------------- runs
def run_dir_for(runs_dir: str | Path, algorithm: str, seed: int) -> Path:
    """Where :func:`train_runs` puts one run: ``<runs_dir>/<algorithm>-seed<seed>``, the sweep's name for it."""
    return project_path(runs_dir) / f"{algorithm}-seed{seed}"


def train_runs(
    config: Mapping[str, Any], runs_dir: str | Path, algorithms: Sequence[str], seed: int | None = None
) -> dict[str, Path]:
    """Train each algorithm with the same config (data, budget, seed) and return ``{algorithm: run_dir}``.

    The runner every entry point uses (:func:`workbench.training.sweep.ensure_runs`, runs named as a
    sweep names them: ``<runs_dir>/<algorithm>-seed<seed>``): a finished run with the same configuration
    is reused as it is; one with another configuration raises :class:`RunMismatchError`; an
    interrupted one resumes from ``checkpoints/last.pt``. ``seed`` (default: the config's) replaces
    ``train.seed``.
    """
    if not algorithms:
        raise ValueError("no algorithms given")
    runs = plan_sweep(config, [], algorithms, [config["train"]["seed"] if seed is None else seed])
    return dict(zip(algorithms, ensure_runs(runs, project_path(runs_dir), train_with_callbacks)))


def export_figures(
    figures: Mapping[str, BaseFigure | MatplotlibFigure], out_dir: str | Path, formats: Sequence[str] = ("png", "pdf")
) -> list[Path]:
    """Write every figure as ``<out_dir>/<name>.<format>`` with :func:`workbench.viz.save_figure`; return the paths.

    All plotly figures are rendered in one kaleido browser session (:func:`workbench.viz.kaleido_session`).
    """
    out = project_path(out_dir)
    paths = []
    with kaleido_session():
        for name, figure in figures.items():
            for suffix in formats:
                paths.append(save_figure(figure, out / f"{name}.{suffix.lstrip('.')}"))
    return paths
