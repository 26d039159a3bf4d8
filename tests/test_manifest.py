"""Manifest validation: every fault is named (file, line, column, value); nothing is dropped."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from workbench.data import FrameDataset, ManifestError, domain_roles, read_manifest
from workbench.data.frames import load_frames
from workbench.data.manifest import resolve_root, validate_manifest, write_manifest


def rewrite(manifest, edit):
    df = pd.read_csv(manifest, dtype=str)
    edit(df)
    df.to_csv(manifest, index=False)
    return manifest


def test_a_valid_manifest_reads_back_typed_and_complete(tiny_manifest):
    df, root = read_manifest(tiny_manifest)
    assert root == tiny_manifest.parent.resolve()
    assert len(df) == len(pd.read_csv(tiny_manifest))
    assert df["label"].dtype.kind == "i"
    assert domain_roles(df) == {"R": "real", "D-A": "fake", "D-B": "fake", "D-C": "fake", "D-T": "fake"}


def test_missing_file_is_named(tiny_manifest):
    rewrite(tiny_manifest, lambda df: df.__setitem__("path", df["path"].where(df.index != 4, "nowhere.png")))
    with pytest.raises(ManifestError, match=r"line 6, column 'path': 'nowhere.png' does not exist"):
        read_manifest(tiny_manifest)


def test_unknown_label_is_named(tiny_manifest):
    rewrite(tiny_manifest, lambda df: df.__setitem__("label", df["label"].where(df.index != 2, "fake")))
    with pytest.raises(ManifestError, match=r"line 4, column 'label': 'fake' is not a known label"):
        read_manifest(tiny_manifest)


def test_empty_domain_value_is_named(tiny_manifest):
    rewrite(tiny_manifest, lambda df: df.__setitem__("domain", df["domain"].where(df.index != 0, "")))
    with pytest.raises(ManifestError, match=r"line 2, column 'domain'.*is empty"):
        read_manifest(tiny_manifest)


def test_unknown_split_absolute_path_and_missing_column(tiny_manifest, tmp_path):
    rewrite(tiny_manifest, lambda df: df.__setitem__("split", df["split"].where(df.index != 1, "dev")))
    with pytest.raises(ManifestError, match=r"line 3, column 'split': 'dev'"):
        read_manifest(tiny_manifest)
    df = pd.DataFrame(
        {"path": ["/abs/a.png"], "label": [0], "domain": ["R"], "video": ["v"], "split": ["train"], "dataset": ["X"]}
    )
    with pytest.raises(ManifestError, match="is absolute"):
        write_manifest(df, tmp_path / "m.csv")
    with pytest.raises(ManifestError, match=r"missing required column\(s\) \['dataset'\]"):
        write_manifest(df.drop(columns="dataset"), tmp_path / "m.csv")


def test_video_in_two_splits_is_rejected(tiny_manifest):
    rewrite(tiny_manifest, lambda df: df.__setitem__("video", df["video"].where(df["split"] != "val", "train-r0")))
    with pytest.raises(ManifestError, match=r"video 'train-r0' of dataset 'TINY' appears in several splits"):
        read_manifest(tiny_manifest, check_files=False)


def test_unreadable_image_names_the_manifest_file_and_csv_line(tiny_manifest):
    """Row 5 of the table is on line 7 of the CSV (header on line 1), as manifest errors count."""
    df, root = read_manifest(tiny_manifest)
    (root / df.at[5, "path"]).write_bytes(b"not an image")
    expected = rf"{re.escape(str(tiny_manifest))}: line 7 \('{re.escape(df.at[5, 'path'])}'\): cannot read image"
    with pytest.raises(ManifestError, match=expected):
        FrameDataset(df, root, 16)[5]
    with pytest.raises(ManifestError, match=expected):
        load_frames(df.iloc[3:7], root, 16)
    in_memory = df.drop(columns=["csv_file", "csv_line"])
    with pytest.raises(ManifestError, match=r"manifest row 5 .*cannot read image"):
        FrameDataset(in_memory, root, 16)[5]


def test_root_comes_from_argument_then_environment(tiny_manifest, tmp_path, monkeypatch):
    assert resolve_root(tiny_manifest, tmp_path) == tmp_path
    monkeypatch.setenv("WORKBENCH_DATA_ROOT", str(tmp_path / "env"))
    assert resolve_root(tiny_manifest) == tmp_path / "env"


def second_dataset(root, dataset="OTHER"):
    """A cross-dataset test set: one domain holding both real and fake frames."""
    from PIL import Image

    rows = []
    for i in range(4):
        rel = f"x/{i}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (i * 40, 90, 90)).save(root / rel)
        rows.append(dict(path=rel, label=i % 2, domain="X-CD", video=f"v{i}", split="test", dataset=dataset))
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def test_several_manifests_with_their_own_roots(tiny_manifest, tmp_path):
    from workbench.data import read_manifests

    other = second_dataset(tmp_path / "other")
    df, roots = read_manifests([tiny_manifest, other])
    assert roots == [tiny_manifest.parent.resolve(), other.parent.resolve()]
    assert set(df.loc[df["dataset"] == "OTHER", "root_index"]) == {1}
    dataset = FrameDataset(df, roots, 16)
    assert dataset.paths[-1] == other.parent.resolve() / "x/3.png"
    assert dataset[len(df) - 1][0].shape == (3, 16, 16)
    with pytest.raises(ManifestError, match="2 manifests but 3 roots"):
        read_manifests([tiny_manifest, other], [None, None, None])
    clash = second_dataset(tmp_path / "clash", dataset="TINY")
    with pytest.raises(ManifestError, match="dataset 'TINY' appears in both"):
        read_manifests([tiny_manifest, clash])


MANIFEST_HEADER = "path,label,domain,video,split,dataset"


def frame_rows(**extra):
    """Two valid in-memory manifest rows; ``extra`` sets further columns (one value per row)."""
    rows = pd.DataFrame(
        {
            "path": ["a.png", "b.png"],
            "label": [0, 1],
            "domain": ["R", "F"],
            "video": ["v", "w"],
            "split": ["train", "train"],
            "dataset": ["X", "X"],
        }
    )
    return rows.assign(**extra)


def test_numeric_looking_ids_are_read_as_text(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(
        f"{MANIFEST_HEADER},mask_path,compression,source_video\n"
        "real/000.png,0,R,000,train,X,,23,000\n"
        "fake/000.png,1,F,f000,train,X,007,23,000\n"
    )
    df, _ = read_manifest(path, check_files=False)
    assert df["video"].tolist() == ["000", "f000"]
    assert df["source_video"].tolist() == ["000", "000"]
    assert df["mask_path"].tolist() == [None, "007"]
    assert df["compression"].tolist() == ["23", "23"]


def test_source_video_of_a_table_becomes_text_or_none():
    df = validate_manifest(frame_rows(source_video=pd.Series([0, None], dtype=object)), check_files=False)
    assert df["source_video"].tolist() == ["0", None]


def test_absolute_mask_path_is_rejected():
    with pytest.raises(ManifestError, match=r"line 3, column 'mask_path': '/abs/m.png' is absolute"):
        validate_manifest(frame_rows(mask_path=[None, "/abs/m.png"]), check_files=False)


@pytest.mark.parametrize(
    ("column", "value"),
    [("path", "../elsewhere/a.png"), ("path", "a/../../b.png"), ("mask_path", "masks\\..\\..\\m.png")],
)
def test_paths_that_climb_out_of_the_root_are_rejected(column, value):
    rows = frame_rows(**{column: ["a/0.png" if column == "path" else None, value]})
    with pytest.raises(ManifestError, match=rf"line 3, column '{column}': .* leaves the dataset root"):
        validate_manifest(rows, check_files=False)
    assert len(validate_manifest(frame_rows(path=["a/../a/0.png", "b/1.png"]), check_files=False)) == 2
    with pytest.raises(
        ManifestError, match=r"line 3, column 'path': 'x/./a.png' is the file of line 2 \('x/a.png'\) again"
    ):
        validate_manifest(frame_rows(path=["x/a.png", "x/./a.png"]), check_files=False)


def test_ids_that_pandas_would_read_as_missing_round_trip(tmp_path):
    path = write_manifest(frame_rows(video=["NA", "None"]), tmp_path / "m.csv")
    assert read_manifest(path, check_files=False)[0]["video"].tolist() == ["NA", "None"]


def test_line_numbers_count_blank_lines_and_quoted_line_breaks(tmp_path):
    path = tmp_path / "m.csv"
    lines = ["", MANIFEST_HEADER, "", "a.png,0,D,v,train,X", '"b', 'c.png",1,D,w,train,X', "   ", "d.png,7,D,x,train,X"]
    path.write_text("\n".join(lines) + "\n")  # the bad label is on line 8
    with pytest.raises(ManifestError, match=r"line 8, column 'label': 7 is not a known label"):
        read_manifest(path, check_files=False)


def test_validate_manifest_names_table_rows_as_csv_lines_or_given_lines():
    rows = frame_rows(label=[0, 5])
    with pytest.raises(ManifestError, match=r"line 3, column 'label'"):
        validate_manifest(rows.set_axis([10, 20]), check_files=False)
    with pytest.raises(ManifestError, match=r"line 9, column 'label'"):
        validate_manifest(rows, check_files=False, lines=[4, 9])
