"""A ρ slider over a sharpness table (notebook 04)."""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.viz.data import labelled
from workbench.viz.labels import label
from workbench.viz.style import styles_for


class SharpnessSlider:
    """A ρ slider over a sharpness table: bars of every domain's sharpness at the chosen ρ, one series per algorithm.

    ``table``: ``{algorithm: sharpness_per_domain(...)}``, or one table with columns ``algorithm``,
    ``domain``, ``rho`` and ``value``. Display :attr:`widget`; :attr:`figure` is updated in place.
    """

    def __init__(
        self, table: pd.DataFrame | Mapping[str, pd.DataFrame], value: str = "sharpness", rho: float | None = None
    ) -> None:
        table = labelled(table)
        missing = [c for c in ("algorithm", "domain", "rho", value) if c not in table.columns]
        if missing:
            raise ValueError(f"the sharpness table needs column(s) {missing}; have {list(table.columns)}")
        self.table = table
        self.value = value
        self.rhos = sorted(table["rho"].unique())
        self.domains = list(dict.fromkeys(table["domain"].astype(str)))
        start = self.rhos[len(self.rhos) // 2] if rho is None else rho
        if start not in self.rhos:
            raise ValueError(f"rho={rho} is not on the table's grid {self.rhos}")
        self.slider = widgets.SelectionSlider(
            options=[(f"{r:g}", r) for r in self.rhos], value=start, description="ρ", continuous_update=False
        )
        figure = go.Figure()
        styles = styles_for(table["algorithm"])
        self.algorithms = list(styles)
        for algorithm, style in styles.items():
            figure.add_trace(
                go.Bar(
                    x=self.domains, name=label(algorithm), marker_color=style.colour, marker_pattern_shape=style.hatch
                )
            )
        low, top = min(0.0, float(table[value].min())), float(table[value].max())
        figure.update_layout(barmode="group", yaxis=dict(title=label(value), range=[low, top * 1.1 or 1.0]))
        self.figure = go.FigureWidget(figure)
        self.widget = widgets.VBox([self.slider, self.figure])
        self.slider.observe(lambda change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        rho = self.slider.value
        at = self.table[self.table["rho"] == rho]
        with self.figure.batch_update():
            for trace, algorithm in zip(self.figure.data, self.algorithms):
                rows = at[at["algorithm"] == algorithm].groupby("domain")[self.value].mean()
                trace.y = [rows.get(domain, np.nan) for domain in self.domains]
            self.figure.layout.title.text = f"{label(self.value)} at ρ = {rho:g}"
