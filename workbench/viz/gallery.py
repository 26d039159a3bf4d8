"""Attribution figures: galleries of faces with their maps, and localisation scores per domain, depth and method.

Galleries put one face per row: first the input with its manipulation mask outlined, then one
overlay per column (per algorithm, or per attribution method) — the face, the map in a perceptual
colour map that is transparent at zero (:func:`workbench.viz.style.attribution_colourscale`,
``opacity`` at the top of the scale) and the same mask outline. Scores go under the cells, never on
them. Localisation figures mark the chance level: a uniform map scores the mask's area share on
both the energy in the mask and the pointing game.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.analysis.attribution import SCORE_COLUMNS, localisation_scores, mean_over_domains
from workbench.data.frames import Frames
from workbench.viz.data import heat_map, require_columns, rgb_uint8
from workbench.viz.labels import label
from workbench.viz.style import (
    OUTLINE,
    REFERENCE,
    attribution_colourscale,
    legend_outside,
    paper_layout,
    styles_for,
    tick_text,
)

CHANCE = "chance (mask area)"
SCORES = ("energy_in_mask", "pointing_game")


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
    :func:`workbench.analysis.attribution.localisation_table`); ``masks``: ``{name: H×W mask}``
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


def _score_table(table: pd.DataFrame, value: str) -> pd.DataFrame:
    if value not in SCORES:
        raise ValueError(f"value={value!r}: choose one of {list(SCORES)}")
    require_columns(table, ["algorithm", "domain", value, "mask_fraction"], "the localisation table")
    return table.dropna(subset=[value])


def localisation_figure(
    table: pd.DataFrame, value: str = "energy_in_mask", held_out: Sequence[str] = (), title: str | None = None
) -> go.Figure:
    """Grouped bars of a localisation score per domain (x) and algorithm (colour), chance marked per domain.

    ``table`` has columns ``algorithm``, ``domain``, ``value`` (``energy_in_mask`` or
    ``pointing_game``) and ``mask_fraction`` (e.g.
    :func:`workbench.analysis.attribution.localisation_table`). A uniform map scores the mask's area
    share on both, so bars above the black marks concentrate on the manipulated region. Domains in
    ``held_out`` are labelled so.
    """
    defined = _score_table(table, value)
    names = {d: tick_text(f"{d} (held-out)" if d in set(held_out) else d) for d in dict.fromkeys(defined["domain"])}
    figure = go.Figure()
    for algorithm, style in styles_for(defined["algorithm"]).items():
        rows = defined[defined["algorithm"] == algorithm]
        figure.add_trace(
            go.Bar(
                x=[names[d] for d in rows["domain"]],
                y=rows[value],
                name=label(algorithm),
                marker_color=style.colour,
                marker_pattern_shape=style.hatch,
                hovertemplate="%{x}: %{y:.3f}<extra>" + label(algorithm) + "</extra>",
            )
        )
    reference = defined.groupby("domain", sort=False)["mask_fraction"].mean()
    figure.add_trace(
        go.Scatter(
            x=[names[d] for d in reference.index],
            y=list(reference.values),
            mode="markers",
            name=CHANCE,
            marker=dict(symbol="line-ew-open", size=34, color=REFERENCE, line=dict(width=3)),
            hovertemplate="%{x}: chance %{y:.3f}<extra></extra>",
        )
    )
    top = max(float(defined[value].max()), float(reference.max()))
    paper_layout(
        figure,
        barmode="group",
        yaxis=dict(title=label(value), range=[0, min(1.0, top * 1.15 + 0.02)]),
        title=title or f"Localisation per domain: {label(value)}",
        width=900,
        height=480,
    )
    return legend_outside(figure)


def _depth_ticks(stats: pd.DataFrame, default_layer: str | None) -> tuple[list[str], dict[str, str]]:
    order = stats.sort_values("depth", kind="stable").drop_duplicates("layer")
    ticks = {}
    for row in order.itertuples():
        size = f"{int(row.height)} × {int(row.width)}" if "height" in stats.columns else ""
        marked = f"{row.layer} (default)" if row.layer == default_layer else row.layer
        ticks[row.layer] = f"{marked}<br>{size}" if size else marked
    return list(ticks), ticks


def localisation_depth_figure(
    table: pd.DataFrame,
    domains: Sequence[str] | None = None,
    default_layer: str | None = None,
    title: str = "Grad-CAM localisation against depth",
) -> go.Figure:
    """Energy in the mask and pointing game (panels) at every layer (x, shallow to deep), one line per algorithm.

    ``table``: :func:`workbench.analysis.attribution.localisation_by_depth`; scores are averaged
    over ``domains`` (default all), each domain weighing the same. The dotted black line is the
    chance level; ``default_layer`` is marked on the axis.
    """
    require_columns(table, ["algorithm", "layer", "depth", "domain", *SCORE_COLUMNS], "localisation_depth_figure")
    rows = table if domains is None else table[table["domain"].isin(list(domains))]
    if rows.empty:
        raise ValueError(
            f"no rows for domains {list(domains or [])}; the table has {list(dict.fromkeys(table['domain']))}"
        )
    stats = mean_over_domains(rows, ["algorithm", "layer"])
    layers, ticks = _depth_ticks(stats, default_layer)
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=[label(v) for v in SCORES], shared_yaxes=True, horizontal_spacing=0.06
    )
    for algorithm, style in styles_for(stats["algorithm"]).items():
        line = stats[stats["algorithm"] == algorithm].set_index("layer").reindex(layers)
        for column, value in enumerate(SCORES, start=1):
            figure.add_trace(
                go.Scatter(
                    x=[ticks[layer] for layer in layers],
                    y=line[value],
                    mode="lines+markers",
                    name=label(algorithm),
                    legendgroup=algorithm,
                    showlegend=column == 1,
                    line=dict(color=style.colour, dash=style.dash, width=2.5),
                    marker=dict(symbol=style.marker, size=9),
                    hovertemplate="%{x}: %{y:.3f}<extra>" + label(algorithm) + "</extra>",
                ),
                row=1,
                col=column,
            )
    chance = stats.groupby("layer", sort=False)["mask_fraction"].mean().reindex(layers)
    for column in (1, 2):
        figure.add_trace(
            go.Scatter(
                x=[ticks[layer] for layer in layers],
                y=chance,
                mode="lines",
                name=CHANCE,
                legendgroup="chance",
                showlegend=column == 1,
                line=dict(color=REFERENCE, dash="dot", width=2),
                hovertemplate="%{x}: chance %{y:.3f}<extra></extra>",
            ),
            row=1,
            col=column,
        )
    top = max(float(stats[list(SCORES)].max().max()), float(chance.max()))
    figure.update_yaxes(range=[0, min(1.0, top * 1.15 + 0.02)])
    figure.update_xaxes(title_text="layer (map size at the input size)")
    paper_layout(figure, title=title, width=1000, height=480)
    return legend_outside(figure)


def method_comparison_figure(
    table: pd.DataFrame, domains: Sequence[str] | None = None, title: str = "Localisation by attribution method"
) -> go.Figure:
    """Energy in the mask and pointing game (panels) per attribution method (x) and algorithm (colour).

    ``table``: :func:`workbench.analysis.attribution.compare_methods` ``.table``; averaged over
    ``domains`` (default all), each domain weighing the same; black marks: chance level.
    """
    require_columns(table, ["algorithm", "method", "domain", *SCORE_COLUMNS], "method_comparison_figure")
    rows = table if domains is None else table[table["domain"].isin(list(domains))]
    stats = mean_over_domains(rows, ["algorithm", "method"])
    methods = list(dict.fromkeys(stats["method"]))
    names = [tick_text(label(m)) for m in methods]
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=[label(v) for v in SCORES], shared_yaxes=True, horizontal_spacing=0.06
    )
    for algorithm, style in styles_for(stats["algorithm"]).items():
        bars = stats[stats["algorithm"] == algorithm].set_index("method").reindex(methods)
        for column, value in enumerate(SCORES, start=1):
            figure.add_trace(
                go.Bar(
                    x=names,
                    y=bars[value],
                    name=label(algorithm),
                    legendgroup=algorithm,
                    showlegend=column == 1,
                    marker_color=style.colour,
                    marker_pattern_shape=style.hatch,
                    hovertemplate="%{x}: %{y:.3f}<extra>" + label(algorithm) + "</extra>",
                ),
                row=1,
                col=column,
            )
    chance = stats.groupby("method", sort=False)["mask_fraction"].mean().reindex(methods)
    for column in (1, 2):
        figure.add_trace(
            go.Scatter(
                x=names,
                y=chance,
                mode="markers",
                name=CHANCE,
                legendgroup="chance",
                showlegend=column == 1,
                marker=dict(symbol="line-ew-open", size=40, color=REFERENCE, line=dict(width=3)),
                hovertemplate="%{x}: chance %{y:.3f}<extra></extra>",
            ),
            row=1,
            col=column,
        )
    top = max(float(stats[list(SCORES)].max().max()), float(chance.max()))
    figure.update_yaxes(range=[0, min(1.0, top * 1.15 + 0.02)])
    paper_layout(figure, barmode="group", title=title, width=1000, height=480)
    return legend_outside(figure)
