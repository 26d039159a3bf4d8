"""Dataset manifest builders on frame trees and JSON files made by the tests, in the datasets' layouts."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from workbench.data.builders import BUILDERS, build_manifest, import_deepfakebench
from workbench.data.builders.celebdf import build_celebdf
from workbench.data.builders.common import evenly_spaced, frame_files
from workbench.data.builders.dfdc import build_dfdc, build_dfdcp
from workbench.data.builders.faceforensics import build_dfd, build_ffpp
from workbench.data.manifest import ManifestError

PNG = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes()
PAIRS = {"train": [["000", "001"]], "val": [["002", "003"]], "test": [["004", "005"]]}
METHODS = {"Deepfakes": "FF-DF", "Face2Face": "FF-F2F", "FaceSwap": "FF-FS", "NeuralTextures": "FF-NT"}


def frames(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"{i:04d}.png").write_bytes(PNG)
    return folder


def write_splits(folder: Path, pairs: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, split_pairs in pairs.items():
        (folder / f"{split}.json").write_text(json.dumps(split_pairs))


def make_ffpp_tree(root: Path) -> Path:
    """Six reals (5 frames), every pair's two fakes per manipulation (3 frames), masks for DF and F2F."""
    write_splits(root / "splits", PAIRS)
    for a, b in (pair for pairs in PAIRS.values() for pair in pairs):
        for real in (a, b):
            frames(root / "original_sequences/youtube/c23/frames" / real, 5)
        for name in (f"{a}_{b}", f"{b}_{a}"):
            for method in METHODS:
                frames(root / "manipulated_sequences" / method / "c23/frames" / name, 3)
            frames(root / "manipulated_sequences/Deepfakes/c23/masks" / name, 3)
            frames(root / "manipulated_sequences/Face2Face/masks/frames" / name, 3)
    return root


@pytest.fixture
def ffpp(tmp_path):
    return make_ffpp_tree(tmp_path / "ffpp")


def test_registry_names_every_dataset():
    assert set(BUILDERS) == {"ffpp", "celebdf", "dfd", "dfdc", "dfdcp"}


def test_build_manifest_rejects_unknown_datasets_and_missing_roots(tmp_path):
    with pytest.raises(ManifestError, match="unknown dataset 'ff'"):
        build_manifest("ff", tmp_path)
    with pytest.raises(ManifestError, match="is not a folder"):
        build_manifest("ffpp", tmp_path / "nowhere")


def test_frame_files_are_in_numeric_order_and_evenly_spaced(tmp_path):
    for name in ("10.png", "2.png", "1.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(PNG)
    assert [p.name for p in frame_files(tmp_path)] == ["1.jpg", "2.png", "10.png"]
    assert evenly_spaced(list(range(10)), 4) == [0, 3, 6, 9]
    assert evenly_spaced(list(range(3)), 5) == [0, 1, 2]


def test_ffpp_rows_domains_splits_and_pairing(ffpp):
    df = build_manifest("ffpp", ffpp)
    assert len(df) == 6 * 5 + 4 * 6 * 3
    assert df.groupby("domain")["label"].unique().map(list).to_dict() == {
        "FF-real": [0],
        "FF-DF": [1],
        "FF-F2F": [1],
        "FF-FS": [1],
        "FF-NT": [1],
    }
    assert set(df["dataset"]) == {"FF++"} and set(df["compression"]) == {"c23"}
    videos = df.drop_duplicates("video").set_index("video")
    assert videos.loc["youtube/c23/000", "split"] == "train"
    assert videos.loc["Face2Face/c23/003_002", "split"] == "val"
    assert videos.loc["NeuralTextures/c23/004_005", "split"] == "test"
    assert videos.loc["Deepfakes/c23/003_002", "source_video"] == "youtube/c23/003"
    assert videos.loc["Deepfakes/c23/002_003", "source_video"] == "youtube/c23/002"
    assert videos.loc["youtube/c23/005", "source_video"] == "youtube/c23/005"
    row = df[(df["video"] == "Deepfakes/c23/000_001") & (df["frame"] == 2)].iloc[0]
    assert row["path"] == "manipulated_sequences/Deepfakes/c23/frames/000_001/0002.png"
    assert row["mask_path"] == "manipulated_sequences/Deepfakes/c23/masks/000_001/0002.png"
    f2f = df[df["domain"] == "FF-F2F"]["mask_path"]
    assert f2f.str.startswith("manipulated_sequences/Face2Face/masks/frames/").all()
    assert df[df["domain"].isin(["FF-FS", "FF-NT", "FF-real"])]["mask_path"].isna().all()


def test_ffpp_frames_per_video_are_evenly_spaced(ffpp):
    df = build_ffpp(ffpp, frames_per_video=3, methods=["DF"])
    assert df[df["video"] == "youtube/c23/000"]["frame"].tolist() == [0, 2, 4]
    assert set(df["domain"]) == {"FF-real", "FF-DF"}


def test_ffpp_faceshifter_and_unknown_manipulations(ffpp):
    with pytest.raises(ManifestError, match="FaceShifter fakes' .* does not exist"):
        build_ffpp(ffpp, methods=["FSh"])
    for a, b in (pair for pairs in PAIRS.values() for pair in pairs):
        for name in (f"{a}_{b}", f"{b}_{a}"):
            frames(ffpp / "manipulated_sequences/FaceShifter/c23/frames" / name, 2)
    assert set(build_ffpp(ffpp, methods=["FaceShifter"])["domain"]) == {"FF-real", "FF-FSh"}
    with pytest.raises(ManifestError, match="unknown FF\\+\\+ manipulation 'XX'"):
        build_ffpp(ffpp, methods=["XX"])
    with pytest.raises(ManifestError, match="unknown compression 'c99'"):
        build_ffpp(ffpp, compression="c99")


def test_ffpp_pair_whose_folder_is_missing(ffpp):
    folder = ffpp / "manipulated_sequences/FaceSwap/c23/frames/005_004"
    for file in folder.iterdir():
        file.unlink()
    folder.rmdir()
    with pytest.raises(ManifestError, match=r"1 video\(s\) have no frames: FaceSwap/c23/005_004 .*does not exist"):
        build_ffpp(ffpp)
    df = build_ffpp(ffpp, allow_missing=True)
    assert "FaceSwap/c23/005_004" not in set(df["video"])
    assert df.attrs["missing_videos"] == [
        "FaceSwap/c23/005_004 (manipulated_sequences/FaceSwap/c23/frames/005_004 does not exist)"
    ]


def test_no_video_with_frames_is_an_error_listing_the_videos(ffpp):
    for folder in ffpp.glob("*_sequences/*/c23/frames/*"):
        for file in folder.iterdir():
            file.unlink()
    with pytest.raises(ManifestError, match=r"12 video\(s\) have no frames: youtube/c23/000 .*No video has frames"):
        build_ffpp(ffpp, methods=["DF"], allow_missing=True)


def test_dataset_without_any_video_folder_is_an_error(tmp_path):
    (tmp_path / "original_sequences/actors/c23/frames").mkdir(parents=True)
    (tmp_path / "manipulated_sequences/DeepFakeDetection/c23/frames").mkdir(parents=True)
    with pytest.raises(ManifestError, match="DFD at .*: found no videos"):
        build_dfd(tmp_path)


def test_ffpp_empty_video_folder_counts_as_missing(ffpp):
    for file in (ffpp / "original_sequences/youtube/c23/frames/001").iterdir():
        file.unlink()
    with pytest.raises(ManifestError, match="youtube/c23/001 .*holds no frame images"):
        build_ffpp(ffpp)


def test_ffpp_split_overlap_is_an_error(ffpp):
    write_splits(ffpp / "splits", {**PAIRS, "test": [["004", "005"], ["000", "006"]]})
    with pytest.raises(ManifestError, match="test.json: entry 1: video '000' is also in train.json"):
        build_ffpp(ffpp)


def test_ffpp_malformed_and_missing_split_files(ffpp, tmp_path):
    write_splits(ffpp / "splits", {**PAIRS, "val": [["002"]]})
    with pytest.raises(ManifestError, match=r"val.json: entry 0 is \['002'\]"):
        build_ffpp(ffpp)
    (ffpp / "splits" / "val.json").write_text("[[")
    with pytest.raises(ManifestError, match="val.json: not valid JSON"):
        build_ffpp(ffpp)
    with pytest.raises(ManifestError, match="elsewhere/train.json' does not exist"):
        build_ffpp(ffpp, splits_dir=tmp_path / "elsewhere")


def test_ffpp_video_folder_outside_the_splits_is_an_error(ffpp):
    frames(ffpp / "original_sequences/youtube/c23/frames/999", 2)
    with pytest.raises(ManifestError, match="are in no split file: 999"):
        build_ffpp(ffpp)


def test_ffpp_mask_folder_without_a_frame_is_an_error(ffpp):
    (ffpp / "manipulated_sequences/Deepfakes/c23/masks/000_001/0001.png").unlink()
    with pytest.raises(ManifestError, match="0001.png has no mask in .*/Deepfakes/c23/masks/000_001"):
        build_ffpp(ffpp)


def test_dfd_takes_every_video_as_test(tmp_path):
    frames(tmp_path / "original_sequences/actors/c40/frames/01__walking", 4)
    frames(tmp_path / "manipulated_sequences/DeepFakeDetection/c40/frames/01_02__walking__ABCD1234", 2)
    frames(tmp_path / "manipulated_sequences/DeepFakeDetection/masks/frames/01_02__walking__ABCD1234", 2)
    df = build_manifest("dfd", tmp_path, compression="c40")
    videos = df.drop_duplicates("video").set_index("video")
    assert videos["label"].to_dict() == {
        "actors/c40/01__walking": 0,
        "DeepFakeDetection/c40/01_02__walking__ABCD1234": 1,
    }
    assert set(df["split"]) == {"test"} and set(df["domain"]) == {"DFD"} and set(df["compression"]) == {"c40"}
    assert df["mask_path"].notna().sum() == 2
    assert set(build_dfd(tmp_path, compression="c40", split="val")["split"]) == {"val"}
    with pytest.raises(ManifestError, match="original_sequences/actors/c23/frames' does not exist"):
        build_dfd(tmp_path)


@pytest.fixture
def celebdf(tmp_path):
    for video in ("Celeb-real/id0_0000", "Celeb-real/id1_0000", "YouTube-real/00000"):
        folder, name = video.split("/")
        frames(tmp_path / folder / "frames" / name, 3)
    for name in ("id0_id1_0000", "id1_id0_0000"):
        frames(tmp_path / "Celeb-synthesis/frames" / name, 2)
    (tmp_path / "List_of_testing_videos.txt").write_text(
        "1 Celeb-real/id0_0000.mp4\n1 YouTube-real/00000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n"
    )
    return tmp_path


def test_celebdf_test_list_flag_1_means_real(celebdf):
    df = build_manifest("celebdf", celebdf)
    videos = df.drop_duplicates("video").set_index("video")
    assert videos["label"].to_dict() == {
        "Celeb-real/id0_0000": 0,
        "YouTube-real/00000": 0,
        "Celeb-synthesis/id0_id1_0000": 1,
    }
    assert set(df["split"]) == {"test"} and set(df["domain"]) == {"CDFv2"} and set(df["dataset"]) == {"CDFv2"}
    assert df[df["video"] == "YouTube-real/00000"]["path"].tolist() == [
        f"YouTube-real/frames/00000/{i:04d}.png" for i in range(3)
    ]


def test_celebdf_include_train_and_version(celebdf):
    df = build_celebdf(celebdf, version="v1", include_train=True)
    splits = df.drop_duplicates("video").set_index("video")["split"].to_dict()
    assert splits["Celeb-real/id1_0000"] == "train" and splits["Celeb-synthesis/id1_id0_0000"] == "train"
    assert splits["Celeb-real/id0_0000"] == "test"
    assert set(df["domain"]) == {"CDFv1"}
    with pytest.raises(ManifestError, match="unknown Celeb-DF version 'v3'"):
        build_celebdf(celebdf, version="v3")


@pytest.mark.parametrize(
    "line, message",
    [
        ("0 Celeb-real/id0_0000.mp4", "flagged 0 \\(fake\\) but Celeb-real holds real videos"),
        ("2 Celeb-real/id0_0000.mp4", "line 2: '2 Celeb-real/id0_0000.mp4' is not"),
        ("1 Other/id0_0000.mp4", "is not in one of the folders"),
        ("1 YouTube-real/00000.mp4", "listed twice"),
    ],
)
def test_celebdf_bad_test_list_lines(celebdf, line, message):
    (celebdf / "List_of_testing_videos.txt").write_text(f"1 YouTube-real/00000.mp4\n{line}\n")
    with pytest.raises(ManifestError, match=message):
        build_celebdf(celebdf)


def test_celebdf_listed_video_without_frames(celebdf):
    (celebdf / "List_of_testing_videos.txt").write_text("0 Celeb-synthesis/id5_id6_0001.mp4\n")
    expected = "Celeb-synthesis/id5_id6_0001 \\(Celeb-synthesis/frames/id5_id6_0001 does not exist"
    with pytest.raises(ManifestError, match=expected):
        build_celebdf(celebdf)


@pytest.fixture
def dfdc(tmp_path):
    part = tmp_path / "dfdc_train_part_0"
    frames(part / "frames/aaa", 2)
    frames(part / "frames/bbb", 2)
    (part / "metadata.json").write_text(
        json.dumps(
            {
                "aaa.mp4": {"label": "FAKE", "split": "train", "original": "bbb.mp4"},
                "bbb.mp4": {"label": "REAL", "split": "train", "original": None},
            }
        )
    )
    frames(tmp_path / "test/frames/ccc", 2)
    frames(tmp_path / "test/frames/ddd", 2)
    (tmp_path / "test/labels.csv").write_text("filename,label\nccc.mp4,1\nddd.mp4,0\n")
    return tmp_path


def test_dfdc_metadata_and_labels_csv(dfdc):
    df = build_manifest("dfdc", dfdc)
    videos = df.drop_duplicates("video").set_index("video")
    assert videos[["label", "split"]].to_dict("index") == {
        "dfdc_train_part_0/aaa": {"label": 1, "split": "train"},
        "dfdc_train_part_0/bbb": {"label": 0, "split": "train"},
        "test/ccc": {"label": 1, "split": "test"},
        "test/ddd": {"label": 0, "split": "test"},
    }
    assert videos.loc["dfdc_train_part_0/aaa", "source_video"] == "dfdc_train_part_0/bbb"
    assert videos.loc["test/ccc", "path"] == "test/frames/ccc/0000.png"
    assert set(df["domain"]) == {"DFDC"}
    assert set(build_dfdc(dfdc, split="test")["split"]) == {"test"}


def test_dfdc_unknown_labels_are_errors(dfdc):
    (dfdc / "test/labels.csv").write_text("filename,label\nccc.mp4,2\n")
    with pytest.raises(ManifestError, match="labels.csv: line 2: label '2' of 'ccc.mp4' is not 0"):
        build_dfdc(dfdc)
    (dfdc / "test/labels.csv").unlink()
    (dfdc / "dfdc_train_part_0/metadata.json").write_text(json.dumps({"aaa.mp4": {"label": "MAYBE", "split": "train"}}))
    with pytest.raises(ManifestError, match="entry 'aaa.mp4': needs 'label' FAKE or REAL"):
        build_dfdc(dfdc)


def test_dfdc_labels_csv_accepts_decimal_labels(dfdc):
    (dfdc / "test/labels.csv").write_text("filename,label\nccc.mp4,1.0\nddd.mp4,0.0\n")
    videos = build_dfdc(dfdc).drop_duplicates("video").set_index("video")
    assert videos.loc[["test/ccc", "test/ddd"], "label"].tolist() == [1, 0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("filename,label\nccc.mp4,1\nddd.mp4,0\neee.mp4,\n", "line 4: label is empty"),
        ("filename,label\nccc.mp4,1\n,0\nddd.mp4,0\n", "line 3: filename is empty"),
        ("filename,label\n\nccc.mp4,1\n\nddd.mp4,0.5\n", "line 5: label '0.5' of 'ddd.mp4' is not 0"),
    ],
)
def test_dfdc_labels_csv_faults_name_their_line(dfdc, text, message):
    (dfdc / "test/labels.csv").write_text(text)
    with pytest.raises(ManifestError, match=f"labels.csv: {message}"):
        build_dfdc(dfdc)


def test_dfdc_without_label_files(tmp_path):
    with pytest.raises(ManifestError, match="found no labels.csv or metadata.json"):
        build_dfdc(tmp_path)


def test_dfdcp_dataset_json(tmp_path):
    real, fake = "original_videos/1/1_A_001", "method_A/1/1_A_001/2_1_A_001"
    frames(tmp_path / "frames" / real, 2)
    frames(tmp_path / "frames" / fake, 3)
    entries = {f"{real}.mp4": {"label": "real", "set": "train"}, f"{fake}.mp4": {"label": "fake", "set": "test"}}
    (tmp_path / "dataset.json").write_text(json.dumps(entries))
    df = build_manifest("dfdcp", tmp_path)
    videos = df.drop_duplicates("video").set_index("video")
    assert videos[["label", "split"]].to_dict("index") == {
        real: {"label": 0, "split": "train"},
        fake: {"label": 1, "split": "test"},
    }
    assert set(df["domain"]) == {"DFDCP"} and len(df) == 5
    assert set(build_dfdcp(tmp_path, split="test")["split"]) == {"test"}
    entries[f"{fake}.mp4"]["label"] = "unknown"
    (tmp_path / "dataset.json").write_text(json.dumps(entries))
    with pytest.raises(ManifestError, match="needs 'label' real or fake"):
        build_dfdcp(tmp_path)


# --- DeepfakeBench JSON import ---------------------------------------------------------------


def dfb_tree(root: Path) -> dict:
    """Frames on disk and the matching JSON (with a compression level, absolute paths)."""
    videos = {("FF-real", "train", "000"): 3, ("FF-real", "test", "001"): 2, ("FF-DF", "train", "000_001"): 4}
    data: dict = {"FaceForensics++": {}}
    for (label, split, video), count in videos.items():
        folder = frames(root / "FF/c23/frames" / label / video, count)
        entry = {"label": label, "frames": [str(p) for p in sorted(folder.iterdir())]}
        data["FaceForensics++"].setdefault(label, {}).setdefault(split, {}).setdefault("c23", {})[video] = entry
    return data


def ff(data: dict) -> dict:
    return data["FaceForensics++"]


def df_entry(data: dict) -> dict:
    return ff(data)["FF-DF"]["train"]["c23"]["000_001"]


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_deepfakebench_with_compression_and_absolute_paths(tmp_path):
    path = write_json(tmp_path / "FF.json", dfb_tree(tmp_path / "data"))
    df = import_deepfakebench(path, tmp_path / "data")
    assert len(df) == 9
    videos = df.drop_duplicates("video").set_index("video")
    assert videos[["label", "domain", "split"]].to_dict("index") == {
        "FF-real/c23/000": {"label": 0, "domain": "FF-real", "split": "train"},
        "FF-real/c23/001": {"label": 0, "domain": "FF-real", "split": "test"},
        "FF-DF/c23/000_001": {"label": 1, "domain": "FF-DF", "split": "train"},
    }
    assert videos.loc["FF-DF/c23/000_001", "path"] == "FF/c23/frames/FF-DF/000_001/0000.png"
    assert set(df["compression"]) == {"c23"} and set(df["dataset"]) == {"FaceForensics++"}
    assert df[df["video"] == "FF-DF/c23/000_001"]["frame"].tolist() == [0, 1, 2, 3]
    assert import_deepfakebench(path, tmp_path / "data", frames_per_video=2)["frame"].tolist() == [0, 2, 0, 1, 0, 3]


def test_deepfakebench_without_compression_relative_paths_and_label_fields(tmp_path):
    frames(tmp_path / "cdf/real/a", 2)
    frames(tmp_path / "cdf/fake/b", 2)
    data = {
        "Celeb-DF-v2": {
            "CelebDFv2_real": {"validation": {"a": {"frames": ["cdf/real/a/0000.png", "cdf/real/a/0001.png"]}}},
            "CelebDFv2_fake": {"test": {"b": {"label": 1, "frames": ["cdf/fake/b/0000.png", "cdf/fake/b/0001.png"]}}},
        }
    }
    df = import_deepfakebench(write_json(tmp_path / "cdf.json", data), tmp_path)
    videos = df.drop_duplicates("video").set_index("video")
    assert videos[["label", "split"]].to_dict("index") == {
        "CelebDFv2_real/a": {"label": 0, "split": "val"},
        "CelebDFv2_fake/b": {"label": 1, "split": "test"},
    }
    assert "compression" not in df.columns


@pytest.mark.parametrize("label, expected", [("0.0", 0), (0.0, 0), ("1.0", 1), (1, 1), (" 0 ", 0)])
def test_deepfakebench_numeric_labels_are_read_as_numbers(tmp_path, label, expected):
    data = dfb_tree(tmp_path / "data")
    df_entry(data)["label"] = label  # label name FF-DF alone would say fake
    df = import_deepfakebench(write_json(tmp_path / "FF.json", data), tmp_path / "data")
    assert set(df.loc[df["domain"] == "FF-DF", "label"]) == {expected}


def test_deepfakebench_windows_style_paths_keep_their_frame_numbers(tmp_path):
    frames(tmp_path / "FF/v", 3)
    data = {"FF": {"FF-real": {"train": {"v": {"frames": [f"FF\\v\\{i:04d}.png" for i in range(3)]}}}}}
    df = import_deepfakebench(write_json(tmp_path / "win.json", data), tmp_path)
    assert df["path"].tolist() == [f"FF/v/{i:04d}.png" for i in range(3)]
    assert df["frame"].tolist() == [0, 1, 2]


def test_deepfakebench_json_root_maps_paths_made_elsewhere(tmp_path):
    data = dfb_tree(tmp_path / "data")
    text = json.dumps(data).replace(str(tmp_path / "data"), "/home/someone/datasets")
    path = tmp_path / "moved.json"
    path.write_text(text)
    expected = "FaceForensics\\+\\+/FF-real/train/c23/000: frame '/home/someone/datasets/.*is not under root.*json-root"
    with pytest.raises(ManifestError, match=expected):
        import_deepfakebench(path, tmp_path / "data")
    df = import_deepfakebench(path, tmp_path / "data", json_root="/home/someone/datasets")
    assert df["path"].str.startswith("FF/c23/frames/").all()


def test_deepfakebench_compression_filter(tmp_path):
    data = dfb_tree(tmp_path / "data")
    frames(tmp_path / "data/FF/c40/frames/FF-real/000", 1)
    c40_frame = str(tmp_path / "data/FF/c40/frames/FF-real/000/0000.png")
    data["FaceForensics++"]["FF-real"]["train"]["c40"] = {"000": {"frames": [c40_frame]}}
    path = write_json(tmp_path / "two.json", data)
    assert len(import_deepfakebench(path, tmp_path / "data")) == 10
    assert set(import_deepfakebench(path, tmp_path / "data", compression="c23")["compression"]) == {"c23"}
    with pytest.raises(ManifestError, match="no compression level 'c99'; the JSON has \\['c23', 'c40'\\]"):
        import_deepfakebench(path, tmp_path / "data", compression="c99")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: df_entry(d).update(frames="0000.png"), "000_001: 'frames' must be a non-empty list"),
        (lambda d: df_entry(d).update(label=2), "000_001: label 2 is not a known label"),
        (lambda d: df_entry(d).update(label="2.5"), "000_001: label '2.5' is not a known label"),
        (lambda d: df_entry(d).update(label=-1.0), "000_001: label -1.0 is not a known label"),
        (lambda d: df_entry(d).update(label=""), "000_001: label '' is not 0, 1 or a label name"),
        (lambda d: ff(d)["FF-DF"].update(training=ff(d)["FF-DF"].pop("train")), "split 'training' is not one of"),
        (lambda d: ff(d)["FF-real"]["test"]["c23"].update(bad=[1]), "FF-real/test/c23/bad: not a video entry"),
        (
            lambda d: ff(d)["FF-real"].update(test={"001": {"frames": ["x.png"]}, "002": {"label": 0}}),
            "mixes video entries and other objects \\('002'",
        ),
        (
            lambda d: ff(d)["FF-real"]["test"]["c23"]["001"]["frames"].append("../outside.png"),
            "frame '../outside.png' is not under root",
        ),
    ],
)
def test_deepfakebench_malformed_entries_are_named(tmp_path, change, message):
    data = dfb_tree(tmp_path / "data")
    change(data)
    with pytest.raises(ManifestError, match=message):
        import_deepfakebench(write_json(tmp_path / "bad.json", data), tmp_path / "data")


def test_deepfakebench_split_overlap_and_missing_files(tmp_path):
    data = dfb_tree(tmp_path / "data")
    real = data["FaceForensics++"]["FF-real"]
    real["test"]["c23"]["000"] = real["test"]["c23"].pop("001")
    expected = "video 'FF-real/c23/000' .* appears in several splits \\['test', 'train'\\]"
    with pytest.raises(ManifestError, match=expected):
        import_deepfakebench(write_json(tmp_path / "overlap.json", data), tmp_path / "data")
    data = dfb_tree(tmp_path / "data2")
    data["FaceForensics++"]["FF-DF"]["train"]["c23"]["000_001"]["frames"].append(str(tmp_path / "data2/FF/gone.png"))
    with pytest.raises(ManifestError, match="'FF/gone.png' does not exist under root"):
        import_deepfakebench(write_json(tmp_path / "missing.json", data), tmp_path / "data2")


def test_deepfakebench_unreadable_json(tmp_path):
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ManifestError, match="not valid JSON"):
        import_deepfakebench(tmp_path / "broken.json", tmp_path)
    with pytest.raises(ManifestError, match="does not exist"):
        import_deepfakebench(tmp_path / "nope.json", tmp_path)
