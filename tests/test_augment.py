"""Seeded batch augmentation and normalisation."""

from __future__ import annotations

import pytest
import torch

from workbench.data import Augment, normalize, step_generator
from workbench.data.augment import IMAGENET_MEAN, IMAGENET_STD


def test_normalize_matches_the_imagenet_formula():
    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    expected = (images.float() / 255 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
        1, 3, 1, 1
    )
    torch.testing.assert_close(normalize(images), expected)


def test_augment_is_reproducible_per_step_and_per_sample():
    x = torch.rand(8, 3, 16, 16)
    aug = Augment()
    a = aug(x, step_generator(0, 5, 1))
    b = aug(x, step_generator(0, 5, 1))
    c = aug(x, step_generator(0, 6, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1


def test_flip_only_augment_flips_exactly_the_chosen_samples():
    x = torch.rand(64, 3, 8, 8)
    out = Augment(flip=0.5, brightness=0, contrast=0, max_shift=0)(x, step_generator(1, 1))
    flipped = [torch.allclose(o, s.flip(-1), atol=1e-6) for o, s in zip(out, x)]
    kept = [torch.allclose(o, s, atol=1e-6) for o, s in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54


def test_a_shard_is_augmented_as_its_places_in_the_whole_batch():
    """Under torchrun each process augments its interleaved shard exactly as one process would the batch."""
    images = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    augment = Augment()
    whole = augment(images, torch.Generator().manual_seed(5))
    for rank in range(2):
        positions = torch.arange(rank, 8, 2)
        shard = augment(images[positions], torch.Generator().manual_seed(5), positions, 8)
        torch.testing.assert_close(shard, whole[positions], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="together"):
        augment(images, torch.Generator(), positions=torch.arange(8))
