"""Domain-balanced sampling and evaluation groups."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.data import DomainBatchSampler, ManifestError, Protocol, evaluation_groups, read_manifest
from workbench.data.protocol import training_real_pool

from conftest import SOURCE, TARGET


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
