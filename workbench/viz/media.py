"""Figures of ``predict``'s scores: a fake-probability timeline per file and the most suspicious frames
with their Grad-CAM overlays (matplotlib, for the PNG summary and the notebook)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from workbench.analysis.detector import Detector
from workbench.analysis.media_scores import MediaScores
from workbench.viz.static import gradcam_gallery_static
from workbench.viz.style import print_style

THRESHOLD = 0.5  # the decision threshold drawn on the timeline (ACC@0.5)


def frame_name(media: str, frame: int) -> str:
    """A frame's short label: the file's name and the frame index."""
    return f"{Path(media).name} · frame {frame}"


def score_timeline(frames: pd.DataFrame, media: str, current: int | None = None) -> Figure:
    """The fake probability of each sampled frame of ``media``; frames without a face as crosses on the axis.

    ``current`` (a frame index) is marked with a vertical line, for the inspector's slider.
    """
    rows = frames[frames["media"] == media]
    if rows.empty:
        raise ValueError(f"no frames of {media!r} among the scores (files: {sorted(set(frames['media']))})")
    scored, faceless = rows[rows["status"] == "ok"], rows[rows["status"] == "no_face"]
    with print_style():
        figure = Figure(figsize=(6.0, 2.2), layout="constrained")
        ax = figure.subplots()
        ax.plot(scored["frame"], scored["prob_fake"], marker="o", markersize=3, label="P(fake)")
        if not faceless.empty:
            ax.plot(
                faceless["frame"],
                np.zeros(len(faceless)),
                linestyle="none",
                marker="x",
                color="0.4",
                label="no face (not scored)",
                clip_on=False,
            )
        ax.axhline(THRESHOLD, color="0.6", linewidth=0.8, linestyle="--")
        if current is not None:
            ax.axvline(current, color="C3", linewidth=1.2, label=f"frame {current}")
        ax.set_ylim(0, 1)
        ax.set_xlabel("frame")
        ax.set_ylabel("P(fake)")
        ax.set_title(Path(media).name)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return figure


def suspicious_frames_figure(
    scores: MediaScores, detector: Detector, count: int = 6, layer: str | None = None
) -> Figure:
    """The ``count`` frames with the highest fake probability, each with its Grad-CAM (fake class) overlay."""
    top = scores.most_suspicious(count)
    if top.empty:
        raise ValueError("no frame was scored (no face in any input), so there is no suspicious frame to show")
    keys = [(row.media, int(row.frame)) for row in top.itertuples()]
    crops = [scores.crops[key] for key in keys]
    maps = detector.gradcam(crops, layer)
    names = [frame_name(*key) for key in keys]
    images = {name: detector.rgb(crop) for name, crop in zip(names, crops)}
    cams = {"Grad-CAM": dict(zip(names, maps))}
    probs = {"Grad-CAM": dict(zip(names, top["prob_fake"]))}
    return gradcam_gallery_static(images, cams, probs, score_label="P(fake)")
