"""Shipped configs: every file loads; the paper configs hold the paper's settings; the protocols evaluate
what docs/reproduce.md says, checked on tiny dataset trees built with the documented `manifest build` commands."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from workbench.__main__ import main as workbench_main
from workbench.algorithms import resolve_hparams
from workbench.config import load_config
from workbench.data import Protocol, evaluation_groups, read_manifests

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))
PAPER = sorted((REPO / "configs" / "paper").glob("*.yaml"))
CROSS_DATASET = REPO / "configs" / "protocols" / "cross_dataset.yaml"
FFPP_DOMAINS = ["FF-DF", "FF-F2F", "FF-FS", "FF-NT"]
LOMO = {"df": "FF-DF", "f2f": "FF-F2F", "fs": "FF-FS", "nt": "FF-NT"}
TARGETS = ["CDFv1", "CDFv2", "DFD", "DFDC", "DFDCP"]
# FF++ c23 official split: 360 train pairs -> 720 fake videos per manipulation; 32 frames per video.
FFPP_TRAIN_VIDEOS, FRAMES_PER_VIDEO, EPOCHS = 720, 32, 10


def steps_for_epochs(config: dict, epochs: int) -> int:
    """Steps that show every distinct training fake ``epochs`` times (by hand, not via the sampler)."""
    data = config["data"]
    k = len(data["source_domains"])
    per_domain = data["batch_size"] // k
    fakes_per_step = k * (per_domain - round(per_domain * data["real_fraction"]))
    training_fakes = FFPP_TRAIN_VIDEOS * FRAMES_PER_VIDEO * k
    assert training_fakes % fakes_per_step == 0
    return epochs * training_fakes // fakes_per_step


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_config_loads_with_valid_hparams(path):
    config = load_config(path)
    resolve_hparams(config["algorithm"]["name"], config["algorithm"]["hparams"])
    k = len(config["data"]["source_domains"])
    assert config["data"]["batch_size"] % k == 0


def test_paper_configs_hold_the_paper_settings():
    assert {load_config(p)["model"]["name"] for p in PAPER} == {"efficientnet_b4", "legacy_xception"}
    protocol_data = load_config(CROSS_DATASET)["data"]
    for path in PAPER:
        config = load_config(path)
        data, hparams, model = config["data"], config["algorithm"]["hparams"], config["model"]
        assert data["source_domains"] == FFPP_DOMAINS and data["target_domains"] == TARGETS
        assert (data["image_size"], data["batch_size"], data["real_fraction"]) == (256, 32, 0.5)
        assert data["cache_images"] is False
        assert hparams["optimizer"] == "adam"
        assert isinstance(hparams["lr"], float) and hparams["lr"] == 2e-4  # YAML 1.1 reads "2e-4" as a string
        assert isinstance(hparams["weight_decay"], float) and hparams["weight_decay"] == 5e-4
        assert model["pretrained"] == f"weights/{model['name']}.safetensors"
        assert config["train"]["steps"] == steps_for_epochs(config, EPOCHS) == 57_600
        assert config["train"]["eval_every"] == config["train"]["steps"] // (2 * EPOCHS)  # every half epoch
        assert data == protocol_data  # the paper runs are the cross-dataset protocol
        for algorithm in ("erm", "sam", "sagm", "roga"):
            assert load_config(path, [f"algorithm.name={algorithm}"])["algorithm"]["name"] == algorithm


@pytest.mark.parametrize("short", sorted(LOMO))
def test_lomo_config_trains_on_three_manipulations_and_tests_the_fourth(short):
    config = load_config(REPO / "configs" / "protocols" / f"ffpp_lomo_{short}.yaml")
    data, held_out = config["data"], LOMO[short]
    assert data["source_domains"] == [d for d in FFPP_DOMAINS if d != held_out]
    assert data["target_domains"] == [held_out] and data["lodo_domain"] is None
    assert data["manifest"] == "data_manifests/ffpp_c23.csv"
    assert data["batch_size"] // 3 == 8  # the paper's per-domain batch
    assert config["train"]["steps"] == steps_for_epochs(config, EPOCHS)


# ----------------------------------------------------------------- tiny dataset trees
def _frames(folder: Path, n: int = 2, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:04d}.png"), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))


def _ffpp_tree(root: Path) -> None:
    """FF++ c23 (all five manipulations) and DFD in the FaceForensics++ layout under one root."""
    splits = {"train": [["000", "001"], ["002", "003"]], "val": [["004", "005"]], "test": [["006", "007"]]}
    (root / "splits").mkdir(parents=True)
    for split, pairs in splits.items():
        (root / "splits" / f"{split}.json").write_text(json.dumps(pairs))
        for a, b in pairs:
            for video in (a, b):
                _frames(root / "original_sequences/youtube/c23/frames" / video)
            for method in ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter"):
                for name in (f"{a}_{b}", f"{b}_{a}"):
                    _frames(root / "manipulated_sequences" / method / "c23/frames" / name)
    _frames(root / "original_sequences/actors/c23/frames/01__walking")
    _frames(root / "manipulated_sequences/DeepFakeDetection/c23/frames/01_02__walking__ABC")


def _celebdf_tree(root: Path) -> None:
    _frames(root / "Celeb-real/frames/id0_0000")
    _frames(root / "YouTube-real/frames/00000")
    _frames(root / "Celeb-synthesis/frames/id0_id1_0000")
    (root / "List_of_testing_videos.txt").write_text(
        "1 Celeb-real/id0_0000.mp4\n1 YouTube-real/00000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n"
    )


def _dfdc_tree(root: Path) -> None:
    (root / "test").mkdir(parents=True)
    (root / "test/labels.csv").write_text("filename,label\naaa.mp4,0\nbbb.mp4,1\n")
    for name in ("aaa", "bbb"):
        _frames(root / "test/frames" / name)


def _dfdcp_tree(root: Path) -> None:
    entries = {
        "real/r1.mp4": {"label": "real", "set": "test"},
        "fake/f1.mp4": {"label": "fake", "set": "test"},
        "real/r2.mp4": {"label": "real", "set": "train"},
    }
    root.mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps(entries))
    for name in entries:
        _frames(root / "frames" / name[:-4])


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """Manifests built with docs/reproduce.md's commands: config manifest/root paths -> fixture paths."""
    tmp = tmp_path_factory.mktemp("datasets")
    roots = {
        name: tmp / name
        for name in ("ffpp_frames", "celebdf_v1_frames", "celebdf_v2_frames", "dfdc_frames", "dfdcp_frames")
    }
    _ffpp_tree(roots["ffpp_frames"])
    _celebdf_tree(roots["celebdf_v1_frames"])
    _celebdf_tree(roots["celebdf_v2_frames"])
    _dfdc_tree(roots["dfdc_frames"])
    _dfdcp_tree(roots["dfdcp_frames"])
    out = tmp / "data_manifests"
    commands = [
        ["ffpp", "--root", roots["ffpp_frames"], "--compression", "c23", "--out", out / "ffpp_c23.csv"],
        [
            "ffpp",
            "--root",
            roots["ffpp_frames"],
            "--compression",
            "c23",
            "--methods",
            "DF",
            "F2F",
            "FS",
            "NT",
            "FSh",
            "--out",
            out / "ffpp_c23_fsh.csv",
        ],
        ["celebdf", "--root", roots["celebdf_v1_frames"], "--version", "v1", "--out", out / "celebdf_v1.csv"],
        ["celebdf", "--root", roots["celebdf_v2_frames"], "--version", "v2", "--out", out / "celebdf_v2.csv"],
        ["dfd", "--root", roots["ffpp_frames"], "--compression", "c23", "--out", out / "dfd.csv"],
        ["dfdc", "--root", roots["dfdc_frames"], "--out", out / "dfdc.csv"],
        ["dfdcp", "--root", roots["dfdcp_frames"], "--out", out / "dfdcp.csv"],
    ]
    for command in commands:
        assert workbench_main(["manifest", "build", *map(str, command)]) == 0
    paths = {f"/data/{name}": root for name, root in roots.items()}
    paths.update({f"data_manifests/{p.name}": p for p in out.glob("*.csv")})
    return paths


def _pointed_at(path: Path, datasets: dict[str, Path], overrides: tuple[str, ...] = ()) -> dict:
    """The config with its manifest and root paths replaced by the fixture's (pairing kept), then ``overrides``."""
    data = load_config(path)["data"]

    def swap(value: str | list[str]) -> str:
        return json.dumps([str(datasets[v]) for v in value] if isinstance(value, list) else str(datasets[value]))

    return load_config(path, [f"data.manifest={swap(data['manifest'])}", f"data.root={swap(data['root'])}", *overrides])


def _groups(config: dict):
    data = config["data"]
    manifest, _ = read_manifests(data["manifest"], data["root"])
    protocol = Protocol(tuple(data["source_domains"]), tuple(data["target_domains"]), data["lodo_domain"])
    return manifest, evaluation_groups(manifest, protocol)


def _rows(manifest, domains, split):
    return set(np.flatnonzero((manifest["domain"].isin(domains) & (manifest["split"] == split)).to_numpy()))


def test_cross_dataset_groups(datasets):
    manifest, groups = _groups(_pointed_at(CROSS_DATASET, datasets))
    per_domain = [f"source_{s}/{d}" for s in ("val", "test") for d in FFPP_DOMAINS]
    assert set(groups) == {"source_val", "source_test", *per_domain, *(f"target/{d}" for d in TARGETS)}
    for split in ("val", "test"):
        assert set(groups[f"source_{split}"]) == _rows(manifest, FFPP_DOMAINS + ["FF-real"], split)
    for domain in TARGETS:  # both labels inside the domain, scored alone on its test split
        rows = groups[f"target/{domain}"]
        assert set(rows) == _rows(manifest, [domain], "test")
        assert set(manifest.loc[rows, "label"]) == {0, 1}
    assert "real/r2" not in set(manifest.loc[groups["target/DFDCP"], "video"])  # DFDCP's train set is not tested


@pytest.mark.parametrize("short", sorted(LOMO))
def test_lomo_groups_test_the_held_out_manipulation(datasets, short):
    path, held_out = REPO / "configs" / "protocols" / f"ffpp_lomo_{short}.yaml", LOMO[short]
    manifest, groups = _groups(_pointed_at(path, datasets))
    sources = [d for d in FFPP_DOMAINS if d != held_out]
    per_domain = [f"source_{s}/{d}" for s in ("val", "test") for d in sources]
    assert set(groups) == {"source_val", "source_test", *per_domain, f"target/{held_out}"}
    assert set(groups[f"target/{held_out}"]) == _rows(manifest, [held_out, "FF-real"], "test")
    scored = set().union(*map(set, groups.values()))
    assert not scored & (_rows(manifest, [held_out], "train") | _rows(manifest, [held_out], "val"))
    assert not set(groups["source_val"]) & _rows(manifest, [held_out], "val")


@pytest.mark.parametrize("name", ["cross_dataset", "ffpp_lomo_nt"])
def test_faceshifter_in_the_ffpp_manifest_enables_lodo_selection_and_changes_nothing_else(datasets, name):
    path = REPO / "configs" / "protocols" / f"{name}.yaml"
    with_fsh = {**datasets, "data_manifests/ffpp_c23.csv": datasets["data_manifests/ffpp_c23_fsh.csv"]}
    _, plain = _groups(_pointed_at(path, datasets))
    _, unused = _groups(_pointed_at(path, with_fsh))
    assert set(unused) == set(plain)
    manifest, groups = _groups(_pointed_at(path, with_fsh, ("data.lodo_domain=FF-FSh",)))
    assert set(groups) == set(plain) | {"lodo_val"}
    assert set(groups["lodo_val"]) == _rows(manifest, ["FF-FSh", "FF-real"], "val")


@pytest.mark.slow
def test_two_step_run_records_frame_and_video_metrics_for_every_group(datasets, tmp_path):
    from workbench.training import Trainer

    config = _pointed_at(
        CROSS_DATASET,
        datasets,
        overrides=(
            "model.name=test_resnet",
            "model.pretrained=false",
            "data.image_size=32",
            "data.batch_size=8",
            "data.workers=0",
            "train.steps=2",
            "train.eval_every=1",
            "train.device=cpu",
            "train.progress=false",
            f"run.dir={tmp_path}",
        ),
    )
    run_dir = Trainer(config).fit()
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    for name in (f"target/{d}" for d in TARGETS):
        assert {"auc", "video_auc", "eer", "ap", "acc"} <= set(records[-1]["eval"][name])
        assert records[-1]["eval"][name]["video_auc"] is not None
    assert (run_dir / "done").exists() and run_dir.name == "erm-test_resnet-seed0"
