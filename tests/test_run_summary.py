"""Run analysis: batches standardised like training, and every reported number against an independent value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from workbench.__main__ import main
from workbench.analysis.attribution import GradCAM
from workbench.analysis.batches import analysis_batches
from workbench.analysis.localisation import localisation_by_domain
from workbench.analysis.run_summary import AnalysisSettings, analyse_run, analyse_runs, summarise_analysis
from workbench.analysis.sharpness import epsilon_sharpness
from workbench.data.frames import load_frames, pick_frames
from workbench.training import Trainer, load_checkpoint, save_checkpoint
from workbench.training.collect import IncompleteRunWarning
from workbench.training.runs import load_run_model, run_manifest

MASKED = ("D-A", "D-B", "D-T")  # D-C's fakes get no masks


@pytest.fixture
def masked_config(tiny_config, tiny_manifest):
    """The tiny dataset with a mask on the bright square of every D-A, D-B and D-T fake."""
    manifest = pd.read_csv(tiny_manifest)
    root = tiny_manifest.parent
    offsets = {"D-A": 0, "D-B": 16 // 3, "D-T": 16 // 4}
    mask_paths = []
    for row in manifest.itertuples():
        if row.label == 1 and row.domain in MASKED:
            mask = np.zeros((16, 16), dtype=np.uint8)
            o = offsets[row.domain]
            mask[o : o + 4, o : o + 4] = 255
            rel = row.path.replace(".png", "_mask.png")
            Image.fromarray(mask).save(root / rel)
            mask_paths.append(rel)
        else:
            mask_paths.append(None)
    manifest["mask_path"] = mask_paths
    manifest.to_csv(tiny_manifest, index=False)
    return tiny_config


def test_analysis_batches_are_standardised_with_the_backbones_statistics(masked_config):
    batches, domains = analysis_batches(masked_config, split="val", per_domain=4, seed=0)
    assert domains == ["D-A", "D-B", "D-C"] and [len(y) for _, y in batches] == [4, 4, 4]
    assert [int(y.sum()) for _, y in batches] == [2, 2, 2]
    x, _ = batches[0]
    # test_resnet's pretrained_cfg uses mean = std = 0.5, so inputs lie in [-1, 1] (ImageNet statistics would not).
    assert x.min() >= -1.0 and x.max() <= 1.0 and x.min() < -0.5
    values = set(np.round(((x[0] * 0.5 + 0.5) * 255).numpy().ravel(), 3))
    assert values <= {float(v) for v in range(256)}


def test_runs_on_several_manifests_are_read_as_the_trainer_reads_them(masked_config):
    """Paper configs list one manifest and root per dataset; the batches follow each row's root."""
    listed = {
        **masked_config,
        "data": {
            **masked_config["data"],
            "manifest": [masked_config["data"]["manifest"]],
            "root": [masked_config["data"]["root"]],
        },
    }
    expected, _ = analysis_batches(masked_config, split="val", per_domain=4, seed=0)
    got, _ = analysis_batches(listed, split="val", per_domain=4, seed=0)
    for (x, y), (x_ref, y_ref) in zip(got, expected):
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)


def test_every_number_of_a_run_analysis_matches_an_independent_computation(masked_config, tmp_path):
    run_dir = Trainer(masked_config, tmp_path / "run").fit()
    settings = AnalysisSettings(
        split="val", per_domain=6, rho=0.05, alpha=0.0, localisation_per_domain=4, gradcam_layer="layer1"
    )
    row = analyse_run(run_dir, settings)
    model = load_run_model(run_dir)
    batches, domains = analysis_batches(masked_config, "val", 6, 0)

    grads = []
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))]))
    g = torch.stack(grads).mean(0)
    for name, g_k in zip(domains, grads):
        assert row[f"cos_clean/{name}"] == pytest.approx(float(F.cosine_similarity(g_k, g, dim=0)), abs=1e-5)
    sharpness = [epsilon_sharpness(model, batch, 0.05) for batch in batches]
    for name, value in zip(domains, sharpness):
        assert row[f"sharpness/{name}"] == pytest.approx(value, abs=1e-6)
    assert row["sharpness_mean"] == pytest.approx(np.mean(sharpness), abs=1e-6)

    assert row["no_masks"] == "D-C"
    for domain in MASKED:
        assert row[f"mask_fraction/{domain}"] == pytest.approx(16 / 256)  # a 4×4 square of a 16×16 face
        assert row[f"n/{domain}"] == 4
        assert row[f"n_undefined/{domain}"] == 0 and 0.0 <= row[f"energy_in_mask/{domain}"] <= 1.0
    assert row["mask_fraction_source"] == pytest.approx(16 / 256) and row["mask_fraction_target"] == pytest.approx(
        16 / 256
    )
    assert row["energy_in_mask_source"] == pytest.approx(
        np.mean([row["energy_in_mask/D-A"], row["energy_in_mask/D-B"]])
    )
    assert row["energy_in_mask_target"] == pytest.approx(row["energy_in_mask/D-T"])
    assert (row["algorithm"], row["seed"], row["setting.per_domain"]) == ("roga", 0, 6)
    assert (row["gradcam_layer"], row["gradcam_map"]) == ("layer1", "4×4")  # as asked; 16 px faces


def test_localisation_defaults_to_the_deepest_stage_of_8_by_8_and_matches_a_direct_computation(masked_config, tmp_path):
    run_dir = Trainer(masked_config, tmp_path / "run").fit()
    settings = AnalysisSettings(split="val", per_domain=4, localisation_per_domain=3)
    row = analyse_run(run_dir, settings)
    assert (row["gradcam_layer"], row["gradcam_map"]) == ("act1", "8×8")  # 16 px: act1 8×8, layer1 4×4
    model = load_run_model(run_dir)
    manifest, roots = run_manifest(masked_config)
    fakes = manifest[manifest["mask_path"].notna() & (manifest["label"] == 1) & (manifest["split"] == "test")]
    frames = load_frames(pick_frames(fakes, 3, MASKED, seed=0), roots, 16)
    cams = GradCAM(model, "act1").attribute(frames.inputs((0.5,) * 3, (0.5,) * 3), normalize=True)[:, 0].numpy()
    direct = localisation_by_domain(cams, frames.masks, frames.domains)
    for domain in MASKED:
        assert row[f"energy_in_mask/{domain}"] == pytest.approx(direct.loc[domain, "energy_in_mask"], abs=1e-6)
        assert row[f"pointing_game/{domain}"] == pytest.approx(direct.loc[domain, "pointing_game"], abs=1e-6)


def test_the_selection_setting_decides_which_kept_model_is_analysed(masked_config, tmp_path):
    run_dir = Trainer(masked_config, tmp_path / "run").fit()
    best = run_dir / "checkpoints" / "best_source_val.pt"
    state = load_checkpoint(best)
    save_checkpoint(
        {**state, "model": {k: v * 0.5 if v.is_floating_point() else v for k, v in state["model"].items()}}, best
    )  # make the two kept models differ
    settings = dict(split="val", per_domain=6, localisation_per_domain=2, gradcam_layer="layer1")
    batches, domains = analysis_batches(masked_config, "val", 6, 0)
    for selection, checkpoint in (("source_val", "best_source_val.pt"), ("last", "last.pt")):
        row = analyse_run(run_dir, AnalysisSettings(**settings, selection=selection))
        model = load_run_model(run_dir, checkpoint)
        for name, batch in zip(domains, batches):
            assert row[f"sharpness/{name}"] == pytest.approx(epsilon_sharpness(model, batch, 0.05), abs=1e-6)
        assert row["setting.selection"] == selection


def test_summary_gives_mean_and_sample_std_per_algorithm():
    table = pd.DataFrame({"algorithm": ["erm", "erm", "roga"], "sharpness_mean": [1.0, 3.0, 0.5]})
    for column in (
        "cos_clean_mean",
        "cos_perturbed_mean",
        "conflict_rate",
        "energy_in_mask_source",
        "energy_in_mask_target",
        "pointing_game_source",
        "pointing_game_target",
        "mask_fraction_source",
        "mask_fraction_target",
    ):
        table[column] = 0.0
    summary = summarise_analysis(table)
    assert summary.loc["erm", ("sharpness_mean", "mean")] == 2.0
    assert summary.loc["erm", ("sharpness_mean", "std")] == pytest.approx(np.sqrt(2.0))
    assert np.isnan(summary.loc["roga", ("sharpness_mean", "std")])
    assert list(summary[("runs", "n")]) == [2, 1]
    split = summarise_analysis(table.assign(backbone=["resnet18", "resnet50", "resnet18"], variant=""))
    assert list(split[("runs", "n")]) == [1, 1, 1]  # other backbones (or config variants) are never pooled


def test_settings_refuse_values_that_cannot_be_measured():
    with pytest.raises(ValueError, match="per_domain=1"):
        AnalysisSettings(per_domain=1)
    with pytest.raises(ValueError, match="rho=0"):
        AnalysisSettings(rho=0)
    with pytest.raises(ValueError, match="selection='best'"):
        AnalysisSettings(selection="best")


def test_cli_writes_the_tables_and_names_a_bad_run_directory(masked_config, tmp_path, capsys):
    run_dir = Trainer(masked_config, tmp_path / "run").fit()
    out = tmp_path / "analysis"
    assert (
        main(
            [
                "analyse",
                str(run_dir),
                "--per-domain",
                "4",
                "--localisation-per-domain",
                "2",
                "--gradcam-layer",
                "layer1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = pd.read_csv(out / "analysis.csv")
    assert len(table) == 1 and table.loc[0, "setting.gradcam_layer"] == "layer1"
    assert table.loc[0, "setting.selection"] == "source_val"
    assert "Mean ± std over runs" in (out / "analysis.md").read_text()
    assert "| roga" in capsys.readouterr().out
    assert main(["analyse", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert "nowhere" in capsys.readouterr().err
    assert table.loc[0, "complete"]
    (run_dir / "done").unlink()  # as if training had been interrupted after its first checkpoint
    with pytest.warns(IncompleteRunWarning, match="no 'done' marker"):
        table = analyse_runs([run_dir], AnalysisSettings(per_domain=4, localisation_per_domain=2))
    assert not table.loc[0, "complete"]
    (run_dir / "done").write_text("")
    pd.DataFrame({"name": ["run", "diverged"], "status": ["trained", "failed: loss became nan"]}).to_csv(
        tmp_path / "sweep.csv", index=False
    )  # tmp_path as a sweep folder holding the run
    with pytest.warns(UserWarning, match=r"left out 1 sweep run\(s\) that did not finish: \['diverged"):
        table = analyse_runs([tmp_path], AnalysisSettings(per_domain=4, localisation_per_domain=2))
    assert table["run"].tolist() == [str(run_dir)]
