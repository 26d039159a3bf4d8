"""Robustness evaluation (training/robustness.py), its figure (viz/robustness.py) and ``eval --perturb``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from workbench.__main__ import main
from workbench.data.perturbations import CLEAN, perturb
from workbench.models import input_normalization
from workbench.training import Trainer
from workbench.training.robustness import COLUMNS, checkpoint_robustness
from workbench.training.scoring import load_checkpoint_model, score_checkpoint
from workbench.viz.robustness import robustness_figure


@pytest.fixture
def tiny_run(tiny_config: dict, tmp_path: Path) -> Path:
    return Trainer(tiny_config, tmp_path / "run").fit()


def independent_auc(run: Path, group: str, name: str, level: int) -> float:
    """The group's AUC with every frame perturbed by hand and scored by a plain forward pass."""
    _, model, _, _, (dataset, groups) = load_checkpoint_model(run)
    rows = groups[group]
    images = torch.stack(
        [
            torch.from_numpy(
                perturb(dataset[i][0].permute(1, 2, 0).numpy(), name, level, dataset.manifest.at[i, "path"])
                .transpose(2, 0, 1)
                .copy()
            )
            for i in rows
        ]
    )
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in input_normalization(model))
    with torch.no_grad():
        model.eval()
        probs = torch.softmax(model((images.float() / 255 - mean) / std), dim=1)[:, 1].numpy()
    return roc_auc_score(dataset.manifest["label"].to_numpy()[rows], probs)


def test_robustness_table_scores_clean_and_each_perturbation_and_level(tiny_run: Path) -> None:
    state, table = checkpoint_robustness(tiny_run, ["gaussian_blur", "block_wise"], [5, 1], n_boot=30)
    selected, results, _ = score_checkpoint(tiny_run)
    assert state["step"] == selected["step"]  # the source_val-selected model
    assert list(table.columns) == COLUMNS and set(table["algorithm"]) == {"roga"}
    groups = [g for g in results if g.startswith(("source_test", "target/"))]
    assert "source_val" in results and "target/D-T" in groups
    keys = list(zip(table["perturbation"], table["level"]))
    assert list(dict.fromkeys(keys)) == [
        (CLEAN, 0),
        ("block_wise", 1),
        ("block_wise", 5),
        ("gaussian_blur", 1),
        ("gaussian_blur", 5),
    ]
    assert len(table) == 5 * len(groups)  # every group at every (perturbation, level), none dropped
    clean = table[table["perturbation"] == CLEAN].set_index("group")
    assert set(table["group"]) == set(groups)  # the validation groups are not perturbed
    for group in groups:
        metrics = results[group]
        if metrics["auc"] is None:
            assert np.isnan(clean.at[group, "auc"]) and "one class" in clean.at[group, "note"]
        else:
            assert clean.at[group, "auc"] == pytest.approx(metrics["auc"])
    blurred = table[(table["perturbation"] == "gaussian_blur") & (table["level"] == 5)].set_index("group")
    assert blurred.at["source_test", "parameter"] == 21
    by_hand = independent_auc(tiny_run, "source_test", "gaussian_blur", 5)
    assert blurred.at["source_test", "auc"] == pytest.approx(by_hand, abs=1e-6)
    defined = table.dropna(subset=["auc"])
    assert (defined["auc_low"] <= defined["auc"] + 1e-12).all()
    assert (defined["auc"] <= defined["auc_high"] + 1e-12).all()
    assert (defined["auc_low"] < defined["auc_high"]).any()


def test_robustness_names_unknown_perturbations_and_levels_before_loading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown perturbation 'snow'"):
        checkpoint_robustness(tmp_path / "missing", ["snow"], [1])
    with pytest.raises(ValueError, match="severity level 0"):
        checkpoint_robustness(tmp_path / "missing", ["jpeg"], [0])


def table_of(algorithm: str, aucs: dict[tuple[str, int], float]) -> pd.DataFrame:
    rows = [
        {
            "algorithm": algorithm,
            "group": "held-out",
            "perturbation": name,
            "level": level,
            "auc": auc,
            "auc_low": auc - 0.05,
            "auc_high": auc + 0.02,
            "ci_level": 0.95,
            "n_boot": 200,
        }
        for (name, level), auc in aucs.items()
    ]
    return pd.DataFrame(rows)


def test_robustness_figure_draws_auc_against_severity_per_algorithm() -> None:
    table = pd.concat(
        [
            table_of("erm", {(CLEAN, 0): 0.9, ("jpeg", 1): 0.8, ("jpeg", 3): 0.7, ("gaussian_blur", 1): 0.6}),
            table_of("roga", {(CLEAN, 0): 0.95, ("jpeg", 1): 0.85, ("jpeg", 3): 0.75, ("gaussian_blur", 1): 0.65}),
        ]
    )
    figure = robustness_figure(table)
    titles = [a.text for a in figure.layout.annotations]
    assert titles[:2] == ["Gaussian blur", "JPEG (down/up-sampling)"]  # PERTURBATIONS order
    assert "error bars: 95% CI, video bootstrap (200 resamples)" in titles
    jpeg_roga = next(t for t in figure.data if t.name == "RoGA" and t.xaxis == "x2")
    assert list(jpeg_roga.customdata) == [0, 1, 3] and list(jpeg_roga.y) == [0.95, 0.85, 0.75]  # clean at level 0
    assert np.round(jpeg_roga.x).tolist() == [0, 1, 3] and jpeg_roga.x[0] != 0  # shifted beside ERM's points
    assert list(jpeg_roga.error_y.array) == pytest.approx([0.02] * 3)
    assert list(jpeg_roga.error_y.arrayminus) == pytest.approx([0.05] * 3)
    assert {t.name for t in figure.data if t.showlegend is not False} == {"ERM", "RoGA", "chance"}
    assert figure.layout.xaxis.title.text == "severity (0 = clean)"


def test_robustness_figure_refuses_ambiguous_tables() -> None:
    one = table_of("erm", {(CLEAN, 0): 0.9, ("jpeg", 1): 0.8})
    with pytest.raises(ValueError, match="several rows for jpeg level 1"):
        robustness_figure(pd.concat([one, one[one["perturbation"] == "jpeg"]]))
    with pytest.raises(ValueError, match="choose one with group="):
        robustness_figure(pd.concat([one, one.assign(group="source")]))
    with pytest.raises(ValueError, match=r"no clean \(level 0\) rows for \['erm'\]"):
        robustness_figure(one[one["perturbation"] != CLEAN])
    with pytest.raises(ValueError, match="lacks columns"):
        robustness_figure(one.drop(columns="n_boot"))


def test_eval_perturb_writes_robustness_next_to_metrics(tiny_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                str(tiny_run),
                "--perturb",
                "jpeg",
                "video_compression",
                "--levels",
                "1",
                "3",
                "--n-boot",
                "20",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    table = pd.read_csv(out / "robustness.csv")
    assert (out / "metrics.json").is_file() and "robustness" not in json.loads((out / "metrics.json").read_text())
    assert len(printed["robustness"]) == len(table)
    assert set(zip(table["perturbation"], table["level"])) == {
        (CLEAN, 0),
        ("jpeg", 1),
        ("jpeg", 3),
        ("video_compression", 1),
        ("video_compression", 3),
    }
    assert set(table.loc[table["perturbation"] == "video_compression", "parameter"]) == {30, 35}
    clean = table[table["perturbation"] == CLEAN].set_index("group")["auc"]
    assert clean["source_test"] == pytest.approx(printed["eval"]["source_test"]["auc"])
    assert main(["eval", str(tiny_run), "--perturb", "all", "--n-boot", "0"]) == 1
    assert main(["eval", str(tiny_run), "--levels", "1"]) == 1
    assert "--levels and --n-boot apply to --perturb" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", str(tiny_run), "--perturb", "snow"])
    with pytest.raises(SystemExit):
        main(["eval", str(tiny_run), "--perturb", "jpeg", "--levels", "6"])


def test_dataloader_workers_perturb_the_same_frames_the_same_way(tiny_run: Path) -> None:
    options = dict(perturbations=["gaussian_noise", "block_wise"], levels=[3], n_boot=10)
    _, alone = checkpoint_robustness(tiny_run, **options)
    _, workers = checkpoint_robustness(tiny_run, overrides=["data.workers=2"], **options)
    pd.testing.assert_frame_equal(alone, workers)
