"""Attribution explorer: an ipywidgets panel to look at one face through any detector, method and layer.

Dropdowns pick the algorithm (model), the attribution method, the layer (for Grad-CAM and guided
Grad-CAM; the options are the model's feature stages with their map sizes at the frames' size) and
the domain (its first frame); a slider sets the overlay's opacity. Each change redraws a plotly
``FigureWidget`` in place: the face with its manipulation mask outlined, and beside it the same face
with the map (:func:`workbench.analysis.attribution.attribute`, fake logit, scaled to its maximum)
and the outline. The title gives the map's energy in the mask, whether its peak is in the mask, and
the chance level (the mask's area share). Maps are cached per selection; the models are left unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import nn

from workbench.analysis.attribution import LAYER_METHODS, METHODS, AttributionOptions, attribute
from workbench.analysis.attribution_layers import default_layer_name, stage_sizes
from workbench.analysis.localisation import localisation_scores
from workbench.data.frames import Frames
from workbench.models import input_normalization
from workbench.viz.data import rgb_uint8
from workbench.viz.labels import label
from workbench.viz.style import OUTLINE, attribution_colourscale, paper_layout

TITLE_PREFIX = "Attribution explorer"


class AttributionExplorer:
    """Algorithm, method, layer and domain selectors and an opacity slider over a live figure.

    ``models``: ``{algorithm: model}``; ``frames``: faces with masks (the first frame of each
    domain is shown); ``methods``: a subset of :data:`~workbench.analysis.attribution.METHODS`;
    ``layer``: the starting layer (None: the default rule at the frames' size). Display
    :attr:`widget`; :attr:`figure` is updated in place and :attr:`scores` holds the current map's
    ``energy_in_mask``, ``pointing_hit`` and ``mask_fraction``.
    """

    def __init__(
        self,
        models: Mapping[str, nn.Module],
        frames: Frames,
        methods: Sequence[str] = ("gradcam", "guided_gradcam", "integrated_gradients", "occlusion"),
        layer: str | None = None,
        opacity: float = 0.7,
        mask_threshold: float = 0.5,
        options: AttributionOptions | None = None,
    ) -> None:
        if not models:
            raise ValueError("no models to explore")
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ValueError(f"methods {list(methods)}: choose one or more of {list(METHODS)}")
        self.models = dict(models)
        self.frames = frames.subset(frames.first_per_domain())
        self.size = tuple(int(s) for s in self.frames.images.shape[-2:])
        self.mask_threshold = mask_threshold
        self.options = options or AttributionOptions()
        self._maps: dict[tuple[str, str, str | None, int], np.ndarray] = {}
        self.scores: dict[str, float] = {}

        first = next(iter(self.models))
        self.algorithm = widgets.Dropdown(
            options=[(label(a), a) for a in self.models], value=first, description="algorithm"
        )
        self.method = widgets.Dropdown(options=[(label(m), m) for m in methods], value=methods[0], description="method")
        self.layer = widgets.Dropdown(options=self._layer_options(first), description="layer")
        self.layer.value = layer if layer is not None else default_layer_name(self.models[first], self.size)
        self.domain = widgets.Dropdown(options=self.frames.domains, value=self.frames.domains[0], description="domain")
        self.opacity = widgets.FloatSlider(
            value=opacity, min=0.0, max=1.0, step=0.05, description="opacity", readout_format=".2f"
        )
        self.figure = go.FigureWidget(self._layout(opacity))
        controls = widgets.HBox(
            [widgets.VBox([self.algorithm, self.method]), widgets.VBox([self.layer, self.domain]), self.opacity]
        )
        self.widget = widgets.VBox([controls, self.figure])
        self.algorithm.observe(self._on_algorithm, names="value")
        for control in (self.method, self.layer, self.domain):
            control.observe(lambda change: self.refresh(), names="value")
        self.opacity.observe(lambda change: self._set_opacity(), names="value")
        self.refresh()

    def _layer_options(self, algorithm: str) -> list[tuple[str, str]]:
        sizes = stage_sizes(self.models[algorithm], self.size)
        return [(f"{name} · {int(row.height)}×{int(row.width)}", name) for name, row in sizes.iterrows()]

    def _layout(self, opacity: float) -> go.Figure:
        figure = make_subplots(
            rows=1, cols=2, subplot_titles=["input and mask", "map over the input"], horizontal_spacing=0.04
        )
        blank = np.zeros((*self.size, 3), dtype=np.uint8)
        zeros = np.zeros(self.size)
        for column in (1, 2):
            figure.add_trace(go.Image(z=blank, hoverinfo="skip", name="input"), row=1, col=column)
        figure.add_trace(
            go.Heatmap(
                z=zeros,
                zmin=0,
                zmax=1,
                colorscale=attribution_colourscale(opacity),
                colorbar=dict(title="map ÷ its maximum", thickness=12),
                name="map",
                hovertemplate="map %{z:.2f}<extra></extra>",
            ),
            row=1,
            col=2,
        )
        for column in (1, 2):
            figure.add_trace(
                go.Contour(
                    z=zeros,
                    contours=dict(start=self.mask_threshold, end=self.mask_threshold, size=1, coloring="none"),
                    line=dict(color=OUTLINE, width=2),
                    showscale=False,
                    hoverinfo="skip",
                    name="mask outline",
                    showlegend=False,
                ),
                row=1,
                col=column,
            )
        figure.update_xaxes(visible=False)
        figure.update_yaxes(visible=False, autorange="reversed")
        return paper_layout(figure, height=430, width=760, margin=dict(t=110, l=20, r=20, b=20))

    def _on_algorithm(self, change: dict) -> None:
        options = self._layer_options(self.algorithm.value)
        names = [name for _, name in options]
        keep = (
            self.layer.value
            if self.layer.value in names
            else default_layer_name(self.models[self.algorithm.value], self.size)
        )
        with self.layer.hold_trait_notifications():
            self.layer.options = options
            self.layer.value = keep
        self.refresh()

    def _set_opacity(self) -> None:
        self.figure.data[2].colorscale = attribution_colourscale(float(self.opacity.value))

    def current_map(self) -> np.ndarray:
        """The map of the current selection (``H×W``, scaled to its maximum)."""
        algorithm, method = self.algorithm.value, self.method.value
        layer = self.layer.value if method in LAYER_METHODS else None
        index = self.frames.domains.index(self.domain.value)
        key = (algorithm, method, layer, index)
        if key not in self._maps:
            model = self.models[algorithm]
            x = self.frames.subset([index]).inputs(*input_normalization(model))
            self._maps[key] = attribute(model, x, method, layer=layer, normalize=True, options=self.options)[
                0, 0
            ].numpy()
        return self._maps[key]

    def refresh(self) -> None:
        """Recompute (or reuse) the selected map and update the figure in place."""
        method = self.method.value
        self.layer.disabled = method not in LAYER_METHODS
        index = self.frames.domains.index(self.domain.value)
        values = self.current_map()
        mask = self.frames.masks[index]
        scores = localisation_scores(values[None], mask[None], self.mask_threshold).iloc[0]
        self.scores = {k: float(scores[k]) for k in ("energy_in_mask", "pointing_hit", "mask_fraction")}
        picture = rgb_uint8(self.frames.images[index])
        data = self.figure.data
        # one property at a time (see workbench.viz.explorer.RhoExplorer.refresh)
        data[0].z = picture
        data[1].z = picture
        data[2].z = values
        data[3].z = mask
        data[4].z = mask
        where = f" at {self.layer.value} ({self.layer.label.split(' · ')[-1]})" if method in LAYER_METHODS else ""
        if np.isnan(self.scores["energy_in_mask"]):
            verdict = "no score (" + str(scores["reason"]) + ")"
        else:
            peak = "in" if self.scores["pointing_hit"] >= 0.5 else "outside"
            verdict = (
                f"{self.scores['energy_in_mask']:.2f} of the map in the mask (chance "
                f"{self.scores['mask_fraction']:.2f}); peak {peak} the mask"
            )
        self.figure.layout.title.text = (
            f"{TITLE_PREFIX}: {label(self.algorithm.value)} · {label(method)}{where} · "
            f"{self.domain.value}<br><sup>{verdict}</sup>"
        )
