"""What the curated notebooks (``notebooks/*.ipynb``) call, so that the notebooks hold no logic of their own.

- Configuration: :func:`notebook_config` loads a YAML config plus override mappings and resolves
  relative paths against the project root, so a notebook behaves the same whatever its working
  directory (JupyterLab, papermill, nbmake).
- Runs: :func:`train_runs` trains one run per algorithm into ``<runs_dir>/<algorithm>-seed<seed>``
  with gradient-alignment logging; a finished run with the same config is reused (so notebooks
  share cached runs) and an interrupted one resumes. :class:`LiveTraining` trains one run in chunks
  and redraws a live figure from ``records.jsonl`` after each chunk.
- Data and models: :func:`run_manifest`, :func:`manifest_counts`, :func:`pick_frames`,
  :func:`load_frames` (images with their manipulation masks), :func:`analysis_batches` (one batch
  per source domain), :func:`load_run_model`, :func:`misclassified`, :func:`gradcams`.
- Tables: :func:`localisation_table`, :func:`held_out_table` (source / held-out manipulation /
  cross-dataset, from a report summary), :func:`target_kinds`.
- Figures the notebooks need beyond :mod:`workbench.viz` (:func:`image_grid`, :func:`frame_gallery`,
  :func:`counts_figure`, :func:`layerwise_heatmap`, :func:`localisation_figure`,
  :class:`SharpnessSlider`), :func:`show_static` for matplotlib figures, and :func:`export_figures`,
  which writes PNG and PDF files through one kaleido browser session.
"""

from __future__ import annotations

import copy
import io
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import torch
import yaml
from matplotlib.figure import Figure as MatplotlibFigure
from PIL import Image, UnidentifiedImageError
from plotly.basedatatypes import BaseFigure
from plotly.subplots import make_subplots
from torch import nn

from workbench.analysis.attribution import GradCAM, localisation_by_domain
from workbench.analysis.callbacks import callbacks_from_config
from workbench.config import DEFAULT_CONFIG, config_differences, load_config
from workbench.data.augment import normalize
from workbench.data.images import load_image
from workbench.data.manifest import ManifestError, domain_roles, read_manifest
from workbench.data.protocol import real_rows, source_datasets
from workbench.data.sampling import DomainBatchSampler
from workbench.models import create_model
from workbench.training import Trainer, load_checkpoint
from workbench.training.report import format_cell, read_config
from workbench.training.selection import load_records
from workbench.training.trainer import BEST, resolve_device, synthetic_manifest
from workbench.viz import eval_frame, kaleido_session, save_figure, training_curves
from workbench.viz.data import labelled, rgb_uint8
from workbench.viz.style import colours_for

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_FILE = "configs/demo.yaml"
PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("run", "dir"), ("data", "manifest"), ("data", "root"), ("data", "synthetic", "cache_dir"),
)
# Keys that may differ between a finished run and a request to reuse it (where and how it ran).
REUSE_IGNORED: frozenset[tuple[str, ...]] = frozenset(
    {("run", "dir"), ("run", "name"), ("train", "progress"), ("train", "device"), ("data", "workers")}
)
# The configuration 02_train falls back to on a CPU: small benchmark, small backbone, minutes not hours.
CPU_TINY_OVERRIDES: dict[str, Any] = {
    "data": {"synthetic": {"videos_per_domain": 12, "frames_per_video": 4, "size": 64},
             "image_size": 64, "batch_size": 32, "eval_batch_size": 256},
    "model": {"name": "resnet10t", "pretrained": False, "kwargs": {}},
    "train": {"steps": 60, "eval_every": 20},
}


class RunMismatchError(ValueError):
    """A finished run exists where a run with a different configuration was requested."""


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

    Relative ``run.dir``, ``data.manifest``, ``data.root`` and ``data.synthetic.cache_dir`` are made
    absolute against the project root, so runs and the benchmark cache land in the same place from
    a notebook, a test or the command line started in the project root.
    """
    config = load_config(project_path(config_file) if config_file is not None else None, merge_overrides(*overrides))
    for keys in PATH_KEYS:
        node = config
        for key in keys[:-1]:
            node = node[key]
        if node[keys[-1]] is not None:
            node[keys[-1]] = str(project_path(node[keys[-1]]))
    return config


def training_config(
    config_file: str | Path | None = DEFAULT_CONFIG_FILE,
    *,
    backbone: str | None = None,
    pretrained: bool | str = False,
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
    device: str = "auto",
    cpu_tiny: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[dict, bool]:
    """The config of a training run from the settings a researcher varies; ``None`` keeps ``config_file``'s value.

    On a CPU with ``cpu_tiny`` the :data:`CPU_TINY_OVERRIDES` (small benchmark, ``resnet10t``, 60
    steps) replace the backbone and budget so the run finishes in minutes. ``overrides`` are
    applied last. Returns the config and whether the tiny configuration was used.
    """
    tiny = cpu_tiny and resolve_device(device).type == "cpu"
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
    config = notebook_config(config_file, chosen, CPU_TINY_OVERRIDES if tiny else None, overrides)
    return config, tiny


def check_reusable(run_dir: str | Path, config: Mapping[str, Any]) -> None:
    """Raise :class:`RunMismatchError` naming every key where ``run_dir``'s saved config differs from ``config``.

    A key that did not exist when the run was trained (newer defaults) counts as its default value.
    """
    saved = read_config(run_dir)
    if not saved:
        raise RunMismatchError(f"{run_dir}: no config.yaml, so it cannot be reused as a run")
    requested = yaml.safe_load(yaml.safe_dump(dict(config), sort_keys=False))
    changed = [d for d in config_differences(saved, requested, DEFAULT_CONFIG) if d[0] not in REUSE_IGNORED]
    if changed:
        details = "; ".join(f"{'.'.join(path)}: saved {old!r}, requested {new!r}" for path, old, new in changed)
        raise RunMismatchError(
            f"{run_dir} is a finished run with a different configuration ({details}); "
            "choose another runs_dir or delete that run to retrain it"
        )


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
        if (run_dir / "done").is_file():
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
            self.config["train"]["steps"] = steps_for_epochs(self.trainer.sampler, epochs)
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
        return (self.run_dir / "done").is_file()

    def records(self) -> list[dict[str, Any]]:
        return load_records(self.run_dir) if (self.run_dir / "records.jsonl").is_file() else []

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
def run_manifest(config: Mapping[str, Any], check_files: bool = True) -> tuple[pd.DataFrame, Path]:
    """The validated manifest a config trains on (the embedded benchmark is generated if needed) and its root."""
    data = config["data"]
    path = data["manifest"] or synthetic_manifest(data["synthetic"])
    return read_manifest(path, data["root"], check_files=check_files)


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


def pick_frames(
    manifest: pd.DataFrame,
    per_domain: int,
    domains: Sequence[str] | None = None,
    split: str | None = None,
    label: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Up to ``per_domain`` rows per domain (in ``domains`` order), from as many different videos as possible.

    Rows are drawn at random from a generator seeded by ``seed`` and the domain name (so a domain
    gets the same rows whatever else is asked for); one frame per video comes first, then further
    frames if the domain has fewer videos than ``per_domain``. ``split``/``label`` filter the rows first.
    """
    if per_domain < 1:
        raise ValueError(f"per_domain={per_domain} must be positive")
    available = list(dict.fromkeys(manifest["domain"]))
    domains = available if domains is None else list(domains)
    unknown = [d for d in domains if d not in available]
    if unknown:
        raise ManifestError(f"domain(s) {unknown} are not in the manifest; it has {available}")
    chosen = []
    for domain in domains:
        rows = manifest[manifest["domain"] == domain]
        if split is not None:
            rows = rows[rows["split"] == split]
        if label is not None:
            rows = rows[rows["label"] == label]
        if rows.empty:
            raise ManifestError(f"domain {domain!r} has no frames with split={split!r}, label={label!r}")
        shuffled = rows.sample(frac=1.0, random_state=np.random.default_rng([seed, zlib.crc32(domain.encode())]))
        first = shuffled.drop_duplicates("video")
        chosen.append(pd.concat([first, shuffled.drop(first.index)]).head(per_domain))
    return pd.concat(chosen)


def showcase_rows(
    manifest: pd.DataFrame, per_domain: int = 1, split: str | None = "test", seed: int = 0
) -> pd.DataFrame:
    """Rows to show each domain by: its fakes when it has any (in ``split``), else its reals."""
    rows = manifest if split is None else manifest[manifest["split"] == split]
    picked = []
    for domain in dict.fromkeys(rows["domain"]):
        has_fakes = bool((rows.loc[rows["domain"] == domain, "label"] == 1).any())
        picked.append(pick_frames(rows, per_domain, [domain], label=1 if has_fakes else 0, seed=seed))
    if not picked:
        raise ManifestError(f"the manifest has no frames in split {split!r}")
    return pd.concat(picked)


def load_mask(path: str | Path, size: int) -> np.ndarray:
    """A manipulation mask image as a float ``size×size`` array in [0, 1] (bilinear resize)."""
    try:
        with Image.open(path) as image:
            mask = image.convert("L").resize((size, size), Image.BILINEAR)
            return np.asarray(mask, dtype=np.float64) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise ManifestError(f"cannot read mask {str(path)!r}: {exc}") from exc


@dataclass
class Frames:
    """Manifest rows with their images (uint8 ``[N, 3, H, W]``) and masks (float ``[N, H, W]``, zero = none)."""

    rows: pd.DataFrame
    images: torch.Tensor
    masks: np.ndarray

    @property
    def inputs(self) -> torch.Tensor:
        """The images as the models see them (float, ImageNet-normalised)."""
        return normalize(self.images)

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor(self.rows["label"].to_numpy(), dtype=torch.long)

    @property
    def domains(self) -> list[str]:
        return [str(d) for d in self.rows["domain"]]


def load_frames(rows: pd.DataFrame, root: str | Path, image_size: int) -> Frames:
    """Decode the images of manifest ``rows`` and their ``mask_path`` masks (zeros where a row has none)."""
    if rows.empty:
        raise ValueError("no rows to load")
    root = Path(root)
    images = torch.stack([load_image(root / path, image_size) for path in rows["path"]])
    masks = np.zeros((len(rows), image_size, image_size))
    if "mask_path" in rows.columns:
        for i, mask_path in enumerate(rows["mask_path"]):
            if isinstance(mask_path, str) and mask_path:
                masks[i] = load_mask(root / mask_path, image_size)
    return Frames(rows.reset_index(drop=True), images, masks)


def analysis_batches(
    config: Mapping[str, Any],
    split: str = "val",
    per_domain: int = 32,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[str]]:
    """One batch per source domain, ``[(x_k, y_k)]``, and the domain names: what the analysis functions take.

    Domain k's batch holds ``per_domain // 2`` of its fakes from ``split`` and as many reals drawn
    from the split's real pool (as in training, DESIGN.md §3), normalised and without augmentation.
    """
    if per_domain < 2:
        raise ValueError(f"per_domain={per_domain} must be at least 2 (fakes and reals)")
    manifest, root = run_manifest(config)
    domains = list(config["data"]["source_domains"])
    size = int(config["data"]["image_size"])
    reals = manifest.iloc[real_rows(manifest, source_datasets(manifest, domains), split)]
    if reals.empty:
        raise ManifestError(f"no real frames in split {split!r} of the source datasets")
    batches = []
    for k, domain in enumerate(domains):
        fakes = pick_frames(manifest, per_domain // 2, [domain], split=split, label=1, seed=seed)
        n_real = per_domain - len(fakes)
        picked = np.random.default_rng([seed, k, 1]).choice(len(reals), n_real, replace=n_real > len(reals))
        frames = load_frames(pd.concat([fakes, reals.iloc[picked]]), root, size)
        batches.append((frames.inputs.to(device), frames.labels.to(device)))
    return batches, domains


def pooled_batch(domain_batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """All domain batches as one batch (what ERM trains on)."""
    return torch.cat([x for x, _ in domain_batches]), torch.cat([y for _, y in domain_batches])


def load_run_model(run_dir: str | Path, checkpoint: str = BEST, device: str | torch.device = "cpu") -> nn.Module:
    """The run's backbone with the weights of ``checkpoints/<checkpoint>`` (default: the selected one), in eval mode."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    if not config:
        raise FileNotFoundError(f"{run_dir / 'config.yaml'} does not exist; is {str(run_dir)!r} a run directory?")
    model = create_model(config["model"]["name"], pretrained=False, **(config["model"].get("kwargs") or {}))
    state = load_checkpoint(run_dir / "checkpoints" / checkpoint, map_location=device)
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def target_kinds(config: Mapping[str, Any]) -> dict[str, str]:
    """``{"target/<domain>": kind}``: "held-out manipulation" (a source dataset) or "cross-dataset"."""
    manifest, _ = run_manifest(config, check_files=False)
    sources = set(source_datasets(manifest, config["data"]["source_domains"]))
    return {
        f"target/{domain}": "held-out manipulation"
        if set(source_datasets(manifest, [domain])) <= sources else "cross-dataset"
        for domain in config["data"]["target_domains"] or ()
    }


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
    With ``manifest``, each row gets its ``mask_path`` (for :func:`load_frames`).
    """
    path = Path(run_dir) / "predictions.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; the run has not finished")
    predictions = pd.read_csv(path, dtype={"video": str, "path": str, "domain": str, "group": str})
    if groups is None:
        groups = [g for g in predictions["group"].unique() if g == "source_test" or g.startswith("target/")]
    rows = predictions[predictions["group"].isin(groups)].drop_duplicates("path")
    wrong = rows[(rows["prob_fake"] >= threshold).astype(int) != rows["label"]]
    error = (wrong["label"] - wrong["prob_fake"]).abs()
    wrong = wrong.assign(error=error).sort_values("error", ascending=False).head(limit).reset_index(drop=True)
    if manifest is not None and "mask_path" in manifest.columns:
        wrong = wrong.merge(manifest[["path", "mask_path"]].drop_duplicates("path"), on="path", how="left")
    return wrong


def prediction_titles(rows: pd.DataFrame) -> list[str]:
    """``"i. domain<br>real/fake · p=0.87"`` per prediction row (``p`` = predicted probability of fake)."""
    return [f"{i + 1}. {row.domain}<br>{'fake' if row.label == 1 else 'real'} · p={row.prob_fake:.2f}"
            for i, row in enumerate(rows.itertuples())]


def figure_summary(summary: pd.DataFrame, rule: str = "source_val") -> pd.DataFrame:
    """A report summary's rows selected by ``rule``, one per (label, group), for :func:`workbench.viz.results_bars`.

    Config variants get their own label (``"roga (algorithm.hparams.rho=0.1)"``) so they are never pooled.
    """
    rows = summary[summary["selection"] == rule]
    if rows.empty:
        have = sorted(summary["selection"].unique())
        raise ValueError(f"the summary has no rows selected by {rule!r}; it has {have}")
    variants = rows["variant"].fillna("").astype(str)
    labels = [a if not v else f"{a} ({v})" for a, v in zip(rows["algorithm"], variants)]
    if rows["backbone"].nunique() > 1:
        labels = [f"{label} · {b}" for label, b in zip(labels, rows["backbone"])]
    return rows.assign(algorithm=labels)


def held_out_table(summary: pd.DataFrame, kinds: Mapping[str, str], rule: str = "source_val") -> pd.DataFrame:
    """Mean ± std [CI] per algorithm (rows) and group (columns), grouped as source / held-out / cross-dataset.

    ``kinds`` maps target groups to their kind (:func:`target_kinds`); ``source_*`` groups are "source".
    """
    rows = figure_summary(summary, rule)
    kind_of = {group: "source" if group.startswith("source") else kinds.get(group, "target") for group in rows["group"]}
    cells = rows.assign(
        kind=rows["group"].map(kind_of),
        cell=[format_cell(r.mean, r.std, r.ci_low, r.ci_high) for r in rows.itertuples()],
    )
    table = cells.pivot(index="algorithm", columns=["kind", "group"], values="cell")
    kinds_in_order = ("source", "held-out manipulation", "cross-dataset", "target")
    order = [column for kind in kinds_in_order for column in table.columns if column[0] == kind]
    return table[order].reindex(list(dict.fromkeys(rows["algorithm"])))


# ------------------------------------------------------------------------------ attribution
def gradcams(models: Mapping[str, nn.Module], inputs: torch.Tensor, target: int = 1) -> dict[str, np.ndarray]:
    """Each model's Grad-CAM of class ``target`` (1 = fake) at its default layer, ``{name: [N, H, W]}`` in [0, 1]."""
    return {name: GradCAM(model).attribute(inputs, target=target, normalize=True)[:, 0].numpy()
            for name, model in models.items()}


def localisation_table(cams: Mapping[str, np.ndarray], frames: Frames, threshold: float = 0.5) -> pd.DataFrame:
    """Per algorithm and domain: CAM energy inside the manipulation mask, pointing game and mask area."""
    tables = [localisation_by_domain(maps, frames.masks, frames.domains, threshold).assign(algorithm=name)
              for name, maps in cams.items()]
    table = pd.concat(tables).reset_index().rename(columns={"index": "domain"})
    return table[["algorithm", "domain", "energy_in_mask", "pointing_game", "mask_fraction", "n", "n_undefined"]]


def gallery_inputs(
    frames: Frames, cams: Mapping[str, np.ndarray], titles: Sequence[str] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """``(images, cams)`` for :func:`workbench.viz.gradcam_gallery`: one column per frame, titled by ``titles``.

    ``titles`` default to the domains; they must be unique (use :func:`first_per_domain` to pick frames).
    """
    titles = frames.domains if titles is None else [str(t) for t in titles]
    if len(titles) != len(frames.rows) or len(set(titles)) != len(titles):
        raise ValueError(f"need {len(frames.rows)} unique column titles, got {titles}")
    images = {title: frames.images[i] for i, title in enumerate(titles)}
    maps = {name: {title: values[i] for i, title in enumerate(titles)} for name, values in cams.items()}
    return images, maps


def first_per_domain(frames: Frames) -> list[int]:
    """Index of the first frame of each domain, in order of appearance."""
    return [frames.domains.index(domain) for domain in dict.fromkeys(frames.domains)]


def subset(frames: Frames, indices: Sequence[int]) -> Frames:
    """The frames at ``indices``."""
    indices = list(indices)
    return Frames(frames.rows.iloc[indices].reset_index(drop=True), frames.images[indices], frames.masks[indices])


# ----------------------------------------------------------------------------------- figures
def image_grid(
    images: Sequence[Any], titles: Sequence[str], columns: int, title: str | None = None, cell_size: int = 130
) -> go.Figure:
    """Images in a grid (row-major), each with its title; images are RGB (uint8 or [0, 1]) or 2-D masks in [0, 1]."""
    if len(images) != len(titles):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    if not images or columns < 1:
        raise ValueError("need at least one image and one column")
    rows = math.ceil(len(images) / columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=list(titles),
                           horizontal_spacing=0.01, vertical_spacing=0.3 / rows)
    for i, image in enumerate(images):
        array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        if array.ndim == 2:
            if array.min() < 0 or array.max() > 1:
                raise ValueError(f"image {i} ({titles[i]}): a 2-D mask must lie in [0, 1]")
            array = np.repeat(array[..., None], 3, axis=-1)
        figure.add_trace(go.Image(z=rgb_uint8(array), hoverinfo="skip"), row=i // columns + 1, col=i % columns + 1)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_annotations(font_size=10)
    figure.update_layout(title=title, width=cell_size * columns + 60, height=cell_size * rows + 100,
                         margin=dict(l=20, r=20, t=80, b=20))
    return figure


def frame_gallery(
    frames: Frames, title: str | None = None, masks: bool = True, per_row: int | None = None
) -> go.Figure:
    """Frames titled ``domain · real/fake``, each followed by its manipulation mask when ``masks`` (white = changed).

    ``per_row`` frames per row (default: the most frames any domain has, so domains picked by
    :func:`pick_frames` get a row each).
    """
    images, titles = [], []
    for i, (domain, label) in enumerate(zip(frames.domains, frames.rows["label"])):
        images.append(frames.images[i])
        titles.append(f"{domain} · {'fake' if label == 1 else 'real'}")
        if masks:
            images.append(frames.masks[i])
            titles.append("mask")
    per_row = per_row or int(pd.Series(frames.domains).value_counts().max())
    columns = per_row * (2 if masks else 1)
    return image_grid(images, titles, columns=min(columns, len(images)), title=title)


def localisation_figure(table: pd.DataFrame, value: str = "energy_in_mask") -> go.Figure:
    """Grouped bars of a :func:`localisation_table` per domain and algorithm, with the mask area as a reference.

    A CAM spread uniformly over the image scores the mask's area share (``mask_fraction``) on
    ``energy_in_mask``; bars above the black markers concentrate on the manipulated region.
    """
    defined = table.dropna(subset=[value])
    figure = go.Figure()
    for algorithm, colour in colours_for(defined["algorithm"]).items():
        rows = defined[defined["algorithm"] == algorithm]
        figure.add_trace(go.Bar(x=rows["domain"], y=rows[value], name=algorithm, marker_color=colour))
    if value == "energy_in_mask":
        reference = defined.groupby("domain", sort=False)["mask_fraction"].mean()
        figure.add_trace(go.Scatter(
            x=list(reference.index), y=list(reference.values), mode="markers", name="uniform CAM",
            marker=dict(symbol="line-ew-open", size=30, color="black", line=dict(width=3)),
        ))
    figure.update_layout(barmode="group", yaxis=dict(title=value, range=[0, 1]), title=f"Grad-CAM {value} per domain")
    return figure


def counts_figure(manifest: pd.DataFrame, title: str = "Frames per domain") -> go.Figure:
    """Bars of frames per domain, stacked by split, one panel per label (real / fake)."""
    frame = manifest.assign(label=manifest["label"].map({0: "real", 1: "fake"}))
    counts = frame.groupby(["label", "domain", "split"]).size().rename("frames").reset_index()
    figure = px.bar(counts, x="domain", y="frames", color="split", facet_col="label", title=title,
                    category_orders={"split": ["train", "val", "test"], "label": ["real", "fake"]})
    figure.update_xaxes(matches=None)
    return figure


def layerwise_heatmap(frames: Mapping[str, pd.DataFrame], title: str = "cos(g_k, g) per parameter group") -> go.Figure:
    """A heatmap per algorithm of :func:`workbench.analysis.layerwise_cosine` tables (rows: layers, cols: domains)."""
    if not frames:
        raise ValueError("no layer-wise tables given")
    names = list(frames)
    figure = make_subplots(rows=1, cols=len(names), subplot_titles=names, shared_yaxes=True, horizontal_spacing=0.03)
    for column, name in enumerate(names, start=1):
        table = frames[name]
        figure.add_trace(
            go.Heatmap(z=table.to_numpy(), x=[str(c) for c in table.columns], y=[str(i) for i in table.index],
                       zmin=-1, zmax=1, colorscale="RdBu", texttemplate="%{z:.2f}", showscale=column == len(names),
                       colorbar=dict(title="cos"), hovertemplate=name + " · %{y} · %{x}: %{z:.3f}<extra></extra>"),
            row=1, col=column,
        )
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(title=title, height=120 + 28 * max(len(t) for t in frames.values()))
    return figure


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
        for algorithm, colour in colours_for(table["algorithm"]).items():
            figure.add_trace(go.Bar(x=self.domains, name=algorithm, marker_color=colour))
        low, top = min(0.0, float(table[value].min())), float(table[value].max())
        figure.update_layout(barmode="group", yaxis=dict(title=value, range=[low, top * 1.1 or 1.0]))
        self.figure = go.FigureWidget(figure)
        self.widget = widgets.VBox([self.slider, self.figure])
        self.slider.observe(lambda change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        rho = self.slider.value
        at = self.table[self.table["rho"] == rho]
        with self.figure.batch_update():
            for trace in self.figure.data:
                rows = at[at["algorithm"] == trace.name].groupby("domain")[self.value].mean()
                trace.y = [rows.get(domain, np.nan) for domain in self.domains]
            self.figure.layout.title.text = f"{self.value} at ρ = {rho:g}"


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
