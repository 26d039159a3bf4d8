"""Dataset figures: frames per domain and split, and sample frames with their manipulation masks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from workbench.data.frames import Frames
from workbench.viz.data import rgb_uint8
from workbench.viz.style import paper_layout


def counts_figure(manifest: pd.DataFrame, title: str = "Frames per domain") -> go.Figure:
    """Bars of frames per domain, stacked by split, one panel per label (real / fake)."""
    frame = manifest.assign(label=manifest["label"].map({0: "real", 1: "fake"}))
    counts = frame.groupby(["label", "domain", "split"]).size().rename("frames").reset_index()
    figure = px.bar(
        counts,
        x="domain",
        y="frames",
        color="split",
        facet_col="label",
        title=title,
        category_orders={"split": ["train", "val", "test"], "label": ["real", "fake"]},
    )
    figure.update_xaxes(matches=None)
    figure.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))  # "label=fake" → "fake"
    return paper_layout(figure)


def image_grid(
    images: Sequence[Any], titles: Sequence[str], columns: int, title: str | None = None, cell_size: int = 130
) -> go.Figure:
    """Images in a grid (row-major), each with its title; images are RGB (uint8 or [0, 1]) or 2-D masks in [0, 1].

    A ``None`` image leaves its cell empty (e.g. to start the next domain on a new row).
    """
    if len(images) != len(titles):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    if all(image is None for image in images) or columns < 1:
        raise ValueError("need at least one image and one column")
    rows = math.ceil(len(images) / columns)
    figure = make_subplots(
        rows=rows, cols=columns, subplot_titles=list(titles), horizontal_spacing=0.01, vertical_spacing=0.3 / rows
    )
    for i, image in enumerate(images):
        if image is None:
            continue
        array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        if array.ndim == 2:
            if array.min() < 0 or array.max() > 1:
                raise ValueError(f"image {i} ({titles[i]}): a 2-D mask must lie in [0, 1]")
            array = np.repeat(array[..., None], 3, axis=-1)
        figure.add_trace(go.Image(z=rgb_uint8(array), hoverinfo="skip"), row=i // columns + 1, col=i % columns + 1)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_annotations(font_size=10)
    figure.update_layout(
        title=title, width=cell_size * columns + 60, height=cell_size * rows + 100, margin=dict(l=20, r=20, t=80, b=20)
    )
    return figure


def frame_gallery(
    frames: Frames, title: str | None = None, masks: bool = True, per_row: int | None = None
) -> go.Figure:
    """Frames titled ``domain · real/fake``, each followed by its manipulation mask when ``masks`` (white = changed).

    By default each domain gets a row of its own (as many frames per row as the largest domain has; a
    domain with fewer leaves the rest of its row empty). With ``per_row``, frames are laid out row-major,
    ``per_row`` to a row (e.g. one frame per domain, four domains to a row).
    """
    cells_per_frame = 2 if masks else 1
    if per_row is not None:
        images, titles = _frame_cells(frames, range(len(frames.domains)), masks)
        return image_grid(images, titles, columns=min(per_row * cells_per_frame, len(images)), title=title)
    domains = pd.Series(frames.domains)
    per_row = int(domains.value_counts().max())
    images, titles = [], []
    for domain in dict.fromkeys(frames.domains):
        positions = np.flatnonzero(domains == domain)
        cells, names = _frame_cells(frames, positions, masks)
        blanks = (-len(positions) % per_row) * cells_per_frame
        images += cells + [None] * blanks
        titles += names + [""] * blanks
    return image_grid(images, titles, columns=min(per_row * cells_per_frame, len(images)), title=title)


def _frame_cells(frames: Frames, positions: Sequence[int], masks: bool) -> tuple[list[Any], list[str]]:
    """The grid cells of the frames at ``positions``: each frame titled ``domain · real/fake``, then its mask."""
    images, titles = [], []
    for i in positions:
        images.append(frames.images[i])
        titles.append(f"{frames.domains[i]} · {'fake' if frames.rows['label'].iloc[i] == 1 else 'real'}")
        if masks:
            images.append(frames.masks[i])
            titles.append("mask")
    return images, titles
