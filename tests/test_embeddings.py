"""Penultimate features of a timm model and their t-SNE map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.neighbors import NearestNeighbors

from workbench.analysis.embeddings import penultimate_embeddings, tsne_2d
from workbench.models import create_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("test_resnet").train()


def images(n: int, seed: int) -> torch.Tensor:
    return torch.randn((n, 3, 32, 32), generator=torch.Generator().manual_seed(seed))


def test_features_are_what_the_classifier_reads(model):
    batches = [(images(3, 0), torch.tensor([0, 1, 1])), (images(2, 1), torch.tensor([1, 0]))]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    features, meta = penultimate_embeddings(model, batches, domain_names=["FF-DF", "FF-FS"])
    assert features.shape == (5, model.num_features) and features.dtype == np.float32
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items()) and model.training
    model.eval()
    with torch.no_grad():
        logits = model(torch.cat([b[0] for b in batches]))
        from_features = model.get_classifier()(torch.from_numpy(features))
    model.train()
    torch.testing.assert_close(from_features, logits, rtol=1e-4, atol=1e-5)
    assert meta["domain"].tolist() == ["FF-DF"] * 3 + ["FF-FS"] * 2
    assert meta["label"].tolist() == [0, 1, 1, 1, 0]
    assert meta["batch"].tolist() == [0, 0, 0, 1, 1]


def test_dict_and_meta_batches_keep_their_columns(model):
    batches = [
        {"image": images(2, 0), "label": torch.tensor([0, 1]), "domain": ["real", "DF"], "path": ["a.png", "b.png"]},
        (images(1, 1), torch.tensor([1]), {"domain": "FS", "path": ["c.png"]}),
    ]
    features, meta = penultimate_embeddings(model, batches)
    assert len(features) == 3
    assert meta[["domain", "label", "path"]].values.tolist() == [
        ["real", 0, "a.png"],
        ["DF", 1, "b.png"],
        ["FS", 1, "c.png"],
    ]


def test_bad_batches_name_the_batch_and_column(model):
    with pytest.raises(ValueError, match="batch 0: column 'path' has 1 values for 2 images"):
        penultimate_embeddings(model, [{"image": images(2, 0), "label": [0, 1], "path": ["a"]}])
    with pytest.raises(ValueError, match="batch 0: a dict batch needs an image key"):
        penultimate_embeddings(model, [{"pixels": images(2, 0), "label": [0, 1]}])
    with pytest.raises(ValueError, match="no batches"):
        penultimate_embeddings(model, [])


def blobs():
    features, cluster = make_blobs(
        n_samples=90, centers=3, n_features=20, cluster_std=0.5, center_box=(-20, 20), random_state=0
    )
    meta = pd.DataFrame({"domain": [f"d{c}" for c in cluster], "label": cluster % 2})
    return features, meta, cluster


def test_tsne_is_deterministic_and_keeps_meta():
    features, meta, _ = blobs()
    a = tsne_2d(features, meta, perplexity=10, seed=0)
    b = tsne_2d(features, meta, perplexity=10, seed=0)
    assert list(a.columns) == ["x", "y", "domain", "label"]
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a[["domain", "label"]], meta)


def test_tsne_keeps_separated_clusters_separated():
    features, meta, cluster = blobs()
    frame = tsne_2d(features, meta, perplexity=10, seed=0)
    neighbours = NearestNeighbors(n_neighbors=6).fit(frame[["x", "y"]].to_numpy())
    _, index = neighbours.kneighbors(frame[["x", "y"]].to_numpy())
    assert (cluster[index[:, 1:]] == cluster[:, None]).all()


def test_tsne_rejects_bad_shapes_and_perplexity():
    features, meta, _ = blobs()
    with pytest.raises(ValueError, match="meta has 89 rows for 90"):
        tsne_2d(features, meta.iloc[:-1])
    with pytest.raises(ValueError, match="perplexity=90"):
        tsne_2d(features, meta, perplexity=90)
