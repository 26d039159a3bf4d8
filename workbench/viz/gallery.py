"""Attribution galleries: faces with their maps (localisation score figures: :mod:`workbench.viz.localisation`).

Galleries put one face per row: first the input with its manipulation mask outlined, then one
overlay per column (per algorithm, or per attribution method) — the face, the map in a perceptual
colour map that is transparent at zero (:func:`workbench.viz.style.attribution_colourscale`,
``opacity`` at the top of the scale) and the same mask outline. Scores go under the cells, never on
them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.analysis.localisation import localisation_scores
from workbench.data.frames import Frames
from workbench.viz.data import heat_map, rgb_uint8
from workbench.viz.labels import label
from workbench.viz.style import (
    OUTLINE,
    attribution_colourscale,
    paper_layout,
)


@dataclass
class Gallery:
    """What a gallery draws: row names (faces), column names (maps), pictures, maps and mask outlines."""

    rows: list[str]
    columns: list[str]
    pictures: dict[str, np.ndarray]
    maps: dict[tuple[str, str], np.ndarray]
    masks: dict[str, np.ndarray]
    peak: float


def gallery_layout(
    images: Mapping[str, Any],
    cams: Mapping[str, Mapping[str, Any]],
    normalize: bool,
    masks: Mapping[str, Any] | None = None,
) -> Gallery:
    """Check and arrange a gallery's inputs.

    Every column of ``cams`` must give a map for every image, with the image's size; ``normalize``
    scales each map by its maximum (an all-zero map stays zero). ``masks`` (optional, per image, in
    [0, 1]) are outlined; an image without a mask (or an all-zero one) gets no outline.
    """
    rows, columns = [str(d) for d in images], [str(a) for a in cams]
    if not rows or not columns:
        raise ValueError("the gallery needs at least one image and one column of maps")
    pictures = {str(name): rgb_uint8(image) for name, image in images.items()}
    maps = {}
    for column, per_image in cams.items():
        missing = [d for d in rows if d not in {str(k) for k in per_image}]
        if missing:
            raise ValueError(f"column {column!r} has no map for image(s) {missing}")
        for name, cam in per_image.items():
            if str(name) not in pictures:
                raise ValueError(f"column {column!r}: a map for image {name!r}, which is not among the images")
            values = heat_map(cam, pictures[str(name)].shape[:2], f"{column} · {name}")
            if (values < 0).any():
                raise ValueError(f"{column} · {name}: maps must be non-negative, minimum {values.min():.3g}")
            if normalize and values.max() > 0:
                values = values / values.max()
            maps[(str(column), str(name))] = values
    outlines = {}
    for name, mask in (masks or {}).items():
        if str(name) not in pictures:
            raise ValueError(f"a mask for image {name!r}, which is not among the images")
        values = heat_map(mask, pictures[str(name)].shape[:2], f"mask · {name}")
        if values.min() < 0 or values.max() > 1:
            raise ValueError(f"mask · {name}: values must lie in [0, 1], got [{values.min():.3g}, {values.max():.3g}]")
        if values.max() > 0:
            outlines[str(name)] = values
    peak = 1.0 if normalize else max(float(m.max()) for m in maps.values()) or 1.0
    return Gallery(rows, columns, pictures, maps, outlines, peak)


def frame_gallery_inputs(
    frames: Frames, maps: Mapping[str, np.ndarray], titles: Sequence[str] | None = None, threshold: float = 0.5
) -> dict[str, Any]:
    """Keyword arguments of :func:`gradcam_gallery` (or its print twin) for ``frames``: one row per frame.

    ``maps``: ``{column: [N, H, W] maps}`` (algorithms or methods). Returns ``images``, ``cams``,
    ``masks`` and ``scores`` — each map's own share of energy in its frame's mask (none where the
    mask is empty or the map zero). Rows are titled by ``titles`` (default the domains; they must be
    unique: use :meth:`~workbench.data.frames.Frames.first_per_domain` to pick frames).
    """
    titles = frames.domains if titles is None else [str(t) for t in titles]
    if len(titles) != len(frames.rows) or len(set(titles)) != len(titles):
        raise ValueError(f"need {len(frames.rows)} unique row titles, got {titles}")
    scores = {}
    for name, values in maps.items():
        energy = localisation_scores(values, frames.masks, threshold)["energy_in_mask"]
        scores[name] = {title: float(e) for title, e in zip(titles, energy) if not np.isnan(e)}
    return {
        "images": {title: frames.images[i] for i, title in enumerate(titles)},
        "cams": {name: {title: values[i] for i, title in enumerate(titles)} for name, values in maps.items()},
        "masks": {title: frames.masks[i] for i, title in enumerate(titles)},
        "scores": scores,
    }


def score_text(scores: Mapping[str, Mapping[str, float]] | None, column: str, row: str, score_label: str) -> str:
    """The score under a cell (``"0.42 energy in mask"``), or ``""`` when none is given."""
    score = (scores or {}).get(column, {}).get(row)
    return "" if score is None or np.isnan(score) else f"{score:.2f} {score_label}"


def _outline(mask: np.ndarray, threshold: float) -> go.Contour:
    return go.Contour(
        z=mask,
        contours=dict(start=threshold, end=threshold, size=1, coloring="none"),
        line=dict(color=OUTLINE, width=2),
        showscale=False,
        hoverinfo="skip",
        showlegend=False,
        name="mask outline",
    )


def gradcam_gallery(
    images: Mapping[str, Any],
    cams: Mapping[str, Mapping[str, Any]],
    scores: Mapping[str, Mapping[str, float]] | None = None,
    masks: Mapping[str, Any] | None = None,
    score_label: str = "energy in mask",
    normalize: bool = True,
    opacity: float = 0.7,
    title: str = "Grad-CAM of the fake logit",
    cell_size: int = 150,
    mask_threshold: float = 0.5,
) -> go.Figure:
    """Faces (rows) beside their attribution maps (columns), mask outlined in every cell.

    ``images``: ``{name: RGB image}`` (H×W×3 or 3×H×W, floats in [0, 1] or uint8 — undo input
    normalisation first), one row each; ``cams``: ``{column: {name: H×W map}}`` — columns are
    algorithms (one model's maps each) or attribution methods; ``scores``: ``{column: {name: number}}``
    written under the cells (e.g. the ``energy_in_mask`` of
    :func:`workbench.analysis.localisation.localisation_table`); ``masks``: ``{name: H×W mask}``
    outlined at ``mask_threshold``. Columns named after an algorithm or method get its label
    (``"roga"`` → ``"RoGA"``, ``"gradcam"`` → ``"Grad-CAM"``).
    """
    gallery = gallery_layout(images, cams, normalize, masks)
    columns = ["input", *gallery.columns]
    n_rows, gap = len(gallery.rows), 34  # px under each row for the scores
    figure = make_subplots(
        rows=n_rows,
        cols=len(columns),
        subplot_titles=[label(c) for c in columns],
        horizontal_spacing=0.012,
        vertical_spacing=gap / ((cell_size + gap) * n_rows),
    )
    scale = attribution_colourscale(opacity)
    traces, rows, cols, axes = [], [], [], {}
    plain = dict(showticklabels=False, ticks="", showline=False, showgrid=False, zeroline=False, title_font_size=12)
    for row, name in enumerate(gallery.rows, start=1):
        mask = gallery.masks.get(name)
        for column, key in enumerate(columns, start=1):
            cell = [go.Image(z=gallery.pictures[name], name=name, hoverinfo="skip")]
            if column > 1:
                cell.append(
                    go.Heatmap(
                        z=gallery.maps[(key, name)],
                        zmin=0,
                        zmax=gallery.peak,
                        colorscale=scale,
                        name=f"{key} · {name}",
                        showscale=row == 1 and column == len(columns),
                        hovertemplate="map %{z:.2f}<extra></extra>",
                        colorbar=dict(
                            title=dict(text="map ÷ its maximum" if normalize else "map", side="right"),
                            thickness=12,
                            len=min(1.0, 2.0 / n_rows),
                        ),
                    )
                )
            if mask is not None:
                cell.append(_outline(mask, mask_threshold))
            traces += cell
            rows += [row] * len(cell)
            cols += [column] * len(cell)
            index = (row - 1) * len(columns) + column
            suffix = "" if index == 1 else str(index)
            text = score_text(scores, key, name, score_label) if column > 1 else ""
            axes[f"xaxis{suffix}"] = dict(plain, title=dict(text=text, standoff=2))
            axes[f"yaxis{suffix}"] = dict(
                plain,
                autorange="reversed",
                scaleanchor=f"x{suffix}",
                constrain="domain",
                title=dict(text=name if column == 1 else "", standoff=2),
            )
            axes[f"xaxis{suffix}"]["constrain"] = "domain"
    figure.add_traces(traces, rows=rows, cols=cols)
    paper_layout(
        figure,
        title=title,
        width=cell_size * len(columns) + 190,
        height=(cell_size + gap) * n_rows + 100,
        margin=dict(l=50, r=20, t=80, b=10),
    )
    figure.update_layout(axes)
    return figure
