"""ρ explorer: an ipywidgets panel that shows how a model's per-domain geometry changes with ρ.

For one or several loaded models (e.g. one per algorithm) and one batch per source domain, a radius
slider, a domain selector and (with several models) a model selector drive three panels of a plotly
``FigureWidget``, updated in place:

1. per-domain loss at θ and at the domain's ascending point, L_k(θ) and L_k(θ + ε_k);
2. per-domain alignment with the ERM gradient, cos(g_k, g) and cos(g_k^p, g);
3. a 1-D slice L_k(θ + t·ĝ_k) along the selected domain's ascent direction ĝ_k = g_k/‖g_k‖, with the
   current ρ marked.

ε_k = ρ ĝ_k − α g as in RoGA (docs/method.md), so the bar L_k(θ + ε_k) differs from the marked point
L_k(θ + ρ ĝ_k) by the small −α g shift. Everything is computed in eval mode by
:func:`workbench.analysis.gradients.alignment_summary` and
:func:`workbench.analysis.landscape.loss_along_direction`; the model is left unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import nn

from workbench.algorithms.param_vector import unit
from workbench.analysis.gradients import (
    DomainBatches,
    alignment_summary,
    check_batches,
    domain_gradients,
    domain_names_for,
)
from workbench.analysis.landscape import loss_along_direction

SELECTED, OTHER = "#d62728", "#9e9e9e"


class RhoExplorer:
    """Perturbation-radius slider + domain (and model) selector over a live figure (display ``explorer.widget``).

    ``models`` is one model or ``{name: model}`` (then a dropdown switches between them, starting at
    ``start``, default the first). ``rhos`` is the slider's (min, max); ``rho`` its start value; the
    slice spans t ∈ [−max, max] in ``slice_points`` steps. ``summary`` holds the latest
    ``alignment_summary`` and ``slice`` the selected domain's slice losses.
    """

    def __init__(
        self,
        models: nn.Module | Mapping[str, nn.Module],
        domain_batches: DomainBatches,
        domain_names: Sequence[str] | None = None,
        rhos: tuple[float, float] = (0.0, 0.5),
        alpha: float = 0.001,
        rho: float = 0.05,
        steps: int = 50,
        slice_points: int = 41,
        start: str | None = None,
    ) -> None:
        low, high = (float(r) for r in rhos)
        if not 0 <= low < high:
            raise ValueError(f"rhos=(min, max) must satisfy 0 <= min < max, got {rhos}")
        if not low <= rho <= high:
            raise ValueError(f"rho={rho} lies outside the slider range {rhos}")
        if alpha < 0:
            raise ValueError(f"alpha={alpha} must be non-negative")
        check_batches(domain_batches, minimum=2)
        self.models = dict(models) if isinstance(models, Mapping) else {"model": models}
        if not self.models:
            raise ValueError("no models to explore")
        start = next(iter(self.models)) if start is None else start
        if start not in self.models:
            raise ValueError(f"start={start!r} is not one of the models {list(self.models)}")
        self.domain_batches = list(domain_batches)
        self.names = domain_names_for(domain_batches, domain_names)
        self.alpha = float(alpha)
        self.offsets = np.linspace(-high, high, slice_points)
        self._directions: dict[str, list] = {}
        self._slices: dict[tuple[str, int], np.ndarray] = {}
        self.summary: dict[str, float] = {}
        self.slice = np.empty(0)

        self.slider = widgets.FloatSlider(
            value=rho,
            min=low,
            max=high,
            step=(high - low) / steps,
            continuous_update=False,
            description="ρ",
            readout_format=".3f",
        )
        self.domain = widgets.Dropdown(options=self.names, value=self.names[0], description="domain")
        self.chosen = widgets.Dropdown(options=list(self.models), value=start, description="model")
        self.figure = go.FigureWidget(self._layout())
        controls = [self.slider, self.domain] + ([self.chosen] if len(self.models) > 1 else [])
        self.widget = widgets.VBox([widgets.HBox(controls), self.figure])
        for control in (self.slider, self.domain, self.chosen):
            control.observe(self._on_change, names="value")
        self.refresh()

    @property
    def model(self) -> nn.Module:
        """The model the figure shows (the model selector's choice)."""
        return self.models[self.chosen.value]

    @property
    def directions(self) -> list:
        """The shown model's per-domain ascent directions ĝ_k (computed once per model)."""
        name = self.chosen.value
        if name not in self._directions:
            self._directions[name] = [unit(g) for g in domain_gradients(self.model, self.domain_batches)]
        return self._directions[name]

    def _layout(self) -> go.Figure:
        figure = make_subplots(
            rows=1,
            cols=3,
            horizontal_spacing=0.09,
            subplot_titles=["loss", "cos with ERM grad.", "loss along ĝ_k"],
        )
        figure.add_trace(go.Bar(x=self.names, name="L_k(θ)", marker_color=OTHER, opacity=0.5), row=1, col=1)
        figure.add_trace(go.Bar(x=self.names, name="L_k(θ + ε_k)"), row=1, col=1)
        figure.add_trace(go.Bar(x=self.names, name="cos(g_k, g)", marker_color=OTHER, opacity=0.5), row=1, col=2)
        figure.add_trace(go.Bar(x=self.names, name="cos(g_k^p, g)"), row=1, col=2)
        figure.add_trace(go.Scatter(x=self.offsets, mode="lines", name="L_k(θ + t·ĝ_k)"), row=1, col=3)
        figure.add_trace(
            go.Scatter(mode="markers", name="t = ρ", marker=dict(size=12, color=SELECTED, symbol="diamond")),
            row=1,
            col=3,
        )
        figure.update_xaxes(type="category", row=1, col=1)
        figure.update_xaxes(type="category", row=1, col=2)
        figure.update_xaxes(title_text="t", row=1, col=3)
        figure.update_yaxes(range=[-1, 1], row=1, col=2)
        figure.update_layout(barmode="group", height=380)
        return figure

    def _on_change(self, change: dict) -> None:
        self.refresh()

    def _domain_slice(self, k: int) -> np.ndarray:
        key = (self.chosen.value, k)
        if key not in self._slices:
            self._slices[key] = loss_along_direction(
                self.model, self.domain_batches[k], self.directions[k], self.offsets
            )
        return self._slices[key]

    def refresh(self) -> None:
        """Recompute for the slider's ρ and the selected domain, and update the figure in place."""
        rho = float(self.slider.value)
        k = self.names.index(self.domain.value)
        self.summary = alignment_summary(self.model, self.domain_batches, rho, self.alpha, domain_names=self.names)
        self.slice = self._domain_slice(k)
        marked = float(loss_along_direction(self.model, self.domain_batches[k], self.directions[k], [rho])[0])
        highlight = [SELECTED if i == k else OTHER for i in range(len(self.names))]
        data = self.figure.data
        # One update per property, not a batch_update(): a batch that touches different properties on
        # different traces sends nulls for the untouched ones, which Plotly.js reads as "reset to
        # default" and so wipes trace names, categories and colours in the browser.
        data[0].y = [self.summary[f"loss/{name}"] for name in self.names]
        data[1].y = [self.summary[f"loss_perturbed/{name}"] for name in self.names]
        data[1].marker.color = highlight
        data[2].y = [self.summary[f"cos_clean/{name}"] for name in self.names]
        data[3].y = [self.summary[f"cos_perturbed/{name}"] for name in self.names]
        data[3].marker.color = highlight
        data[4].y = self.slice
        data[4].name = f"L_{self.domain.value}(θ + t·ĝ)"
        data[5].x = [rho]
        data[5].y = [marked]
        shown = f"{self.chosen.value}: " if len(self.models) > 1 else ""
        self.figure.layout.title.text = f"{shown}ρ = {rho:.3f}, α = {self.alpha:g} — domain {self.domain.value}"
