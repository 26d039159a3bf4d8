"""The timeline and suspicious-frames figures of predict's scores."""

import numpy as np
import pandas as pd
import pytest

from workbench.analysis.media_scores import MediaScores
from workbench.viz.media import frame_name, score_timeline, suspicious_frames_figure

FRAMES = pd.DataFrame(
    {
        "media": ["v/a.mp4"] * 4 + ["b.png"],
        "frame": [0, 3, 6, 9, 0],
        "status": ["ok", "no_face", "ok", "ok", "ok"],
        "prob_fake": [0.2, np.nan, 0.9, 0.4, 0.7],
    }
)


def test_timeline_draws_scored_frames_faceless_crosses_and_the_current_frame():
    ax = score_timeline(FRAMES, "v/a.mp4", current=6).axes[0]
    line, crosses, threshold, current = ax.lines
    assert line.get_xdata().tolist() == [0, 6, 9] and line.get_ydata().tolist() == [0.2, 0.9, 0.4]
    assert crosses.get_xdata().tolist() == [3] and crosses.get_ydata().tolist() == [0]
    assert list(threshold.get_ydata()) == [0.5, 0.5] and list(current.get_xdata()) == [6, 6]
    assert ax.get_title() == "a.mp4"


def test_timeline_of_an_unknown_file_and_a_gallery_without_scores_are_refused():
    with pytest.raises(ValueError, match="c.mp4.*b.png"):
        score_timeline(FRAMES, "c.mp4")
    faceless = MediaScores(FRAMES.assign(status="no_face", prob_fake=np.nan), pd.DataFrame())
    with pytest.raises(ValueError, match="no frame was scored"):
        suspicious_frames_figure(faceless, detector=None)
    assert frame_name("v/a.mp4", 3) == "a.mp4 · frame 3"
