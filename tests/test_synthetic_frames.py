"""A video's draws and frames: each manipulation changes the face mainly inside the mask it reports."""

import numpy as np
import pytest

from workbench.data.synthetic import COMPRESSED_DOMAIN, SEAMLESS_DOMAIN, SOURCE_DOMAINS
from workbench.data.synthetic_forgeries import ForgeryStrengths
from workbench.data.synthetic_frames import VideoSpec, prepare_video, render_frame

STRENGTHS = ForgeryStrengths()

MANIPULATED = [
    VideoSpec("SYN", domain, f"{domain}_0000", "train", 1, "SYN", 0, kind, "SYN-real_0000", 0)
    for domain, kind in {**SOURCE_DOMAINS, SEAMLESS_DOMAIN: "seamless"}.items()
] + [
    VideoSpec(
        "SYN-C", COMPRESSED_DOMAIN, "SYN-COMPRESS_fake_0000", "test", 1, "SYN-C", 0, "gan", "SYN-COMPRESS_real_0000", 0
    )
]


@pytest.mark.parametrize("spec", MANIPULATED, ids=[s.video for s in MANIPULATED])
def test_manipulation_changes_pixels_mainly_inside_its_mask(spec):
    for frame in range(2):
        video = prepare_video(spec, 2, seed=11, strengths=STRENGTHS)
        fake, mask = render_frame(video, frame, seed=11, size=64, strengths=STRENGTHS)
        source, no_mask = render_frame(video, frame, seed=11, size=64, strengths=STRENGTHS, manipulate=False)
        assert no_mask is None
        energy = ((fake.astype(np.float64) - source) ** 2).sum(axis=2)
        assert energy.sum() > 0
        inside = energy[mask > 0.5 / 255].sum() / energy.sum()
        assert inside > 0.8, (spec.video, frame, inside)
