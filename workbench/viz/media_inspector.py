"""A frame slider over one scored file (notebook 07): the face crop, its Grad-CAM overlay and its score on the
timeline of the file's frames."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.analysis.detector import Detector
from workbench.analysis.media_scores import MediaScores
from workbench.viz.media import THRESHOLD
from workbench.viz.style import attribution_colourscale


class MediaInspector:
    """Slide over the sampled frames of ``media`` (a file scored in ``scores``): crop, Grad-CAM of the fake
    class (peak-normalised) and the frame's place on the P(fake) timeline. A frame without a face shows empty
    panels and says so. Display :attr:`widget`; :attr:`figure` is updated in place; maps are computed once
    per frame, when first shown.
    """

    def __init__(self, scores: MediaScores, detector: Detector, media: str | Path, layer: str | None = None) -> None:
        media = str(media)
        rows = scores.frames[scores.frames["media"] == media]
        if rows.empty:
            raise ValueError(f"{media!r} has no scored frames; files: {sorted(set(scores.frames['media']))}")
        self.rows = rows.set_index("frame")
        self.scores, self.detector, self.media, self.layer = scores, detector, media, layer
        self._maps: dict[int, np.ndarray] = {}
        frames = [int(frame) for frame in self.rows.index]
        self.slider = widgets.SelectionSlider(
            options=[(str(f), f) for f in frames], value=frames[0], description="frame", continuous_update=False
        )
        figure = make_subplots(
            rows=1,
            cols=3,
            column_widths=[0.22, 0.22, 0.56],
            subplot_titles=["face crop", "Grad-CAM (fake)", "P(fake) per frame"],
        )
        size = detector.image_size
        blank = np.zeros((size, size, 3), np.uint8)
        figure.add_trace(go.Image(z=blank, name="crop"), row=1, col=1)
        figure.add_trace(go.Image(z=blank, name="crop under the map"), row=1, col=2)
        figure.add_trace(
            go.Heatmap(
                z=np.zeros((size, size)),
                zmin=0,
                zmax=1,
                colorscale=attribution_colourscale(),
                showscale=False,
                name="Grad-CAM",
            ),
            row=1,
            col=2,
        )
        scored = self.rows[self.rows["status"] == "ok"]
        faceless = self.rows[self.rows["status"] == "no_face"]
        figure.add_trace(
            go.Scatter(x=scored.index, y=scored["prob_fake"], mode="lines+markers", name="P(fake)"), row=1, col=3
        )
        figure.add_trace(
            go.Scatter(
                x=faceless.index,
                y=np.zeros(len(faceless)),
                mode="markers",
                name="no face",
                marker={"symbol": "x", "color": "grey"},
            ),
            row=1,
            col=3,
        )
        figure.add_trace(
            go.Scatter(x=[frames[0]] * 2, y=[0, 1], mode="lines", name="this frame", line={"color": "firebrick"}),
            row=1,
            col=3,
        )
        figure.add_hline(y=THRESHOLD, line_dash="dash", line_color="grey", row=1, col=3)
        for col in (1, 2):
            figure.update_xaxes(visible=False, row=1, col=col)
            figure.update_yaxes(visible=False, autorange="reversed", scaleanchor=f"x{col}", row=1, col=col)
        figure.update_yaxes(range=[0, 1], title_text="P(fake)", row=1, col=3)
        figure.update_xaxes(title_text="frame", row=1, col=3)
        figure.update_layout(height=320, margin={"t": 60, "b": 40, "l": 20, "r": 20})
        self.figure = go.FigureWidget(figure)
        self.widget = widgets.VBox([self.slider, self.figure])
        self.slider.observe(lambda change: self.refresh(), names="value")
        self.refresh()

    def gradcam(self, frame: int) -> np.ndarray:
        """The peak-normalised Grad-CAM map of ``frame``'s scored crop."""
        if frame not in self._maps:
            crop = self.scores.crops[(self.media, frame)]
            self._maps[frame] = self.detector.gradcam([crop], self.layer)[0]
        return self._maps[frame]

    def title(self) -> str:
        """The file, the frame and its score (or that it has no face)."""
        frame = self.slider.value
        row = self.rows.loc[frame]
        score = f"P(fake) = {row['prob_fake']:.3f}" if row["status"] == "ok" else "no face: not scored"
        return f"{Path(self.media).name} · frame {frame} · {score}"

    def refresh(self) -> None:
        frame = self.slider.value
        size = self.detector.image_size
        if self.rows.loc[frame, "status"] == "ok":
            picture = self.detector.rgb(self.scores.crops[(self.media, frame)])
            cam = self.gradcam(frame)
        else:
            picture, cam = np.zeros((size, size, 3), np.uint8), np.zeros((size, size))
        with self.figure.batch_update():
            self.figure.data[0].z = picture
            self.figure.data[1].z = picture
            self.figure.data[2].z = cam
            self.figure.data[5].x = [frame, frame]
            self.figure.layout.title.text = self.title()
