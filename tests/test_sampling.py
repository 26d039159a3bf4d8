"""Domain-balanced sampling and evaluation groups."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SOURCE, TARGET

from workbench.data import DomainBatchSampler, ManifestError, Protocol, evaluation_groups, read_manifest
from workbench.data.protocol import training_real_pool


@pytest.fixture
def manifest(tiny_manifest):
    return read_manifest(tiny_manifest)[0]


def sampler(manifest, **kw):
    protocol = Protocol(tuple(SOURCE))
    return DomainBatchSampler(manifest, SOURCE, training_real_pool(manifest, protocol), 4, seed=0, **kw)


def test_each_domain_batch_holds_its_fakes_and_shared_reals(manifest):
    batches = sampler(manifest).indices(step=1)
    assert len(batches) == len(SOURCE)
    for domain, rows in zip(SOURCE, batches):
        part = manifest.iloc[rows.numpy()]
        assert (part["split"] == "train").all()
        assert list(part["label"]) == [1, 1, 0, 0]
        assert set(part.loc[part["label"] == 1, "domain"]) == {domain}
        assert set(part.loc[part["label"] == 0, "domain"]) == {"R"}


def test_sampling_is_a_function_of_seed_and_step(manifest):
    a, b = sampler(manifest), sampler(manifest)
    assert all(np.array_equal(x, y) for x, y in zip(a.indices(7), b.indices(7)))
    assert any(not np.array_equal(x, y) for x, y in zip(a.indices(7), a.indices(8)))


def test_paired_reals_come_from_the_fakes_source_video(manifest):
    for rows in sampler(manifest, paired=True).indices(3):
        part = manifest.iloc[rows.numpy()]
        fakes, reals = part.iloc[:2], part.iloc[2:]
        assert list(reals["video"]) == list(fakes["source_video"])


def test_paired_sampling_names_a_fake_without_source_frames(manifest):
    manifest.loc[manifest["domain"] == "D-B", "source_video"] = "ghost"
    with pytest.raises(ManifestError, match=r"source_video 'ghost'"):
        sampler(manifest, paired=True)


def test_evaluation_groups_follow_the_protocol(manifest):
    groups = evaluation_groups(manifest, Protocol(tuple(SOURCE), (TARGET,), lodo_domain=None))
    val = manifest.iloc[groups["source_val"]]
    assert set(val["split"]) == {"val"} and set(val["domain"]) == {"R", *SOURCE}
    target = manifest.iloc[groups[f"target/{TARGET}"]]
    assert set(target["domain"]) == {TARGET, "R"} and set(target["split"]) == {"test"}
    assert set(manifest.iloc[groups["source_test/D-B"]]["domain"]) == {"D-B", "R"}


def test_lodo_group_and_protocol_errors(manifest):
    groups = evaluation_groups(manifest, Protocol(("D-A", "D-B"), lodo_domain="D-C"))
    assert set(manifest.iloc[groups["lodo_val"]]["domain"]) == {"D-C", "R"}
    with pytest.raises(ManifestError, match=r"\['D-X'\] not in the manifest"):
        evaluation_groups(manifest, Protocol(("D-A", "D-X")))
    with pytest.raises(ManifestError, match="must hold only fakes"):
        evaluation_groups(manifest, Protocol(("D-A", "R")))
    with pytest.raises(ManifestError, match=r"target domain 'D-T' in split 'val' is empty"):
        evaluation_groups(manifest, Protocol(("D-A",), ("D-T",), target_split="val"))
    empty = manifest[~((manifest["domain"] == "D-B") & (manifest["split"] == "train"))]
    with pytest.raises(ManifestError, match=r"source domain 'D-B' has no fake frames in the train split"):
        sampler(empty.reset_index(drop=True))


@pytest.mark.parametrize("batch_size, real_fraction", [(2, 0.75), (3, 0.9), (4, 0.9)])
def test_a_real_fraction_that_leaves_no_fake_is_refused(manifest, batch_size, real_fraction):
    pool = training_real_pool(manifest, Protocol(tuple(SOURCE)))
    expected = f"batch_size_per_domain={batch_size} with real_fraction={real_fraction} leaves no fake"
    with pytest.raises(ValueError, match=expected):
        DomainBatchSampler(manifest, SOURCE, pool, batch_size, real_fraction=real_fraction)


@pytest.mark.parametrize("reindex", [lambda m: m.sample(frac=1, random_state=1), lambda m: m.set_axis(m.index + 5)])
def test_indices_are_positions_whatever_the_manifest_index(manifest, reindex):
    shuffled = reindex(manifest)
    for rows in sampler(shuffled, paired=True).indices(3):
        part = shuffled.iloc[rows.numpy()]
        assert list(part["label"]) == [1, 1, 0, 0]
        assert list(part["video"].iloc[2:]) == list(part["source_video"].iloc[:2])


def test_paired_sampling_with_numeric_video_ids(tmp_path):
    rows = [f"real/{v}.png,0,R,{v},train,D,{v}\nfake/{v}.png,1,F,f{v},train,D,{v}" for v in ("000", "001")]
    path = tmp_path / "m.csv"
    path.write_text("path,label,domain,video,split,dataset,source_video\n" + "\n".join(rows) + "\n")
    df = read_manifest(path, check_files=False)[0]
    paired = DomainBatchSampler(df, ["F"], training_real_pool(df, Protocol(("F",))), 4, paired=True)
    part = df.iloc[paired.indices(0)[0].numpy()]
    assert list(part["label"]) == [1, 1, 0, 0]
    assert list(part["video"].iloc[2:]) == list(part["source_video"].iloc[:2])
    assert set(part["video"].iloc[2:]) == {"000", "001"}
