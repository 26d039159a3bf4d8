"""What the curated notebooks (``notebooks/*.ipynb``) call, so that the notebooks hold no logic of their own.

- Configuration: :func:`notebook_config` loads a YAML config plus override mappings and resolves
  relative paths against the project root, so a notebook behaves the same whatever its working
  directory (JupyterLab, papermill, nbmake).
- Runs: :func:`train_runs` trains one run per algorithm into ``<runs_dir>/<algorithm>-seed<seed>``
  with gradient-alignment logging; a finished run with the same config is reused (so notebooks
  share cached runs) and an interrupted one resumes. :class:`LiveTraining` trains one run in chunks
  and redraws a live figure from ``records.jsonl`` after each chunk.
- Data and predictions: :func:`manifest_counts`, :func:`misclassified` (a run's most confident
  mistakes), :func:`prediction_titles`.
- Widgets and display: :class:`SharpnessSlider`, :func:`show_static` for matplotlib figures, and
  :func:`export_figures`, which writes PNG and PDF files through one kaleido browser session.

Everything else the notebooks use lives in the library: frames and masks in
:mod:`workbench.data.frames`, a run's manifest and model in :mod:`workbench.training.runs`, analysis
batches in :mod:`workbench.analysis.batches`, attribution maps and localisation tables in
:mod:`workbench.analysis.attribution`, figures in :mod:`workbench.viz` (e.g.
:func:`workbench.viz.frame_gallery`, :func:`workbench.viz.frame_gallery_inputs`), results tables in :mod:`workbench.training.report` (e.g.
:func:`workbench.training.report.held_out_table`).
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure as MatplotlibFigure
from plotly.basedatatypes import BaseFigure
from plotly.subplots import make_subplots

from workbench.analysis.callbacks import callbacks_from_config
from workbench.config import load_config, resolve_device
from workbench.data.manifest import domain_roles
from workbench.data.sampling import DomainBatchSampler
from workbench.training import Trainer
from workbench.training.run_dir import RunDir, RunMismatchError  # noqa: F401 (notebooks catch it from here)
from workbench.viz import eval_frame, kaleido_session, save_figure, training_curves
from workbench.viz.data import labelled
from workbench.viz.labels import label
from workbench.viz.style import styles_for

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_FILE = "configs/demo.yaml"
# Config paths taken from the project root; each holds a path, a list of paths (one per manifest), or
# (model.pretrained) false.
PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("run", "dir"), ("data", "manifest"), ("data", "root"), ("data", "synthetic", "cache_dir"), ("model", "pretrained"),
)
# The configuration 02_train falls back to on a CPU: small benchmark, small backbone, minutes not hours.
CPU_TINY_OVERRIDES: dict[str, Any] = {
    "data": {"synthetic": {"videos_per_domain": 12, "frames_per_video": 4, "size": 64},
             "image_size": 64, "batch_size": 32, "eval_batch_size": 256},
    "model": {"name": "resnet10t", "pretrained": False, "kwargs": {}},
    "train": {"steps": 60, "eval_every": 20},
}


# What identifies a frame across the manifests of a run (relative paths can repeat between datasets).
FRAME_KEY: tuple[str, ...] = ("path", "domain", "video")


# ------------------------------------------------------------------------------------- config
def project_path(path: str | Path) -> Path:
    """``path`` itself when absolute, else relative to the project root (the folder holding ``workbench/``)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def merge_overrides(*overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merge nested override mappings left to right (later values win; ``None`` entries are skipped)."""
    merged: dict[str, Any] = {}

    def merge(into: dict[str, Any], update: Mapping[str, Any]) -> None:
        for key, value in update.items():
            if isinstance(value, Mapping) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else copy.deepcopy(value)

    for update in overrides:
        if update is None:
            continue
        if not isinstance(update, Mapping):
            raise TypeError(
                f"an override must be a nested mapping such as {{'train': {{'steps': 10}}}}, got {update!r}"
            )
        merge(merged, update)
    return merged


def notebook_config(config_file: str | Path | None = DEFAULT_CONFIG_FILE, *overrides: Mapping[str, Any] | None) -> dict:
    """A resolved run config: defaults, ``config_file`` (relative to the project root), then each override.

    Relative paths in :data:`PATH_KEYS` (``run.dir``, ``data.manifest`` and ``data.root``, also as
    lists, ``data.synthetic.cache_dir``, a ``model.pretrained`` weights file) are made absolute
    against the project root, so runs, data and weights are found in the same place from a notebook,
    a test or the command line started in the project root.
    """
    config = load_config(project_path(config_file) if config_file is not None else None, merge_overrides(*overrides))
    return resolve_project_paths(config)


def resolve_project_paths(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the relative paths of :data:`PATH_KEYS` made absolute against the project root (in place)."""
    for keys in PATH_KEYS:
        node = config
        for key in keys[:-1]:
            node = node.get(key, {})
        if keys[-1] in node:
            node[keys[-1]] = _project_paths(node[keys[-1]])
    return config


def _project_paths(value: Any) -> Any:
    """:func:`project_path` of a path or of each path in a list; other values (None, False) unchanged."""
    if isinstance(value, (list, tuple)):
        return [_project_paths(v) for v in value]
    return str(project_path(value)) if isinstance(value, (str, Path)) else value


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
        "data": {"manifest": None if manifest is None else str(manifest),
                 "root": None if data_root is None else str(data_root),
                 "source_domains": None if source_domains is None else list(source_domains),
                 "target_domains": None if target_domains is None else list(target_domains),
                 "image_size": image_size, "batch_size": batch_size},
        "train": {"eval_every": eval_every, "alignment_every": alignment_every, "device": device},
    }
    chosen = {section: {k: v for k, v in values.items() if v is not None} for section, values in settings.items()}
    tiny = cpu_tiny and resolve_device(notebook_config(config_file, chosen, overrides)["train"]["device"]).type == "cpu"
    config = notebook_config(config_file, chosen, CPU_TINY_OVERRIDES if tiny else None, overrides)
    return config, tiny


def check_reusable(run_dir: str | Path, config: Mapping[str, Any]) -> None:
    """Raise :class:`RunMismatchError` naming every key where the finished ``run_dir``'s saved config differs
    from ``config`` (:meth:`RunDir.check_config`); its saved paths are resolved against the project root like
    the request's, so a run trained from the command line with relative paths matches."""
    RunDir(run_dir).check_config(config, require_saved=True, normalise=resolve_project_paths)


# --------------------------------------------------------------------------------------- runs
def run_dir_for(runs_dir: str | Path, algorithm: str, seed: int) -> Path:
    """Where :func:`train_runs` puts one run: ``<runs_dir>/<algorithm>-seed<seed>``."""
    return project_path(runs_dir) / f"{algorithm}-seed{seed}"


def train_runs(
    config: Mapping[str, Any], runs_dir: str | Path, algorithms: Sequence[str], seed: int | None = None
) -> dict[str, Path]:
    """Train each algorithm with the same config (data, budget, seed) and return ``{algorithm: run_dir}``.

    A finished run with the same configuration is reused as it is; one with another configuration
    raises :class:`RunMismatchError`; an interrupted one resumes from ``checkpoints/last.pt``.
    ``seed`` (default: the config's) replaces ``train.seed``.
    """
    if not algorithms:
        raise ValueError("no algorithms given")
    runs = {}
    for algorithm in algorithms:
        run_config = copy.deepcopy(dict(config))
        run_config["algorithm"] = {**run_config["algorithm"], "name": algorithm}
        if seed is not None:
            run_config["train"] = {**run_config["train"], "seed": seed}
        run_dir = run_dir_for(runs_dir, algorithm, run_config["train"]["seed"])
        if RunDir(run_dir).done:
            check_reusable(run_dir, run_config)
        else:
            Trainer(run_config, run_dir, callbacks_from_config(run_config)).fit()
        runs[algorithm] = run_dir
    return runs


def steps_for_epochs(sampler: DomainBatchSampler, epochs: float) -> int:
    """Steps that show every training fake ``epochs`` times on average (the trainer's epoch definition)."""
    if epochs <= 0:
        raise ValueError(f"epochs={epochs} must be positive")
    fakes_per_step = sampler.n_fake * len(sampler.fake_pools)
    return max(1, math.ceil(epochs * sampler.fakes_per_epoch() / fakes_per_step))


def _evaluated_step(records: Sequence[Mapping[str, Any]]) -> int:
    return max((int(r["step"]) for r in records if "eval" in r), default=0)


def replace_figure(widget: go.FigureWidget, figure: go.Figure) -> None:
    """Show ``figure``'s traces and layout in an existing ``FigureWidget`` (updated in place in the page)."""
    widget.data = []
    widget.add_traces(list(figure.data))
    widget.layout = figure.layout


class LiveTraining:
    """Train one run in chunks of ``train.eval_every`` steps and redraw :attr:`figure` after each chunk.

    Chunks end on evaluation steps, where the trainer saves ``checkpoints/last.pt``; calling
    :meth:`run` again (or building a new ``LiveTraining`` on the same ``run_dir``, e.g. after a
    kernel restart) continues from there, exactly as an uninterrupted run would have. An interrupted
    chunk (kernel interrupt) is redone from its start. ``epochs`` (optional) sets ``train.steps``
    from the training set's size. The trainer's own progress bar is switched off: the figure title
    shows the progress.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        run_dir: str | Path,
        epochs: float | None = None,
        metric: str = "auc",
        callbacks: Sequence[Any] | None = None,
    ) -> None:
        self.config = copy.deepcopy(dict(config))
        self.config["train"]["progress"] = False
        self.run_dir = project_path(run_dir)
        self.metric = metric
        self.callbacks = callbacks_from_config(self.config) if callbacks is None else list(callbacks)
        self._trainer: Trainer | None = None
        if epochs is not None:
            self.config["train"]["steps"] = steps_for_epochs(self.trainer.data.sampler, epochs)
            self._trainer = None  # rebuilt with the final step count
        if self.finished:
            check_reusable(self.run_dir, self.config)
        self.figure = go.FigureWidget(make_subplots(rows=1, cols=2, subplot_titles=["train loss", metric]))
        self.refresh()

    @property
    def trainer(self) -> Trainer:
        if self._trainer is None:
            self._trainer = Trainer(self.config, self.run_dir, self.callbacks)
        return self._trainer

    @property
    def steps(self) -> int:
        return int(self.config["train"]["steps"])

    @property
    def finished(self) -> bool:
        return RunDir(self.run_dir).done

    def records(self) -> list[dict[str, Any]]:
        return RunDir(self.run_dir).load_records()

    def run(self, until_step: int | None = None) -> Path:
        """Train to the end (or to the first evaluation step at or after ``until_step``), refreshing the figure."""
        every = int(self.config["train"]["eval_every"])
        stop = self.steps if until_step is None else min(self.steps, math.ceil(until_step / every) * every)
        while not self.finished and _evaluated_step(self.records()) < stop:
            target = min((_evaluated_step(self.records()) // every + 1) * every, self.steps)
            try:
                self.trainer.fit(stop_at_step=None if target >= self.steps else target)
            except BaseException:
                self._trainer = None  # the next run() resumes from the last checkpoint
                raise
            finally:
                self.refresh()
        return self.run_dir

    def status(self) -> str:
        records = [r for r in self.records() if "eval" in r]
        if not records:
            return f"{self.run_dir.name}: step 0/{self.steps}"
        last = records[-1]
        value = last["eval"].get("source_val", {}).get(self.metric)
        shown = "n/a" if value is None else f"{value:.3f}"
        state = "done" if self.finished else "training"
        return f"{self.run_dir.name}: step {last['step']}/{self.steps} ({state}) · source-val {self.metric} {shown}"

    def refresh(self) -> None:
        """Redraw the loss and metric curves from ``records.jsonl``."""
        records = self.records()
        if any("eval" in r for r in records):
            evaluated = next(r for r in records if "eval" in r)["eval"]
            groups = [g for g in evaluated if g == "source_val" or g.startswith("target/")]
            replace_figure(self.figure, training_curves(eval_frame({self.config["algorithm"]["name"]: records}),
                                                        metric=self.metric, groups=groups))
        self.figure.layout.title.text = self.status()


# ----------------------------------------------------------------------------- data and models
def manifest_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, domain): role (real/fake/mixed), videos, frames per split, and frames with a mask."""
    roles = domain_roles(manifest)
    frames = pd.crosstab([manifest["dataset"], manifest["domain"]], manifest["split"])
    table = pd.DataFrame(index=frames.index)
    table["role"] = [roles[domain] for _, domain in table.index]
    table["videos"] = manifest.groupby(["dataset", "domain"])["video"].nunique()
    for split in ("train", "val", "test"):
        table[f"frames_{split}"] = frames[split] if split in frames.columns else 0
    if "mask_path" in manifest.columns:
        has_mask = manifest.assign(has=manifest["mask_path"].notna())
        table["with_mask"] = has_mask.groupby(["dataset", "domain"])["has"].sum()
    return table


def misclassified(
    run_dir: str | Path,
    groups: Sequence[str] | None = None,
    threshold: float = 0.5,
    limit: int = 8,
    manifest: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The selected model's most confident mistakes in ``predictions.csv`` (one row per frame).

    ``groups`` defaults to ``source_test`` and every ``target/*`` group. Sorted by how far
    ``prob_fake`` is from the true label; column ``group`` is the first group the frame appeared in.
    A frame is identified by its ``path``, ``domain`` and ``video`` (two datasets may share relative
    paths). With ``manifest`` (e.g. :func:`workbench.training.runs.run_manifest`'s), each row gets its
    ``mask_path`` and ``root_index``, so :func:`workbench.data.frames.load_frames` finds it under its
    own dataset's root.
    """
    predictions = RunDir(run_dir).read_predictions()
    if groups is None:
        groups = [g for g in predictions["group"].unique() if g == "source_test" or g.startswith("target/")]
    rows = predictions[predictions["group"].isin(groups)].drop_duplicates(FRAME_KEY)
    wrong = rows[(rows["prob_fake"] >= threshold).astype(int) != rows["label"]]
    error = (wrong["label"] - wrong["prob_fake"]).abs()
    wrong = wrong.assign(error=error).sort_values("error", ascending=False).head(limit).reset_index(drop=True)
    if manifest is not None:
        extra = [c for c in ("mask_path", "root_index") if c in manifest.columns]
        frames = manifest[[*FRAME_KEY, *extra]].astype({"video": str}).drop_duplicates(FRAME_KEY)
        wrong = wrong.merge(frames, on=list(FRAME_KEY), how="left")
    return wrong


def prediction_titles(rows: pd.DataFrame) -> list[str]:
    """``"i. domain<br>real/fake · p=0.87"`` per prediction row (``p`` = predicted probability of fake)."""
    return [f"{i + 1}. {row.domain}<br>{'fake' if row.label == 1 else 'real'} · p={row.prob_fake:.2f}"
            for i, row in enumerate(rows.itertuples())]


# --------------------------------------------------------------------------- widgets and display
class SharpnessSlider:
    """A ρ slider over a sharpness table: bars of every domain's sharpness at the chosen ρ, one series per algorithm.

    ``table``: ``{algorithm: sharpness_per_domain(...)}``, or one table with columns ``algorithm``,
    ``domain``, ``rho`` and ``value``. Display :attr:`widget`; :attr:`figure` is updated in place.
    """

    def __init__(
        self, table: pd.DataFrame | Mapping[str, pd.DataFrame], value: str = "sharpness", rho: float | None = None
    ) -> None:
        table = labelled(table)
        missing = [c for c in ("algorithm", "domain", "rho", value) if c not in table.columns]
        if missing:
            raise ValueError(f"the sharpness table needs column(s) {missing}; have {list(table.columns)}")
        self.table = table
        self.value = value
        self.rhos = sorted(table["rho"].unique())
        self.domains = list(dict.fromkeys(table["domain"].astype(str)))
        start = self.rhos[len(self.rhos) // 2] if rho is None else rho
        if start not in self.rhos:
            raise ValueError(f"rho={rho} is not on the table's grid {self.rhos}")
        self.slider = widgets.SelectionSlider(options=[(f"{r:g}", r) for r in self.rhos], value=start,
                                              description="ρ", continuous_update=False)
        figure = go.Figure()
        styles = styles_for(table["algorithm"])
        self.algorithms = list(styles)
        for algorithm, style in styles.items():
            figure.add_trace(go.Bar(x=self.domains, name=label(algorithm), marker_color=style.colour,
                                    marker_pattern_shape=style.hatch))
        low, top = min(0.0, float(table[value].min())), float(table[value].max())
        figure.update_layout(barmode="group", yaxis=dict(title=label(value), range=[low, top * 1.1 or 1.0]))
        self.figure = go.FigureWidget(figure)
        self.widget = widgets.VBox([self.slider, self.figure])
        self.slider.observe(lambda change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        rho = self.slider.value
        at = self.table[self.table["rho"] == rho]
        with self.figure.batch_update():
            for trace, algorithm in zip(self.figure.data, self.algorithms):
                rows = at[at["algorithm"] == algorithm].groupby("domain")[self.value].mean()
                trace.y = [rows.get(domain, np.nan) for domain in self.domains]
            self.figure.layout.title.text = f"{label(self.value)} at ρ = {rho:g}"


def show_static(figure: MatplotlibFigure, dpi: int = 120) -> None:
    """Display a matplotlib figure in the notebook as a PNG.

    The ``*_static`` builders of :mod:`workbench.viz` make figures without pyplot, which Jupyter's
    inline backend does not register for display unless pyplot was set up first.
    """
    from IPython.display import Image as PngImage, display

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    display(PngImage(data=buffer.getvalue(), format="png"))


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
