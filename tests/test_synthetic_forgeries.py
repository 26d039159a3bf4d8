"""Forgery operations on float images: the blending seam and the identity swap."""

import cv2
import numpy as np

from workbench.data.synthetic_forgeries import add_blending_seam, identity_swap


def test_seam_follows_the_mask_border_with_the_given_sign():
    mask = np.zeros((32, 32), np.float32)
    cv2.circle(mask, (16, 16), 8, 1.0, -1)
    image = np.full((32, 32, 3), 0.5, np.float32)
    brighter = add_blending_seam(image, mask, 0.1) - image
    darker = add_blending_seam(image, mask, -0.1) - image
    assert brighter.max() > 0.05 and np.allclose(darker, -brighter, atol=1e-6)
    changed = np.abs(brighter).max(axis=2) > 0.01
    distance = np.hypot(*np.nonzero(changed) - np.array([[16], [16]]))
    assert distance.min() >= 5 and distance.max() <= 11
    assert np.allclose(brighter[16, 16], 0) and np.allclose(brighter[0, 0], 0)


def test_colour_matched_swap_keeps_the_target_mean_colour():
    target = np.full((32, 32, 3), (0.2, 0.4, 0.6), np.float32)
    donor = np.full((32, 32, 3), (0.5, 0.5, 0.1), np.float32)
    region = np.zeros((32, 32), np.float32)
    region[8:24, 8:24] = 1
    rng = np.random.default_rng(0)
    matched, mask = identity_swap(target, donor, region, rng, edge_sigma=0.05, colour_shift=0.1, colour_match=True)
    assert np.allclose(matched, target, atol=1e-5)
    mismatched, _ = identity_swap(target, donor, region, rng, edge_sigma=0.05, colour_shift=0.1, colour_match=False)
    assert np.abs(mismatched[16, 16] - target[16, 16]).max() > 0.1
    assert mask[16, 16] > 0.99 and mask[0, 0] < 0.01
