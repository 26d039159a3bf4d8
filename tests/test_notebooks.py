"""Every curated notebook runs headless (papermill) with tiny parameters and shows what it promises.

The analysis notebooks (03–06) share four tiny runs (ERM, SAM, SAGM, RoGA) trained once per test
session by :func:`shared_runs`; they reuse them through ``train_runs``, which accepts a finished run
only when its configuration equals the requested one. 00 and 02 train their own tiny runs.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import papermill
import pytest
import torch
import yaml
from conftest import write_tiny_dataset
from PIL import Image

from workbench.config import load_config
from workbench.models import create_model
from workbench.notebook_support import (
    PROJECT_ROOT,
    LiveTraining,
    RunMismatchError,
    check_reusable,
    merge_overrides,
    misclassified,
    notebook_config,
    steps_for_epochs,
    train_runs,
    training_config,
)
from workbench.training.adopt import adopt_run

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = (
    "00_quickstart",
    "01_data",
    "02_train",
    "03_gradient_alignment",
    "04_sharpness",
    "05_gradcam",
    "06_results",
    "07_inspect_media",
)
KERNEL = "python3"  # jupyter_client runs the "python" kernelspec with the current interpreter (the venv)
ALGORITHMS = ["erm", "sam", "sagm", "roga"]
CONFIG_FILE = "configs/demo.yaml"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Modules a notebook may import: the library, and display/data tools (no logic of their own).
ALLOWED_IMPORTS = ("workbench", "IPython", "pandas", "numpy", "yaml")
# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine a second OpenMP thread
# that is not scheduled makes every operator wait for it (measured: 1.6 s instead of 0.01 s per
# forward/backward of test_resnet). Kernels started by the tests inherit this environment.
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def tiny_overrides(cache_dir: Path) -> dict[str, Any]:
    """The tiny configuration the tests inject: 32 px synthetic benchmark, test_resnet, 4 steps."""
    return {
        "data": {
            "synthetic": {
                "cache_dir": str(cache_dir),
                "videos_per_domain": 6,
                "frames_per_video": 2,
                "size": 32,
                "workers": 1,
            },
            "image_size": 32,
            "batch_size": 16,
            "eval_batch_size": 256,
        },
        "model": {"name": "test_resnet", "pretrained": False},
        "train": {"steps": 4, "eval_every": 2, "alignment_every": 2, "device": "cpu", "progress": False},
    }


@contextmanager
def single_thread() -> Iterator[None]:
    """Run a block with one intra-op thread (see :data:`KERNEL_ENV`), then restore the setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Tiny ERM/SAM/SAGM/RoGA runs under the session's base temp (reused by a second caller)."""
    base = tmp_path_factory.getbasetemp()
    overrides = tiny_overrides(base / "synthetic")
    runs_dir = base / "notebook-runs"
    started = time.perf_counter()
    with single_thread():
        runs = train_runs(notebook_config(CONFIG_FILE, overrides), runs_dir, ALGORITHMS)
    print(f"\nshared runs ({', '.join(ALGORITHMS)}): {time.perf_counter() - started:.1f} s")
    return {"overrides": overrides, "runs_dir": str(runs_dir), "runs": runs, "algorithms": ALGORITHMS}


@pytest.fixture(autouse=True)
def kernel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in KERNEL_ENV.items():
        monkeypatch.setenv(name, value)


def execute(name: str, out_dir: Path, parameters: dict[str, Any]) -> nbformat.NotebookNode:
    """Run ``notebooks/<name>.ipynb`` with ``parameters`` (each must exist in its parameters cell)."""
    source = NOTEBOOKS_DIR / f"{name}.ipynb"
    declared = set(papermill.inspect_notebook(str(source)))
    unknown = set(parameters) - declared
    assert not unknown, f"{name}: parameters {sorted(unknown)} are not in its parameters cell {sorted(declared)}"
    started = time.perf_counter()
    executed = papermill.execute_notebook(
        str(source),
        str(out_dir / f"{name}.ipynb"),
        parameters=parameters,
        kernel_name=KERNEL,
        cwd=str(out_dir),
        progress_bar=False,
        request_save_on_cell_execute=False,
    )
    print(f"\n{name}: executed in {time.perf_counter() - started:.1f} s")
    return executed


def outputs(notebook: nbformat.NotebookNode) -> list[dict[str, Any]]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]


def text_of(notebook: nbformat.NotebookNode) -> str:
    """All printed text, plain-text and HTML representations of the notebook's outputs."""
    parts = []
    for output in outputs(notebook):
        if output.get("output_type") == "stream":
            parts.append(output["text"])
        for mime in ("text/plain", "text/html", "text/markdown"):
            if mime in output.get("data", {}):
                parts.append(output["data"][mime])
    return "\n".join(parts)


def plotly_figures(notebook: nbformat.NotebookNode) -> list[dict[str, Any]]:
    figures = []
    for output in outputs(notebook):
        value = output.get("data", {}).get(PLOTLY_MIME)
        if value is not None:
            figures.append(value if isinstance(value, dict) else json.loads(value))
    return figures


def plotly_array(value: Any) -> np.ndarray:
    """An array of a plotly figure's JSON: a list, or plotly's typed array ``{"dtype", "bdata", "shape"}``."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return array.reshape([int(n) for n in str(value.get("shape", len(array))).split(",")])
    return np.asarray(value, dtype=float)


def widget_count(notebook: nbformat.NotebookNode) -> int:
    return sum(WIDGET_MIME in output.get("data", {}) for output in outputs(notebook))


def trace_types(notebook: nbformat.NotebookNode) -> set[str]:
    return {trace.get("type", "scatter") for figure in plotly_figures(notebook) for trace in figure["data"]}


def shared_parameters(shared: dict[str, Any]) -> dict[str, Any]:
    return {
        "config_file": CONFIG_FILE,
        "overrides": shared["overrides"],
        "runs_dir": shared["runs_dir"],
        "algorithms": shared["algorithms"],
    }


# ------------------------------------------------------------------------- library helpers
def test_merge_overrides_is_deep_and_later_values_win() -> None:
    first = {"train": {"steps": 10, "seed": 1}, "data": {"synthetic": {"size": 32}}}
    merged = merge_overrides(first, None, {"train": {"steps": 20}, "data": {"synthetic": {"seed": 3}}})
    assert merged == {"train": {"steps": 20, "seed": 1}, "data": {"synthetic": {"size": 32, "seed": 3}}}
    assert first["train"]["steps"] == 10  # inputs are not modified
    with pytest.raises(TypeError, match="nested mapping"):
        merge_overrides(["train.steps=3"])


def test_notebook_config_resolves_relative_paths_against_the_project_root(tmp_path: Path) -> None:
    config = notebook_config(CONFIG_FILE, {"run": {"dir": "runs/x"}, "data": {"root": str(tmp_path)}})
    assert config["run"]["dir"] == str(PROJECT_ROOT / "runs" / "x")
    assert config["data"]["synthetic"]["cache_dir"] == str(PROJECT_ROOT / ".cache" / "synthetic")
    assert config["data"]["root"] == str(tmp_path)  # absolute paths are kept
    assert config["data"]["manifest"] is None
    with pytest.raises(KeyError, match="train.stpes"):
        notebook_config(CONFIG_FILE, {"train": {"stpes": 3}})


def test_notebook_config_resolves_manifest_lists_and_weights_files(tmp_path: Path) -> None:
    """The paper configs list one manifest and root per dataset; a weights file is a path too."""
    config = notebook_config("configs/paper/ffpp_c23_xception.yaml", {"model": {"pretrained": "weights/x.safetensors"}})
    manifests = config["data"]["manifest"]
    assert isinstance(manifests, list) and len(manifests) > 1
    assert all(Path(m).is_absolute() and m.startswith(str(PROJECT_ROOT)) for m in manifests)
    assert config["model"]["pretrained"] == str(PROJECT_ROOT / "weights" / "x.safetensors")
    assert notebook_config(CONFIG_FILE)["model"]["pretrained"] is False


def test_training_config_keeps_the_files_weights_and_device_unless_given(tmp_path: Path) -> None:
    file = tmp_path / "gpu.yaml"
    file.write_text(
        yaml.safe_dump({"model": {"pretrained": str(tmp_path / "w.safetensors")}, "train": {"device": "cpu"}})
    )
    config, tiny = training_config(file, cpu_tiny=False)
    assert config["model"]["pretrained"] == str(tmp_path / "w.safetensors") and config["train"]["device"] == "cpu"
    assert not tiny
    config, tiny = training_config(file, pretrained=False, device="cpu")
    assert config["model"]["pretrained"] is False and tiny  # the file's cpu device makes it tiny too


def test_a_run_trained_from_the_command_line_is_reusable_by_the_notebooks(tmp_path: Path) -> None:
    """``python -m workbench train`` saves relative paths and its own run location; neither is a difference."""
    saved = load_config(
        PROJECT_ROOT / CONFIG_FILE, {"run": {"name": "roga-test_resnet-seed0"}, "data": {"eval_batch_size": 64}}
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    check_reusable(tmp_path, notebook_config(CONFIG_FILE))
    paper = "configs/paper/ffpp_c23_efficientnet_b4.yaml"  # relative manifests and weights, saved as given
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(load_config(PROJECT_ROOT / paper)))
    check_reusable(tmp_path, notebook_config(paper))


def test_check_reusable_names_differences_and_accepts_new_default_keys(tmp_path: Path) -> None:
    config = notebook_config(CONFIG_FILE)
    saved = json.loads(json.dumps(config))
    del saved["train"]["alignment_every"]  # a key added to the defaults after this run was trained
    saved["train"]["device"] = "cuda"  # where it ran does not matter
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    check_reusable(tmp_path, config)
    changed = merge_overrides(config, {"algorithm": {"hparams": {"rho": 0.1}}, "train": {"alignment_every": 5}})
    with pytest.raises(RunMismatchError) as error:
        check_reusable(tmp_path, changed)
    assert "algorithm.hparams.rho: saved 0.05, requested 0.1" in str(error.value)
    assert "train.alignment_every: saved 0, requested 5" in str(error.value)
    with pytest.raises(RunMismatchError, match="no config.yaml"):
        check_reusable(tmp_path / "missing", config)


def test_steps_for_epochs_counts_fakes_seen() -> None:
    class Sampler:  # 4 domains x 3 fakes per step; 40 distinct training fakes
        n_fake = 3
        fake_pools = [None] * 4

        @staticmethod
        def fakes_per_epoch() -> int:
            return 40

    assert steps_for_epochs(Sampler(), 3) == 10  # ceil(3 * 40 / 12)
    assert steps_for_epochs(Sampler(), 0.01) == 1
    with pytest.raises(ValueError, match="positive"):
        steps_for_epochs(Sampler(), 0)


def test_misclassified_sorts_confident_mistakes_and_attaches_masks(tmp_path: Path) -> None:
    predictions = pd.DataFrame(
        {
            "group": ["source_test", "source_test/A", "source_test", "source_test", "target/T", "source_val"],
            "path": ["a.png", "a.png", "b.png", "c.png", "d.png", "e.png"],
            "domain": ["A", "A", "R", "A", "T", "A"],
            "split": ["test"] * 5 + ["val"],
            "video": ["1", "1", "2", "3", "4", "5"],
            "label": [1, 1, 0, 1, 1, 1],
            "prob_fake": [0.3, 0.3, 0.9, 0.8, 0.05, 0.0],
            "step": [4] * 6,
        }
    )
    predictions.to_csv(tmp_path / "predictions.csv", index=False)
    manifest = pd.DataFrame(
        {  # a.png is also a path of another dataset (domain Z): each keeps its own root
            "path": ["a.png", "a.png", "b.png", "d.png"],
            "domain": ["Z", "A", "R", "T"],
            "video": ["9", "1", "2", "4"],
            "mask_path": ["z_mask.png", "a_mask.png", None, "d_mask.png"],
            "root_index": [1, 0, 0, 1],
        }
    )
    wrong = misclassified(tmp_path, limit=5, manifest=manifest)
    assert list(wrong["path"]) == ["d.png", "b.png", "a.png"]  # errors .95, .9, .7; e.png is val, c.png right
    assert list(wrong["mask_path"].fillna("")) == ["d_mask.png", "", "a_mask.png"]
    assert list(wrong["root_index"]) == [1, 0, 0]
    assert list(misclassified(tmp_path, limit=1)["path"]) == ["d.png"]


@pytest.mark.timeout(120)
def test_live_training_in_chunks_matches_an_uninterrupted_run(tiny_config: dict, tmp_path: Path) -> None:
    def eval_lines(run_dir: Path) -> list[dict]:
        lines = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
        return [{"step": r["step"], "eval": r["eval"], "loss": r["train"]["loss"]} for r in lines if "eval" in r]

    with single_thread():
        straight = LiveTraining(tiny_config, tmp_path / "straight")
        straight.run()
        interrupted = LiveTraining(tiny_config, tmp_path / "chunked")
        interrupted.run(until_step=2)  # stops at the first evaluation at or after step 2
        assert [r["step"] for r in eval_lines(tmp_path / "chunked")] == [3] and not interrupted.finished
        resumed = LiveTraining(tiny_config, tmp_path / "chunked")  # e.g. after a kernel restart
        resumed.run()
        resumed.run()  # a finished run returns at once
    assert resumed.finished and "step 6/6 (done)" in resumed.status()
    assert eval_lines(tmp_path / "chunked") == eval_lines(tmp_path / "straight")
    assert len(resumed.figure.data) > 0 and resumed.figure.layout.title.text == resumed.status()
    with pytest.raises(RunMismatchError, match="train.steps"):
        LiveTraining(merge_overrides(tiny_config, {"train": {"steps": 9}}), tmp_path / "chunked")


# ------------------------------------------------------------------------------- structure
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_clean_and_calls_the_library_only(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == KERNEL
    # no saved widget state (megabytes with plotly's FigureWidget) and no papermill run records
    assert set(notebook.metadata) <= {"kernelspec", "language_info"}, f"{name}: strip the notebook metadata"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    tagged = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: needs exactly one cell tagged 'parameters'"
    assert code.index(tagged[0]) == 0, f"{name}: the parameters cell must be the first code cell"
    assigned = [node.targets[0].id for node in ast.parse(tagged[0].source).body if isinstance(node, ast.Assign)]
    # papermill skips a line it cannot parse (e.g. a comment holding "="), so it could not inject it
    assert list(papermill.inspect_notebook(str(NOTEBOOKS_DIR / f"{name}.ipynb"))) == assigned
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs must be stripped"
        assert set(cell.metadata) <= {"tags"} and "injected-parameters" not in cell.metadata.get("tags", [])
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Lambda)), (
                f"{name}: define functions in the library, not in the notebook:\n{cell.source}"
            )
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert all(m.split(".")[0] in ALLOWED_IMPORTS for m in modules), f"{name}: imports {modules}"
    markdown = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")
    assert len(markdown) >= len(code) // 2, f"{name}: explain the figures in markdown cells"


# ------------------------------------------------------------------------------- execution
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_00_quickstart_trains_and_reports_held_out_auc(tmp_path: Path, shared_runs: dict[str, Any]) -> None:
    runs_dir = tmp_path / "quickstart"
    notebook = execute(
        "00_quickstart",
        tmp_path,
        {"overrides": shared_runs["overrides"], "runs_dir": str(runs_dir), "algorithms": ["erm", "roga"]},
    )
    for algorithm in ("erm", "roga"):
        assert (runs_dir / f"{algorithm}-seed0" / "done").is_file()
    text = text_of(notebook)
    for column in ("source_test", "target/SYN-SEAMLESS", "target/SYN-COMPRESS", "held_out_mean", "gap"):
        assert column in text
    assert "video bootstrap" in text.lower()  # the CI summary table
    titles = [figure["layout"].get("title", {}).get("text", "") for figure in plotly_figures(notebook)]
    assert any("One frame per domain" in t for t in titles) and any("bootstrap" in t for t in titles)
    gallery = next(f for f in plotly_figures(notebook) if "One frame per domain" in f["layout"]["title"]["text"])
    assert sum(trace["type"] == "image" for trace in gallery["data"]) == 2 * 7  # 7 domains, frame + mask each


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_01_data_shows_schema_benchmark_and_a_real_manifest(tmp_path: Path, shared_runs: dict[str, Any]) -> None:
    manifest = write_tiny_dataset(tmp_path / "dataset", size=32)
    notebook = execute(
        "01_data",
        tmp_path,
        {
            "overrides": shared_runs["overrides"],
            "manifest_path": str(manifest),
            "data_root": str(manifest.parent),
            "samples_per_domain": 2,
        },
    )
    text = text_of(notebook)
    assert "ManifestError: example.csv: line 4, column 'label': 'fake' is not a known label" in text
    assert "SYN-SEAMLESS" in text and "with_mask" in text
    assert "D-T" in text  # the counts table of the given manifest
    titles = [figure["layout"].get("title", {}).get("text", "") for figure in plotly_figures(notebook)]
    assert sum("frames per domain and split" in t for t in titles) == 2  # benchmark and given manifest
    assert any(str(manifest) in t and "sample frames" in t for t in titles)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_02_train_runs_live_and_resumes(tmp_path: Path, shared_runs: dict[str, Any]) -> None:
    run_dir = tmp_path / "train-run"
    notebook = execute(
        "02_train",
        tmp_path,
        {"overrides": shared_runs["overrides"], "run_dir": str(run_dir), "interrupt_at_step": 2, "device": "cpu"},
    )
    text = text_of(notebook)
    assert "CPU: running the tiny configuration" in text
    assert "train-run: step 2/4 (training)" in text  # stopped early, as if interrupted
    assert "train-run: step 4/4 (done)" in text  # the next cell resumed and finished
    assert "evaluated steps: [2, 4]" in text
    assert (run_dir / "done").is_file()
    steps = [json.loads(line)["step"] for line in (run_dir / "records.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps.count(2) == 2  # one eval and one alignment line per step, no repeats
    assert widget_count(notebook) >= 1  # the live FigureWidget
    assert "selected step" in text and "target/SYN-COMPRESS" in text


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_03_gradient_alignment(tmp_path: Path, shared_runs: dict[str, Any]) -> None:
    notebook = execute("03_gradient_alignment", tmp_path, {**shared_parameters(shared_runs), "batch_per_domain": 4})
    titles = [figure["layout"].get("title", {}).get("text", "") for figure in plotly_figures(notebook)]
    for algorithm in ("ERM", "SAM", "SAGM", "RoGA"):
        assert any(t.startswith(f"{algorithm}: cos(g_i, g_j)") for t in titles)
    assert "Gradient alignment over training" in titles
    assert "mean cos(g_k^p, g)" in text_of(notebook) and "cos_perturbed_mean" not in text_of(notebook)  # labelled
    assert widget_count(notebook) == 1  # the ρ explorer


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_04_sharpness(tmp_path: Path, shared_runs: dict[str, Any]) -> None:
    notebook = execute(
        "04_sharpness",
        tmp_path,
        {
            **shared_parameters(shared_runs),
            "algorithms": ["erm", "roga"],
            "batch_per_domain": 4,
            "rhos": [0.0, 0.1],
            "landscape_points": 5,
            "surface_points": 3,
            "interpolation_points": 5,
            "hessian_iters": 2,
            "hutchinson_samples": 2,
        },
    )
    assert {"surface", "contour", "scatter"} <= trace_types(notebook)
    titles = [figure["layout"].get("title", {}).get("text", "") for figure in plotly_figures(notebook)]
    assert "ε-sharpness against ρ per domain" in titles and "Linear interpolation ERM → RoGA" in titles
    text = text_of(notebook)
    assert "largest Hessian eigenvalue" in text and "Hessian trace" in text
    assert widget_count(notebook) == 1  # the ρ slider


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_05_gradcam(tmp_path: Path, shared_runs: dict[str, Any]) -> None:
    """Default layer (no gradcam_layer given): at 32 px the test ResNet's deepest stage of at least 8 × 8 is layer1."""
    notebook = execute(
        "05_gradcam",
        tmp_path,
        {**shared_parameters(shared_runs), "per_domain": 2, "method_per_domain": 1, "misclassified_count": 3},
    )
    figures = plotly_figures(notebook)
    titles = [f["layout"].get("title", {}).get("text", "") for f in figures]
    text = text_of(notebook)
    chosen = re.findall(r"^(ERM|SAM|SAGM|RoGA) +(\S+) +(\d+) +(\d+) +True$", text, re.MULTILINE)
    assert chosen == [(name, "layer1", "8", "8") for name in ("ERM", "SAM", "SAGM", "RoGA")]
    gallery = figures[titles.index("Grad-CAM of the fake logit")]
    heatmaps = [trace for trace in gallery["data"] if trace["type"] == "heatmap"]
    assert len(heatmaps) == len(ALGORITHMS) * 6  # 6 fake domains
    assert sum(trace["type"] == "contour" for trace in gallery["data"]) == 5 * 6  # mask outlines: input + 4 maps
    # 8 × 8 maps upsampled to 32 px, not 2 × 2 blobs (a 4-step model's map can be zero everywhere)
    levels = [len(np.unique(np.round(plotly_array(trace["z"]), 6))) for trace in heatmaps]
    assert max(levels) > 16 and all(n > 16 for n in levels if n > 1)
    assert {"Energy in mask", "Pointing game"} <= {
        a["text"].capitalize()
        for a in figures[titles.index("Grad-CAM localisation against depth")]["layout"]["annotations"]
    }
    depth = figures[titles.index("Grad-CAM localisation against depth")]
    assert {trace["name"] for trace in depth["data"]} == {
        "ERM",
        "SAM",
        "SAGM",
        "RoGA",
        "untrained",
        "chance (mask area)",
    }
    assert len({x for trace in depth["data"] for x in trace["x"]}) == 5  # the five stages of the test ResNet
    methods = figures[titles.index("Localisation by attribution method")]
    assert {x for trace in methods["data"] for x in trace["x"]} == {
        "Grad-CAM",
        "Guided<br>Grad-CAM",
        "Integrated<br>Gradients",
        "Occlusion",
    }
    assert "seconds per image" in text and "energy in mask" in text and "energy_in_mask" not in text
    assert "RoGA: four attribution methods" in titles
    assert widget_count(notebook) == 1  # the attribution explorer
    assert "most confident mistakes" in json.dumps(titles) or "classifies every" in text


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_06_results_exports_png_and_pdf_figures(tmp_path: Path, shared_runs: dict[str, Any]) -> None:
    figures_dir, reports_dir = tmp_path / "figures", tmp_path / "reports"
    notebook = execute(
        "06_results",
        tmp_path,
        {
            **shared_parameters(shared_runs),
            "seeds": [0],
            "n_boot": 50,
            "figures_dir": str(figures_dir),
            "reports_dir": str(reports_dir),
            "tune": True,
            "perturbations": ["jpeg", "gaussian_noise"],
            "levels": [1, 5],
        },
    )
    text = text_of(notebook)
    assert "held-out manipulation" in text and "cross-dataset" in text
    assert "[oracle]" in text and "video bootstrap" in text.lower()
    assert "Hyper-parameters of roga/test_resnet [source_val], chosen among 1 variant(s)" in text
    assert (reports_dir / "report.md").is_file() and (reports_dir / "runs.csv").is_file()
    assert any("image/png" in output.get("data", {}) for output in outputs(notebook))  # the print figure
    robustness = pd.read_csv(reports_dir / "robustness.csv")
    assert set(robustness["algorithm"]) == set(ALGORITHMS)
    assert set(zip(robustness["perturbation"], robustness["level"])) == {
        ("none", 0),
        ("jpeg", 1),
        ("jpeg", 5),
        ("gaussian_noise", 1),
        ("gaussian_noise", 5),
    }
    for name in ("results_bars", "results_bars_print", "training_curves", "alignment_over_training", "robustness"):
        png, pdf = figures_dir / f"{name}.png", figures_dir / f"{name}.pdf"
        with Image.open(png) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) > 100
        content = pdf.read_bytes()
        assert content.startswith(b"%PDF-") and b"%%EOF" in content[-1024:]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_analysis_notebooks_read_an_adopted_detector(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """03-05 analyse a detector trained elsewhere (`adopt`, docs/reproduce.md) as its one run, with the run's
    config.yaml as their config_file and no overrides."""
    config = notebook_config(CONFIG_FILE, tiny_overrides(tmp_path_factory.getbasetemp() / "synthetic"))
    config["algorithm"] = {"name": "erm", "hparams": {}}
    torch.manual_seed(7)
    weights = tmp_path / "detector.pth"
    torch.save(create_model("test_resnet").state_dict(), weights)
    with single_thread():
        run = adopt_run(weights, config, tmp_path / "adopted" / "erm-seed0")
    parameters = {
        "config_file": str(run / "config.yaml"),
        "overrides": {},
        "runs_dir": str(run.parent),
        "algorithms": ["erm"],
    }
    alignment = execute(
        "03_gradient_alignment", tmp_path, {**parameters, "batch_per_domain": 4, "explorer_algorithm": "erm"}
    )
    titles = [figure["layout"].get("title", {}).get("text", "") for figure in plotly_figures(alignment)]
    assert any(t.startswith("ERM: cos(g_i, g_j)") for t in titles)
    assert "the runs logged no alignment" in text_of(alignment)
    sharpness = execute(
        "04_sharpness",
        tmp_path,
        {
            **parameters,
            "batch_per_domain": 4,
            "rhos": [0.0, 0.1],
            "landscape_points": 5,
            "surface_points": 3,
            "surface_algorithms": ["erm"],
            "interpolation": [],
            "hessian_iters": 2,
            "hutchinson_samples": 2,
        },
    )
    assert "ε-sharpness against ρ per domain" in [
        f["layout"].get("title", {}).get("text", "") for f in plotly_figures(sharpness)
    ]
    assert "no interpolation between two runs" in text_of(sharpness)
    gradcam = execute(
        "05_gradcam",
        tmp_path,
        {**parameters, "per_domain": 2, "method_per_domain": 1, "misclassified_count": 3, "focus_algorithm": "erm"},
    )
    titles = [f["layout"].get("title", {}).get("text", "") for f in plotly_figures(gradcam)]
    assert "Grad-CAM of the fake logit" in titles and "ERM: four attribution methods" in titles


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_07_inspect_media_scores_the_sample_clip_frame_by_frame(tmp_path: Path, shared_runs: dict[str, Any]) -> None:
    """The shared RoGA run scores the sample clip; its blank middle frame is reported, not scored."""
    parameters = {key: shared_parameters(shared_runs)[key] for key in ("config_file", "overrides", "runs_dir")}
    notebook = execute(
        "07_inspect_media",
        tmp_path,
        {**parameters, "frames": 6, "crop_size": 64, "sample_clip": str(tmp_path / "clip.avi")},
    )
    text = text_of(notebook)
    assert "roga-seed0 (best_source_val.pt) · 32 px" in text and "no_face" in text  # frame 4 of 12 is blank
    assert sum("image/png" in output.get("data", {}) for output in outputs(notebook)) == 1  # the timeline
    assert widget_count(notebook) == 1  # the frame inspector
