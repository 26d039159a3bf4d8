"""Adopting a detector trained elsewhere as a finished run: what it writes, and that evaluation, the notebooks'
loading path and training treat it as a finished run of that detector."""

from __future__ import annotations

import copy
import hashlib
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SOURCE, TARGET, write_tiny_dataset
from PIL import Image
from safetensors.torch import save_file
from sklearn.metrics import roc_auc_score
from test_deepfakebench import _reference_xception, _xception_state

from workbench.__main__ import main
from workbench.analysis.run_summary import AnalysisSettings, analyse_runs
from workbench.config import ConfigError, load_config
from workbench.models import create_model, input_normalization
from workbench.notebook_support import notebook_config, train_runs
from workbench.project import check_reusable
from workbench.training.adopt import InputSizeWarning, adopt_run, check_input_size, file_sha256, input_convention
from workbench.training.run_dir import RunDir
from workbench.training.runs import load_run_model, selected_checkpoint
from workbench.training.scoring import score_checkpoint
from workbench.training.trainer import Trainer, train

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture
def weights(tmp_path):
    """A test_resnet's random weights, saved as a safetensors file (the detector 'trained elsewhere')."""
    torch.manual_seed(5)
    path = tmp_path / "detector.safetensors"
    save_file(create_model("test_resnet").state_dict(), str(path))
    return path


@pytest.fixture
def erm_config(tiny_config):
    config = copy.deepcopy(tiny_config)
    config["algorithm"] = {"name": "erm", "hparams": {}}
    return config


@pytest.fixture
def adopted(weights, erm_config, tmp_path):
    erm_config["train"]["alignment_every"] = 2  # logged by training only: the adopted run's config says 0
    return adopt_run(weights, erm_config, tmp_path / "runs" / "erm-seed0")


def test_adopted_run_is_a_finished_run_of_the_weights(adopted, weights):
    directory = RunDir(adopted)
    config = directory.read_config()
    assert directory.done and not directory.resumable
    assert config["train"]["steps"] == 0
    assert config["train"]["alignment_every"] == 0 and config["train"]["swad"]["enabled"] is False
    assert config["train"]["adopted"] == {
        "weights": str(weights.resolve()),
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
    }
    assert config["model"]["pretrained"] == str(weights.resolve())
    kept = directory.load("best_source_val.pt")
    assert kept["step"] == 0
    expected = create_model("test_resnet", pretrained=weights).state_dict()
    assert kept["model"].keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(kept["model"][key], value)
    records = directory.load_records()
    assert len(records) == 1 and records[0]["step"] == 0 and records[0]["algorithm"] == "erm"


def test_record_equals_metrics_of_the_written_predictions(adopted):
    directory = RunDir(adopted)
    record = directory.load_records()[0]
    predictions = directory.read_predictions()
    assert set(predictions["model"]) == {"source_val"} and set(predictions["step"]) == {0}
    assert set(record["eval"]) == set(predictions["group"])
    assert {"source_val", "source_test", f"target/{TARGET}"} <= set(record["eval"])
    for group, rows in predictions.groupby("group"):
        metrics = record["eval"][group]
        assert metrics["n"] == len(rows) and metrics["n_fake"] == int(rows["label"].sum())
        assert metrics["acc"] == pytest.approx(((rows["prob_fake"] >= 0.5) == rows["label"].astype(bool)).mean())
        if rows["label"].nunique() == 2:
            assert metrics["auc"] == pytest.approx(roc_auc_score(rows["label"], rows["prob_fake"]))


def test_eval_scores_the_adopted_weights_as_recorded(adopted):
    state, results, predictions = score_checkpoint(adopted)
    record = RunDir(adopted).load_records()[0]
    assert state["step"] == 0
    for group, metrics in record["eval"].items():
        assert results[group]["auc"] == pytest.approx(metrics["auc"], nan_ok=True)
    written = RunDir(adopted).read_predictions()
    np.testing.assert_allclose(predictions["prob_fake"], written["prob_fake"], rtol=1e-6)


def test_notebooks_load_the_adopted_run_without_training(adopted, weights):
    config = notebook_config(adopted / "config.yaml", {})
    check_reusable(adopted, config)
    assert train_runs(config, adopted.parent, ["erm"]) == {"erm": adopted}
    model = load_run_model(adopted)
    reference = create_model("test_resnet", pretrained=weights).eval()
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_report_and_analyse_read_the_adopted_run(adopted, tmp_path):
    record = RunDir(adopted).load_records()[0]
    out = tmp_path / "report"
    assert main(["report", str(adopted), "--metric", "log_loss", "--n-boot", "20", "--out", str(out)]) == 0
    cells = pd.read_csv(out / "report.csv").set_index("group")
    assert cells.loc["source_test", "mean"] == pytest.approx(record["eval"]["source_test"]["log_loss"])
    assert cells.loc[f"target/{TARGET}", "mean"] == pytest.approx(record["eval"][f"target/{TARGET}"]["log_loss"])
    table = analyse_runs([adopted], AnalysisSettings(per_domain=4, localisation_per_domain=2))
    assert table[["algorithm", "backbone"]].values.tolist() == [["erm", "test_resnet"]]
    assert np.isfinite(table["cos_clean_mean"]).all()


def test_training_refuses_an_adopted_run(adopted):
    config = load_config(adopted / "config.yaml")
    with pytest.raises(ConfigError, match="adopted from .*trained elsewhere"):
        Trainer(config, adopted.parent / "elsewhere")
    with pytest.raises(FileExistsError, match="finished run"):
        train(config, adopted)
    assert main(["train", "--config", str(adopted / "config.yaml"), "--run-dir", str(adopted.parent / "new")]) == 1


def test_bad_input_refused(weights, erm_config, tmp_path, adopted):
    with pytest.raises(FileExistsError, match="finished run"):
        adopt_run(weights, erm_config, adopted)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not an empty directory"):
        adopt_run(weights, erm_config, tmp_path / "used")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        adopt_run(tmp_path / "missing.pth", erm_config, tmp_path / "new")
    other = copy.deepcopy(erm_config)
    other["model"]["name"] = "resnet10t"
    with pytest.raises(ValueError, match="does not match timm model"):
        adopt_run(weights, other, tmp_path / "new")
    lodo = copy.deepcopy(erm_config)
    lodo["train"]["checkpoint_rules"] = ["source_val", "lodo"]
    with pytest.raises(ConfigError, match="'lodo' needs a held-out validation domain"):
        adopt_run(weights, lodo, tmp_path / "new")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"train": {"steps": 0, "adopted": {"weights": "w.pth", "sha256": "abc"}}}, "64 lower-case hexadecimal"),
        ({"train": {"steps": 5, "adopted": {"weights": "w.pth", "sha256": "0" * 64}}}, "must be 0 for an adopted run"),
        ({"train": {"steps": 0, "adopted": {"weights": "w.pth"}}}, "exactly the keys"),
        ({"train": {"steps": 0}}, "must be an integer >= 1"),
    ],
)
def test_adopted_config_keys_validated(change, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=change)


def test_every_kept_rule_holds_the_adopted_weights(weights, erm_config, tmp_path):
    erm_config["train"]["checkpoint_rules"] = ["source_val", "oracle"]
    run = adopt_run(weights, erm_config, tmp_path / "oracle-run")
    assert selected_checkpoint(run, "oracle") == "best_oracle.pt"
    oracle, source_val = RunDir(run).load("best_oracle.pt"), RunDir(run).load("best_source_val.pt")
    assert oracle["step"] == 0
    for key, value in source_val["model"].items():
        torch.testing.assert_close(oracle["model"][key], value)


def test_input_size_warning_only_for_a_detector_convention():
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputSizeWarning)
        check_input_size(create_model("test_resnet"), 16)  # an ImageNet cfg: its 160 px is no detector's size
        check_input_size(create_model("deepfakebench_xception"), 256)
    with pytest.warns(InputSizeWarning, match="data.image_size is 64 but deepfakebench_xception records .* 256 px"):
        check_input_size(create_model("deepfakebench_xception"), 64)


def test_file_sha256_of_known_bytes(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert file_sha256(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_cli_adopts_and_prints_the_input_convention(weights, erm_config, tmp_path, capsys):
    config_file = tmp_path / "config.yaml"
    config_file.write_text(json.dumps(erm_config))
    out = tmp_path / "cli-run"
    assert main(["adopt", str(weights), "--config", str(config_file), "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["input"]["image_size"] == 16
    assert printed["input"]["mean"] == list(input_normalization(create_model("test_resnet"))[0])
    assert RunDir(out).done and RunDir(out).read_config()["algorithm"]["name"] == "erm"
    assert main(["adopt", str(weights), "--config", str(config_file), "--out", str(out)]) == 1
    assert "finished run" in capsys.readouterr().err


def test_deepfakebench_xception_detector_scored_with_its_input_convention(tmp_path):
    """A DeepfakeBench-layout Xception checkpoint: every written prediction is DeepfakeBench's softmax of its
    logits (computed from the state dict directly) on the frame standardised with mean = std = 0.5."""
    manifest = write_tiny_dataset(tmp_path / "data", size=32, frames=1, videos=2)
    frames = pd.read_csv(manifest)["path"]
    x = (_images(tmp_path / "data", frames) - 0.5) / 0.5
    state = _xception_state()
    with torch.no_grad():  # random weights saturate the softmax: scale the head so the logits are of order 1
        scale = 2.0 / _reference_xception(state, x).abs().max()
    state["backbone.last_linear.weight"] *= scale
    state["backbone.last_linear.bias"] *= scale
    torch.save(state, tmp_path / "xception_best.pth")
    config = load_config(
        overrides={
            "data": {
                "manifest": str(manifest),
                "source_domains": SOURCE,
                "target_domains": [TARGET],
                "image_size": 32,
                "batch_size": 12,
            },
            "model": {"name": "deepfakebench_xception"},
            "algorithm": {"name": "erm"},
            "train": {"device": "cpu", "progress": False},
        }
    )
    with pytest.warns(InputSizeWarning, match="input size of 256 px"):
        run_dir = adopt_run(tmp_path / "xception_best.pth", config, tmp_path / "runs" / "erm-seed0")
    assert input_convention(run_dir) == {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "image_size": 32}
    with torch.no_grad():
        expected = dict(zip(frames, torch.softmax(_reference_xception(state, x), dim=1)[:, 1].numpy()))
        imagenet = (_images(tmp_path / "data", frames) - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
            IMAGENET_STD
        ).view(1, 3, 1, 1)
        other = dict(zip(frames, torch.softmax(_reference_xception(state, imagenet), dim=1)[:, 1].numpy()))
    predictions = RunDir(run_dir).read_predictions()
    wanted = np.array([expected[path] for path in predictions["path"]])
    assert np.ptp(wanted) > 1e-2
    np.testing.assert_allclose(predictions["prob_fake"].to_numpy(), wanted, rtol=1e-4, atol=1e-5)
    assert np.abs(np.array([other[path] for path in predictions["path"]]) - wanted).max() > 1e-3


def _images(root, paths) -> torch.Tensor:
    """Frames as an [N, 3, H, W] tensor in [0, 1], read with PIL (no resizing: they are stored at the model's size)."""
    images = np.stack([np.asarray(Image.open(root / path).convert("RGB"), dtype=np.float32) / 255.0 for path in paths])
    return torch.from_numpy(images).permute(0, 3, 1, 2)
