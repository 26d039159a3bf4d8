"""Grad-CAM figures: the gallery (one face per domain in columns, each algorithm's CAM overlaid in rows)
and the localisation scores per domain and algorithm."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.viz.data import heat_map, rgb_uint8
from workbench.viz.style import colours_for

# transparent where the CAM is low, so the face stays visible under the salient region
CAM_COLOURSCALE = [
    [0.0, "rgba(0, 0, 255, 0)"],
    [0.3, "rgba(0, 128, 255, 0.35)"],
    [0.6, "rgba(255, 255, 0, 0.6)"],
    [1.0, "rgba(255, 0, 0, 0.8)"],
]


def gallery_layout(
    images: Mapping[str, Any], cams: Mapping[str, Mapping[str, Any]], normalize: bool
) -> tuple[list[str], list[str], dict[str, np.ndarray], dict[tuple[str, str], np.ndarray]]:
    """Algorithms (rows), domains (columns), RGB images per domain and the maps to draw per cell.

    Every algorithm must give a CAM for every domain with the image's size; ``normalize`` scales
    each map by its maximum (an all-zero map stays zero).
    """
    domains, algorithms = [str(d) for d in images], [str(a) for a in cams]
    if not domains or not algorithms:
        raise ValueError("the gallery needs at least one image and one algorithm")
    pictures = {str(domain): rgb_uint8(image) for domain, image in images.items()}
    maps = {}
    for algorithm, per_domain in cams.items():
        missing = [d for d in domains if d not in {str(k) for k in per_domain}]
        if missing:
            raise ValueError(f"algorithm {algorithm!r} has no CAM for domain(s) {missing}")
        for domain, cam in per_domain.items():
            if str(domain) not in pictures:
                raise ValueError(f"algorithm {algorithm!r}: CAM for domain {domain!r}, which has no image")
            values = heat_map(cam, pictures[str(domain)].shape[:2], f"{algorithm} · {domain}")
            if normalize and values.max() > 0:
                values = values / values.max()
            maps[(str(algorithm), str(domain))] = values
    return algorithms, domains, pictures, maps


def cell_title(algorithm: str, domain: str, scores: Mapping[str, Mapping[str, float]] | None, score_label: str) -> str:
    """``"algorithm · domain"`` plus the cell's score when one is given."""
    title = f"{algorithm} · {domain}"
    score = (scores or {}).get(algorithm, {}).get(domain)
    return title if score is None else f"{title}<br>{score_label} {score:.2f}"


def gradcam_gallery(
    images: Mapping[str, Any],
    cams: Mapping[str, Mapping[str, Any]],
    scores: Mapping[str, Mapping[str, float]] | None = None,
    score_label: str = "energy in mask",
    normalize: bool = True,
    cell_size: int = 180,
) -> go.Figure:
    """Faces with CAM overlays: rows = algorithms, columns = domains, titles carry the scores.

    ``images``: ``{domain: RGB image}`` (H×W×3 or 3×H×W, floats in [0, 1] or uint8 — undo input
    normalisation first); ``cams``: ``{algorithm: {domain: H×W map}}`` (e.g. ``GradCAM(...)
    .attribute(x)[i, 0]``); ``scores``: ``{algorithm: {domain: number}}`` such as the
    ``energy_in_mask`` of :func:`workbench.analysis.attribution.localisation_by_domain`.
    """
    algorithms, domains, pictures, maps = gallery_layout(images, cams, normalize)
    titles = [cell_title(a, d, scores, score_label) for a in algorithms for d in domains]
    figure = make_subplots(
        rows=len(algorithms), cols=len(domains), subplot_titles=titles, horizontal_spacing=0.02, vertical_spacing=0.08
    )
    peak = 1.0 if normalize else max(float(m.max()) for m in maps.values()) or 1.0
    for row, algorithm in enumerate(algorithms, start=1):
        for column, domain in enumerate(domains, start=1):
            figure.add_trace(go.Image(z=pictures[domain], name=domain, hoverinfo="skip"), row=row, col=column)
            figure.add_trace(
                go.Heatmap(
                    z=maps[(algorithm, domain)], zmin=0, zmax=peak, colorscale=CAM_COLOURSCALE, name=f"{algorithm} · {domain}",
                    showscale=row == 1 and column == len(domains), colorbar=dict(title="CAM"),
                    hovertemplate="CAM %{z:.2f}<extra></extra>",
                ),
                row=row, col=column,
            )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(
        title="Grad-CAM (class fake)", width=cell_size * len(domains) + 120, height=cell_size * len(algorithms) + 120
    )
    return figure


def localisation_figure(table: pd.DataFrame, value: str = "energy_in_mask") -> go.Figure:
    """Grouped bars of a localisation table per domain and algorithm, with the mask area as a reference.

    ``table`` has columns ``algorithm``, ``domain``, ``value`` and ``mask_fraction`` (e.g. the
    notebooks' ``localisation_table``, built on
    :func:`workbench.analysis.attribution.localisation_by_domain`). A CAM spread uniformly over the
    image scores the mask's area share (``mask_fraction``) on ``energy_in_mask``; bars above the
    black markers concentrate on the manipulated region.
    """
    defined = table.dropna(subset=[value])
    figure = go.Figure()
    for algorithm, colour in colours_for(defined["algorithm"]).items():
        rows = defined[defined["algorithm"] == algorithm]
        figure.add_trace(go.Bar(x=rows["domain"], y=rows[value], name=algorithm, marker_color=colour))
    if value == "energy_in_mask":
        reference = defined.groupby("domain", sort=False)["mask_fraction"].mean()
        figure.add_trace(go.Scatter(
            x=list(reference.index), y=list(reference.values), mode="markers", name="uniform CAM",
            marker=dict(symbol="line-ew-open", size=30, color="black", line=dict(width=3)),
        ))
    figure.update_layout(barmode="group", yaxis=dict(title=value, range=[0, 1]), title=f"Grad-CAM {value} per domain")
    return figure
