"""Figure builders: structure and data of the plotly figures and their matplotlib versions."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import QuadMesh
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from PIL import Image
from test_viz_localisation import LOCALISATION, depth_table, method_table

import workbench.viz
from workbench.analysis.landscape import LossCurve, LossSurface
from workbench.data.frames import Frames
from workbench.viz import (
    alignment_frame,
    alignment_over_training,
    alignment_over_training_static,
    cosine_heatmap,
    cosine_heatmap_static,
    counts_figure,
    embedding_scatter,
    embedding_scatter_static,
    eval_frame,
    frame_gallery,
    frame_gallery_inputs,
    gradcam_gallery,
    gradcam_gallery_static,
    image_grid,
    landscape_contour,
    landscape_contour_static,
    landscape_line,
    landscape_line_static,
    landscape_surface,
    layerwise_heatmap,
    localisation_depth_figure,
    localisation_depth_static,
    localisation_figure,
    method_comparison_figure,
    method_comparison_static,
    results_bars,
    results_bars_static,
    robustness_figure,
    sharpness_vs_rho,
    sharpness_vs_rho_static,
    training_curves,
    training_curves_static,
)
from workbench.viz.data import error_bar_caption
from workbench.viz.export import DEBIAN_CHROMIUM, kaleido_session, save_figure
from workbench.viz.labels import label, readable
from workbench.viz.style import (
    ACCENT,
    FIXED_COLOURS,
    NEUTRAL,
    PALETTE,
    VARIANTS,
    attribution_colourmap,
    attribution_colourscale,
    colours_for,
    display_name,
    styles_for,
)

MATRIX = np.array([[1.0, 0.2, -0.4], [0.2, 1.0, 0.5], [-0.4, 0.5, 1.0]])
NAMES = ["SWAP", "REENACT", "GAN"]


def alignment_records(offset: float) -> list[dict]:
    lines = [{"step": 0, "eval": {"source_val": {"auc": 0.5}}}]  # evaluation lines are skipped
    for step in (100, 200):
        stats = {
            "cos_clean_mean": offset + step / 1000,
            "cos_perturbed_mean": offset + step / 500,
            "conflict_rate": 0.0,
        }
        lines.append({"kind": "alignment", "step": step, "alignment": stats})
    return lines


def eval_records(auc_shift: float) -> list[dict]:
    records = []
    for step in (50, 100):
        records.append(
            {
                "step": step,
                "algorithm": "x",
                "train": {"loss": 1.0 / step + auc_shift, "lr": 2e-4},
                "eval": {
                    "source_val": {
                        "auc": 0.8 + auc_shift + step / 1000,
                        "eer": 0.2,
                        "n": 40,
                        "n_real": 20,
                        "n_fake": 20,
                    },
                    "target/GAN": {"auc": None, "auc_reason": "one class", "eer": 0.3},
                },
            }
        )
    records.append({"kind": "alignment", "step": 100, "alignment": {"cos_clean_mean": 0.1}})
    return records


DOMAINBED = [
    "erm",
    "sam",
    "sagm",
    "roga",
    "asam",
    "gsam",
    "irm",
    "vrex",
    "groupdro",
    "coral",
    "mmd",
    "mixup",
    "mldg",
    "fish",
    "fishr",
    "andmask",
    "sandmask",
]


def test_colours_keep_algorithm_colours_and_fill_in_others():
    colours = colours_for(["RoGA", "erm", "mine", "other"])
    assert colours["RoGA"] == FIXED_COLOURS["roga"] == ACCENT and colours["erm"] == FIXED_COLOURS["erm"] == NEUTRAL
    assert colours["mine"] != colours["other"] and {colours["mine"], colours["other"]} <= set(PALETTE)
    many = styles_for([f"run{i}" for i in range(25)])
    assert len({(s.colour, s.variant) for s in many.values()}) == 25  # colours repeat, dashes tell them apart
    # a registered algorithm keeps its colour whatever else a figure shows
    assert colours_for(["sam", "roga"])["sam"] == colours_for(["erm", "sagm", "sam", "mine"])["sam"]
    assert styles_for(["sam", "sagm", "erm", "roga"]) == styles_for(["roga", "erm", "sagm", "sam"])
    assert {s.variant for s in styles_for(["erm", "sam", "sagm", "roga"]).values()} == {VARIANTS[0]}  # all solid
    variants = styles_for(["roga", "roga (algorithm.hparams.rho=0.1)"])  # a config variant: RoGA's colour, dashed
    assert {s.colour for s in variants.values()} == {ACCENT}
    assert variants["roga"].dash == "solid" and variants["roga (algorithm.hparams.rho=0.1)"].dash == "dash"
    assert display_name("roga (algorithm.hparams.rho=0.1)") == "RoGA (algorithm.hparams.rho=0.1)"
    assert display_name("sagm") == "SAGM" and display_name("mine") == "mine"


def test_palette_stays_distinguishable_for_domainbed_s_algorithms(monkeypatch):
    """With the 17 algorithms of a grown registry: distinct styles, fixed ERM/RoGA, order from the sorted names."""
    monkeypatch.setattr("workbench.viz.style.registered_algorithms", lambda: {n: n.upper() for n in DOMAINBED})
    styles = styles_for(DOMAINBED)
    assert len({(s.colour, s.variant) for s in styles.values()}) == len(DOMAINBED)
    assert styles["erm"].colour == NEUTRAL and styles["roga"].colour == ACCENT
    ranked = sorted(set(DOMAINBED) - {"erm", "roga"})
    for slot, name in enumerate(ranked):
        assert styles[name].colour == PALETTE[slot % len(PALETTE)]
        assert styles[name].variant == VARIANTS[slot // len(PALETTE)]
    shuffled = styles_for(list(reversed(DOMAINBED)))
    assert shuffled == styles  # the labels' order does not matter
    assert styles_for(["sam", "mixup"])["sam"].colour == styles["sam"].colour  # nor the other labels
    assert styles_for(["asam", "sam"])["sam"].dash == "solid"  # variants only where colours meet:
    assert styles_for(["andmask", "sam"])["sam"].dash == "dash"  # slots 0 and 12 share the first colour


def test_attribution_colour_map_is_transparent_at_zero_and_the_same_in_both_libraries():
    scale = attribution_colourscale(0.6)
    assert scale[0][0] == 0.0 and scale[0][1].endswith(", 0.000)") and scale[-1][1].endswith(", 0.600)")
    cmap = attribution_colourmap(0.6, steps=len(scale))
    for (_, colour), rgba in zip(scale, cmap(np.linspace(0, 1, len(scale)))):
        channels = [float(c) for c in colour[colour.index("(") + 1 : -1].split(",")]
        np.testing.assert_allclose(channels[:3], np.round(rgba[:3] * 255), atol=0.5)
        assert channels[3] == pytest.approx(rgba[3], abs=1e-3)
    with pytest.raises(ValueError, match="opacity=1.5"):
        attribution_colourscale(1.5)


def test_labels_are_words():
    assert [label(n) for n in ("auc", "target/SYN-GAN", "source_test", "energy_in_mask", "gradcam", "roga")] == [
        "AUC",
        "SYN-GAN (held-out)",
        "source test",
        "energy in mask",
        "Grad-CAM",
        "RoGA",
    ]
    assert label("source_test/SYN-GAN") == "SYN-GAN (source test)" and label("some_new_metric") == "some new metric"
    table = pd.DataFrame({"algorithm": ["erm"], "method": ["integrated_gradients"], "energy_in_mask": [0.4]})
    shown = readable(table)
    assert list(shown.columns) == ["algorithm", "method", "energy in mask"]
    assert shown.iloc[0].tolist() == ["ERM", "Integrated Gradients", 0.4]
    assert label("target/SYN-GAN:auc") == "AUC, SYN-GAN (held-out)"
    by_algorithm = readable(pd.DataFrame({"lambda_max": [2.0], "trace": [9.0]}, index=["roga"]))
    assert list(by_algorithm.columns) == ["largest Hessian eigenvalue", "Hessian trace"]
    assert list(by_algorithm.index) == ["RoGA"]
    nested = pd.DataFrame(
        [["0.9", "0.7"]],
        index=pd.Index(["sam"], name="algorithm"),
        columns=pd.MultiIndex.from_tuples([("source", "source_test"), ("cross-dataset", "target/CDF")]),
    )
    assert readable(nested).columns.tolist() == [("source", "source test"), ("cross-dataset", "CDF (held-out)")]
    assert list(readable(nested).index) == ["SAM"]


def test_cosine_heatmap_shows_the_matrix():
    figure = cosine_heatmap(MATRIX, NAMES)
    assert isinstance(figure, go.Figure) and len(figure.data) == 1
    heatmap = figure.data[0]
    np.testing.assert_array_equal(np.asarray(heatmap.z), MATRIX)
    assert list(heatmap.x) == NAMES and list(heatmap.y) == NAMES
    assert (heatmap.zmin, heatmap.zmax) == (-1, 1)
    assert heatmap.texttemplate == "%{z:.2f}"
    frame = pd.DataFrame(MATRIX, index=NAMES, columns=NAMES)
    assert list(cosine_heatmap(frame).data[0].x) == NAMES
    with pytest.raises(ValueError, match="square"):
        cosine_heatmap(np.ones((2, 3)))
    with pytest.raises(ValueError, match="2 names for a 3×3"):
        cosine_heatmap(MATRIX, NAMES[:2])
    shuffled = frame.loc[NAMES[::-1], NAMES]  # rows reordered, columns not: cells follow the labels
    np.testing.assert_array_equal(np.asarray(cosine_heatmap(shuffled).data[0].z), MATRIX[::-1, ::-1])
    with pytest.raises(ValueError, match="same labels on both axes"):
        cosine_heatmap(pd.DataFrame(MATRIX, index=NAMES))


def test_layerwise_heatmap_one_panel_per_algorithm():
    layers = ["stem", "layer1", "head"]
    erm = pd.DataFrame([[0.1, -0.2], [0.3, 0.4], [0.5, -0.6]], index=layers, columns=["A", "B"])
    figure = layerwise_heatmap({"erm": erm, "roga": erm * -1})
    assert [a.text for a in figure.layout.annotations] == ["ERM", "RoGA"]
    assert [t.type for t in figure.data] == ["heatmap", "heatmap"]
    np.testing.assert_array_equal(np.asarray(figure.data[1].z), -erm.to_numpy())
    assert list(figure.data[0].x) == ["A", "B"] and list(figure.data[0].y) == layers
    assert (figure.data[0].zmin, figure.data[0].zmax) == (-1, 1)
    assert [t.showscale for t in figure.data] == [False, True]  # one colour bar for the shared scale
    assert figure.data[1].xaxis == "x2" and figure.layout.height == max(360, 200 + 28 * 3)
    with pytest.raises(ValueError, match="no layer-wise tables"):
        layerwise_heatmap({})


def test_alignment_frame_reads_records_and_run_directories(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").write_text("".join(json.dumps(line) + "\n" for line in alignment_records(0.5)))
    frame = alignment_frame({"erm": alignment_records(0.0), "roga": [run, alignment_records(0.1)]})
    assert list(frame.columns[:3]) == ["algorithm", "run", "step"]
    assert len(frame) == 6
    roga = frame[frame["algorithm"] == "roga"]
    assert sorted(roga["run"].unique()) == [0, 1]
    assert roga[(roga["run"] == 0) & (roga["step"] == 200)]["cos_perturbed_mean"].item() == pytest.approx(0.9)
    with pytest.raises(ValueError, match="no 'alignment' lines"):
        alignment_frame({"erm": [{"step": 0, "eval": {}}]})
    with pytest.raises(ValueError, match="not a mix"):
        alignment_frame({"erm": [run, {"step": 0}]})
    with pytest.raises(ValueError, match="needs 'step' and a 'alignment' dict"):
        alignment_frame({"erm": [{"kind": "alignment", "step": 3}]})


def test_alignment_over_training_averages_runs_with_a_band():
    frame = alignment_frame({"erm": alignment_records(0.0), "roga": [alignment_records(0.1), alignment_records(0.3)]})
    figure = alignment_over_training(frame)
    assert [a.text for a in figure.layout.annotations] == ["mean cos(g_k, g)", "mean cos(g_k^p, g)"]
    # per panel: erm line, roga band, roga line
    assert len(figure.data) == 6
    lines = [t for t in figure.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["ERM", "RoGA", "ERM", "RoGA"]
    roga_perturbed = lines[3]
    np.testing.assert_allclose(roga_perturbed.y, [0.2 + 0.2, 0.2 + 0.4])  # mean of offsets 0.1 and 0.3
    band = [t for t in figure.data if t.fill == "toself"][1]
    std = np.std([0.1, 0.3], ddof=1)
    np.testing.assert_allclose(band.y[:2], np.array([0.4, 0.6]) + std)
    with pytest.raises(ValueError, match="needs column"):
        alignment_over_training(frame, metrics=("missing",))


def test_eval_frame_and_training_curves():
    frame = eval_frame({"erm": eval_records(0.0), "roga": [eval_records(0.0), eval_records(0.1)]})
    assert set(frame["group"]) == {"train", "source_val", "target/GAN"}
    assert not frame["metric"].isin(["n", "n_real", "n_fake", "auc_reason"]).any()
    gan_auc = frame[(frame["group"] == "target/GAN") & (frame["metric"] == "auc")]["value"]
    assert gan_auc.isna().all() and len(gan_auc) == 6
    figure = training_curves(frame, metric="auc", groups=["source_val"])
    assert [a.text for a in figure.layout.annotations] == ["training loss", "AUC"]
    assert [t.name for t in figure.data] == [
        "ERM",
        "ERM · source validation",
        "RoGA",
        "RoGA · source validation",
        "source validation",
    ]
    legend = [t.name for t in figure.data if t.showlegend is not False]
    assert legend == ["ERM", "RoGA", "source validation"]  # colour per algorithm, dash per group
    np.testing.assert_allclose(figure.data[3].y, [0.85 + 0.05, 0.9 + 0.05])
    np.testing.assert_allclose(figure.data[0].y, [1 / 50, 1 / 100])
    with pytest.raises(ValueError, match=r"group\(s\) \['lodo_val'\]"):
        training_curves(frame, groups=["lodo_val"])


def test_sharpness_vs_rho_panels_per_domain():
    def table(scale):
        return pd.DataFrame(
            [(d, r, scale * r * (i + 1)) for i, d in enumerate(["A", "B"]) for r in (0.0, 0.05, 0.1)],
            columns=["domain", "rho", "sharpness"],
        )

    figure = sharpness_vs_rho({"erm": table(2.0), "roga": table(1.0)})
    assert [a.text for a in figure.layout.annotations] == ["A", "B"]
    assert len(figure.data) == 4
    erm_b = [t for t in figure.data if t.name == "ERM"][1]
    np.testing.assert_allclose(erm_b.x, [0.0, 0.05, 0.1])
    np.testing.assert_allclose(erm_b.y, [0.0, 0.2, 0.4])
    assert erm_b.line.color == NEUTRAL
    assert figure.layout.title.text == "ε-sharpness against ρ per domain"
    with pytest.raises(ValueError, match="needs column"):
        sharpness_vs_rho(table(1.0))  # no algorithm column


def test_landscape_figures_carry_the_slices():
    alphas, betas = np.linspace(-1, 1, 5), np.linspace(-1, 1, 4)
    loss = np.add.outer(alphas**2, 2 * betas**2)
    curve = LossCurve(alphas, alphas**2, np.ones(5))
    line = landscape_line({"erm": curve, "roga": (alphas, 0.5 * alphas**2)})
    assert [t.name for t in line.data] == ["ERM", "RoGA"]
    np.testing.assert_allclose(line.data[1].y, 0.5 * alphas**2)
    contour = landscape_contour(LossSurface(alphas, betas, loss, np.ones_like(loss)))
    np.testing.assert_allclose(contour.data[0].z, loss)
    np.testing.assert_allclose(contour.data[0].x, betas)
    np.testing.assert_allclose(contour.data[0].y, alphas)
    assert (contour.data[1].x, contour.data[1].y) == ((0.0,), (0.0,))
    np.testing.assert_allclose(landscape_surface((alphas, betas, loss)).data[0].z, loss)
    with pytest.raises(ValueError, match="expected"):
        landscape_contour((alphas, betas, loss.T))
    with pytest.raises(ValueError, match="equal-length"):
        landscape_line((alphas, alphas[:3]))


def gallery_inputs():
    rng = np.random.default_rng(0)
    images = {d: rng.random((8, 8, 3)) for d in ("A", "B", "C")}
    images["C"] = (images["C"] * 255).astype(np.uint8).transpose(2, 0, 1)  # 3×H×W uint8 is accepted too
    cams = {a: {d: rng.random((8, 8)) * (i + 1) for d in ("A", "B", "C")} for i, a in enumerate(("erm", "roga"))}
    scores = {"roga": {"A": 0.83, "B": 0.4, "C": 0.1}}
    masks = {"A": np.pad(np.ones((4, 4)), 2), "B": np.zeros((8, 8))}  # B: an empty mask, C: none
    return images, cams, scores, masks


def test_gradcam_gallery_puts_each_face_beside_its_maps_with_the_mask_outlined():
    images, cams, scores, masks = gallery_inputs()
    figure = gradcam_gallery(images, cams, scores, masks=masks, opacity=0.5)
    kinds = [t.type for t in figure.data]
    assert kinds.count("image") == 3 * 3 and kinds.count("heatmap") == 3 * 2
    assert kinds.count("contour") == 3  # row A only: input, ERM, RoGA (B's mask is empty, C has none)
    assert [a.text for a in figure.layout.annotations] == ["input", "ERM", "RoGA"]  # column headers
    assert figure.layout.yaxis.title.text == "A" and figure.layout.yaxis4.title.text == "B"  # row labels
    assert figure.layout.xaxis3.title.text == "0.83 energy in mask" and figure.layout.xaxis2.title.text == ""
    assert figure.layout.xaxis.title.text == ""  # nothing under the input
    heatmaps = [t for t in figure.data if t.type == "heatmap"]
    roga_b = heatmaps[3]  # row B, column RoGA
    assert roga_b.xaxis == "x6"
    np.testing.assert_allclose(roga_b.z, cams["roga"]["B"] / cams["roga"]["B"].max())
    assert roga_b.colorscale[0][1].endswith(", 0.000)") and roga_b.colorscale[-1][1].endswith(", 0.500)")
    images_drawn = [t for t in figure.data if t.type == "image"]
    np.testing.assert_array_equal(images_drawn[0].z, np.round(images["A"] * 255).astype(np.uint8))
    np.testing.assert_array_equal(images_drawn[6].z, images["C"].transpose(1, 2, 0))
    outline = next(t for t in figure.data if t.type == "contour")
    assert outline.contours.start == outline.contours.end == 0.5 and outline.contours.coloring == "none"
    raw = [t for t in gradcam_gallery(images, cams, normalize=False).data if t.type == "heatmap"]
    np.testing.assert_allclose(raw[0].z, cams["erm"]["A"])
    assert raw[0].zmax == pytest.approx(max(c.max() for per in cams.values() for c in per.values()))
    with pytest.raises(ValueError, match=r"column 'erm' has no map for image\(s\) \['C'\]"):
        gradcam_gallery(images, {"erm": {"A": cams["erm"]["A"], "B": cams["erm"]["B"]}})
    with pytest.raises(ValueError, match="erm · A: map has shape"):
        gradcam_gallery(images, {"erm": {**cams["erm"], "A": np.ones((4, 4))}})
    with pytest.raises(ValueError, match="undo input normalisation"):
        gradcam_gallery({**images, "A": images["A"] - 0.5}, cams)
    with pytest.raises(ValueError, match=r"mask · A: values must lie in \[0, 1\]"):
        gradcam_gallery(images, cams, masks={"A": np.full((8, 8), 255.0)})
    with pytest.raises(ValueError, match="erm · A: maps must be non-negative"):
        gradcam_gallery(images, {"erm": {**cams["erm"], "A": -np.ones((8, 8))}})


def test_frame_gallery_inputs_score_each_face_and_check_titles():
    masks = np.zeros((2, 8, 8))
    masks[0, :, :4] = 1.0  # B: a real face, no mask
    frames = Frames(
        pd.DataFrame({"domain": ["A", "B"], "label": [1, 0]}), torch.zeros(2, 3, 8, 8, dtype=torch.uint8), masks
    )
    left = np.zeros((8, 8))
    left[:, :2] = 1.0
    inputs = frame_gallery_inputs(frames, {"erm": np.stack([left, np.full((8, 8), 2.0)])})
    assert list(inputs["images"]) == ["A", "B"] and float(inputs["cams"]["erm"]["B"].max()) == 2.0
    assert inputs["scores"] == {"erm": {"A": 1.0}}  # B has no mask, so no score
    np.testing.assert_array_equal(inputs["masks"]["A"], masks[0])
    assert "images" in inputs and gradcam_gallery(**inputs).layout.xaxis2.title.text == "1.00 energy in mask"
    with pytest.raises(ValueError, match="unique row titles"):
        frame_gallery_inputs(frames, {"erm": np.zeros((2, 8, 8))}, titles=["x", "x"])


def embedding_frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {"domain": ["A"] * 6 + ["B"] * 4, "label": [0, 1] * 5, "x": rng.normal(size=10), "y": rng.normal(size=10)}
    )


def test_embedding_scatter_colours_domains_and_marks_labels():
    frame = embedding_frame()
    figure = embedding_scatter(frame)
    assert len(figure.data) == 4
    assert {t.name for t in figure.data} == {"A, real", "A, fake", "B, real", "B, fake"}
    fake_b = next(t for t in figure.data if t.name == "B, fake")
    rows = frame[(frame["domain"] == "B") & (frame["label"] == 1)]
    np.testing.assert_allclose(fake_b.x, rows["x"])
    np.testing.assert_allclose(fake_b.y, rows["y"])
    assert len({t.marker.symbol for t in figure.data}) == 2
    with pytest.raises(ValueError, match="needs column"):
        embedding_scatter(frame.drop(columns="label"))


SUMMARY = pd.DataFrame(
    {
        "algorithm": ["erm", "erm", "roga", "roga"],
        "group": ["source_test", "target/GAN", "source_test", "target/GAN"],
        "mean": [0.95, 0.70, 0.96, 0.78],
        "ci_low": [0.93, 0.65, 0.94, 0.74],
        "ci_high": [0.97, 0.74, 0.98, 0.81],
    }
)


def test_results_bars_with_asymmetric_intervals():
    figure = results_bars(SUMMARY)
    assert [t.name for t in figure.data] == ["ERM", "RoGA", "chance"]  # the dotted line's legend entry
    roga = figure.data[1]
    assert list(roga.x) == ["source test", "GAN<br>(held-out)"]
    np.testing.assert_allclose(roga.y, [0.96, 0.78])
    np.testing.assert_allclose(roga.error_y.array, [0.02, 0.03], atol=1e-12)
    np.testing.assert_allclose(roga.error_y.arrayminus, [0.02, 0.04], atol=1e-12)
    assert figure.layout.barmode == "group"
    assert [shape.y0 for shape in figure.layout.shapes] == [0.5]  # chance line for AUC
    eer = results_bars(SUMMARY, metric="EER")
    assert not eer.layout.shapes and [t.name for t in eer.data] == ["ERM", "RoGA"]
    bad = SUMMARY.assign(ci_low=[0.99, 0.65, 0.94, 0.74])
    with pytest.raises(ValueError, match=r"row 0 \(erm, source_test\)"):
        results_bars(bad)
    with pytest.raises(ValueError, match="more than one row"):
        results_bars(pd.concat([SUMMARY, SUMMARY.iloc[:1]]))
    with pytest.raises(ValueError, match="more than one row"):
        results_bars_static(pd.concat([SUMMARY, SUMMARY.iloc[:1]]))


@pytest.mark.parametrize("builder", ["interactive", "static"])
def test_results_bars_take_the_metric_from_the_summary(builder):
    """An EER summary is labelled EER and gets no chance line; calling it AUC is an error."""
    draw = results_bars if builder == "interactive" else results_bars_static
    eer = SUMMARY.assign(metric="eer")
    figure = draw(eer)
    if builder == "interactive":
        assert figure.layout.yaxis.title.text == "EER" and not figure.layout.shapes
    else:
        assert figure.axes[0].get_ylabel() == "EER"
        assert "chance" not in [line.get_label() for line in figure.axes[0].lines]
    with pytest.raises(ValueError, match="does not match the summary's metric column 'eer'"):
        draw(eer, metric="AUC")
    with pytest.raises(ValueError, match="mixes metrics"):
        draw(SUMMARY.assign(metric=["auc", "eer", "auc", "auc"]))


def test_static_variants_draw_the_same_data():
    heat = cosine_heatmap_static(MATRIX, NAMES)
    assert isinstance(heat, Figure)
    mesh = next(c for c in heat.axes[0].collections if isinstance(c, QuadMesh))
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(3, 3), MATRIX)
    assert [t.get_text() for t in heat.axes[0].texts][:2] == ["1.00", "0.20"]

    frame = alignment_frame({"erm": alignment_records(0.0), "roga": alignment_records(0.1)})
    aligned = alignment_over_training_static(frame)
    assert [ax.get_title() for ax in aligned.axes] == ["mean cos(g_k, g)", "mean cos(g_k^p, g)"]
    np.testing.assert_allclose(aligned.axes[1].lines[1].get_ydata(), [0.3, 0.5])
    assert [t.get_text() for t in aligned.legends[0].get_texts()] == ["ERM", "RoGA"]  # one legend, below the axes

    table = pd.DataFrame(
        {"algorithm": "sam", "domain": ["A", "A", "B", "B"], "rho": [0.0, 0.1] * 2, "sharpness": [0, 1, 0, 2.0]}
    )
    sharp = sharpness_vs_rho_static(table)
    assert [ax.get_title() for ax in sharp.axes] == ["A", "B"] and sharp.axes[0].get_ylabel() == "ε-sharpness"
    np.testing.assert_allclose(sharp.axes[1].lines[0].get_ydata(), [0.0, 2.0])

    alphas = np.linspace(-1, 1, 5)
    line = landscape_line_static({"erm": (alphas, alphas**2)})
    np.testing.assert_allclose(line.axes[0].lines[0].get_ydata(), alphas**2)
    contour = landscape_contour_static((alphas, alphas[:4], np.add.outer(alphas, alphas[:4])))
    assert contour.axes[0].get_xlabel() == "β (direction 2)"

    images, cams, scores, masks = gallery_inputs()
    gallery = gradcam_gallery_static(images, cams, scores, masks=masks, opacity=0.5)
    cells = gallery.axes[:9]  # 3 faces × (input, ERM, RoGA), then the colour bar
    assert [ax.get_title() for ax in cells[:3]] == ["input", "ERM", "RoGA"]
    assert cells[0].get_ylabel() == "A" and cells[2].get_xlabel() == "0.83 in mask"
    overlay = cells[5].images[1].get_array()  # row B, RoGA
    np.testing.assert_allclose(overlay, cams["roga"]["B"] / cams["roga"]["B"].max())
    cmap = cells[5].images[1].get_cmap()  # the interactive gallery's scale: zero is transparent
    assert cmap(0.0)[3] == 0.0 and cmap(1.0)[3] == pytest.approx(0.5)
    assert len(cells[0].collections) == 1 and not cells[3].collections  # A's mask outlined, B's empty one not

    scatter = embedding_scatter_static(embedding_frame())
    assert len(scatter.axes[0].collections[0].get_offsets()) == 10

    bars = results_bars_static(SUMMARY)
    assert bars.axes[0].get_title() == "" and results_bars_static(SUMMARY, title="AUC").axes[0].get_title() == "AUC"
    heights = [patch.get_height() for patch in bars.axes[0].patches]
    np.testing.assert_allclose(heights, [0.95, 0.70, 0.96, 0.78])
    errorbars = [c for c in bars.axes[0].containers if isinstance(c, ErrorbarContainer)]
    roga_segments = errorbars[1].lines[2][0].get_segments()
    np.testing.assert_allclose([[seg[0][1], seg[1][1]] for seg in roga_segments], [[0.94, 0.98], [0.74, 0.81]])
    assert [tuple(line.get_ydata()) for line in bars.axes[0].lines if line.get_label() == "chance"] == [(0.5, 0.5)]
    assert not [
        line for line in results_bars_static(SUMMARY, metric="EER").axes[0].lines if line.get_label() == "chance"
    ]
    assert [t.get_text() for t in bars.axes[0].get_xticklabels()] == ["source test", "GAN\n(held-out)"]

    curves = training_curves_static(eval_frame({"erm": eval_records(0.0)}), groups=["source_val"])
    assert [ax.get_title() for ax in curves.axes[:2]] == ["training loss", "AUC"]
    np.testing.assert_allclose(curves.axes[1].lines[0].get_ydata(), [0.85, 0.9])


def test_counts_figure_stacks_splits_per_label():
    manifest = pd.DataFrame(
        {
            "domain": ["R"] * 5 + ["F"] * 3,
            "label": [0] * 5 + [1] * 3,
            "split": ["train", "train", "train", "val", "test", "train", "test", "test"],
        }
    )
    figure = counts_figure(manifest, title="counts")
    bars = {(t.name, t.xaxis, x): y for t in figure.data for x, y in zip(t.x, t.y)}
    assert bars == {
        ("train", "x", "R"): 3,
        ("val", "x", "R"): 1,
        ("test", "x", "R"): 1,
        ("train", "x2", "F"): 1,
        ("test", "x2", "F"): 2,
    }  # panel 1: real, panel 2: fake
    assert list(dict.fromkeys(t.name for t in figure.data)) == ["train", "val", "test"]
    assert figure.layout.title.text == "counts"


def test_image_grid_places_images_and_masks_row_major():
    face = torch.full((3, 4, 4), 200, dtype=torch.uint8)
    mask = np.zeros((4, 4))
    mask[:2] = 1.0
    figure = image_grid([face, mask, np.ones((4, 4, 3))], ["face", "mask", "white"], columns=2, title="grid")
    assert [t.type for t in figure.data] == ["image"] * 3
    assert [t.xaxis for t in figure.data] == ["x", "x2", "x3"]  # the third image starts row 2
    assert [a.text for a in figure.layout.annotations] == ["face", "mask", "white"]
    np.testing.assert_array_equal(figure.data[0].z, np.full((4, 4, 3), 200))
    np.testing.assert_array_equal(figure.data[1].z[..., 0], mask * 255)  # a mask is drawn as grey levels
    assert (figure.layout.width, figure.layout.height) == (130 * 2 + 60, 130 * 2 + 100)
    with pytest.raises(ValueError, match="2 images but 1 titles"):
        image_grid([face, mask], ["face"], columns=2)
    with pytest.raises(ValueError, match="mask must lie in"):
        image_grid([np.full((8, 8), 2.0)], ["bad"], columns=1)
    with pytest.raises(ValueError, match="at least one image"):
        image_grid([], [], columns=1)


def test_frame_gallery_titles_frames_and_their_masks():
    images = torch.stack([torch.full((3, 4, 4), v, dtype=torch.uint8) for v in (10, 20, 30)])
    masks = np.stack([np.full((4, 4), v) for v in (0.0, 0.5, 1.0)])
    frames = Frames(pd.DataFrame({"domain": ["A", "A", "B"], "label": [1, 0, 1]}), images, masks)
    figure = frame_gallery(frames, title="frames")
    assert [a.text for a in figure.layout.annotations] == ["A · fake", "mask", "A · real", "mask", "B · fake", "mask"]
    assert figure.data[4].xaxis == "x5" and figure.layout.width == 130 * 4 + 60  # 2 frames (of A) per row
    assert figure.data[3].z[0, 0, 0] == 128 and figure.data[4].z[0, 0, 0] == 30
    plain = frame_gallery(frames, masks=False, per_row=3)  # row-major: one row of three
    assert [a.text for a in plain.layout.annotations] == ["A · fake", "A · real", "B · fake"]
    assert plain.layout.width == 130 * 3 + 60 and [t.xaxis for t in plain.data] == ["x", "x2", "x3"]


def test_frame_gallery_starts_every_domain_on_a_new_row():
    domains = ["A"] * 3 + ["B"] + ["C"] * 3
    images = torch.stack([torch.full((3, 4, 4), 10 * i, dtype=torch.uint8) for i in range(len(domains))])
    frames = Frames(
        pd.DataFrame({"domain": domains, "label": [1] * len(domains)}), images, np.zeros((len(domains), 4, 4))
    )
    figure = frame_gallery(frames, masks=False)
    assert [t.xaxis for t in figure.data] == ["x", "x2", "x3", "x4", "x7", "x8", "x9"]


def test_static_attribution_figures_draw_the_same_data():
    depth = localisation_depth_static(depth_table(), default_layer="layer2")
    energy, pointing = depth.axes[:2]
    assert [energy.get_title(), pointing.get_title()] == ["energy in mask", "pointing game"]
    np.testing.assert_allclose(energy.lines[1].get_ydata(), [0.3, 0.4, 0.5])  # RoGA
    np.testing.assert_allclose(energy.lines[2].get_ydata(), [0.2] * 3)  # chance
    assert [t.get_text() for t in energy.get_xticklabels()] == ["act1\n32×32", "layer1\n16×16", "layer2*\n8×8"]
    assert [t.get_text() for t in depth.legends[0].get_texts()] == ["ERM", "RoGA", "chance (mask area)"]
    methods = method_comparison_static(method_table())
    heights = [patch.get_height() for patch in methods.axes[0].patches]
    np.testing.assert_allclose(heights, [0.3, 0.4, 0.4, 0.5])
    assert [t.get_text() for t in methods.axes[0].get_xticklabels()] == ["Grad-CAM", "Occlusion"]


# ----------------------------------------------------------------------- every figure builder
NOT_BUILDERS = {
    "AttributionExplorer",
    "RhoExplorer",
    "alignment_frame",
    "eval_frame",
    "frame_gallery_inputs",
    "kaleido_session",
    "save_figure",
    "label",
    "readable",
}
# snake_case words (a column or key, not a label); a one-letter subscript such as g_k is notation
VARIABLE_NAME = re.compile(r"\b(?:[a-z][a-z0-9]+_[a-z0-9_]+|[a-z]_[a-z]{2,}[a-z0-9_]*)\b")


def builders() -> dict[str, Any]:
    """One call of every figure builder in ``workbench.viz`` on small data."""
    frames = Frames(
        pd.DataFrame({"domain": ["A", "A", "B"], "label": [1, 0, 1]}),
        torch.randint(0, 255, (3, 3, 8, 8), dtype=torch.uint8),
        np.zeros((3, 8, 8)),
    )
    manifest = pd.DataFrame({"domain": ["R", "F", "F"], "label": [0, 1, 1], "split": ["train", "train", "test"]})
    images, cams, scores, masks = gallery_inputs()
    alignment = alignment_frame(
        {"erm": alignment_records(0.0), "roga": [alignment_records(0.1), alignment_records(0.3)]}
    )
    evaluations = eval_frame({"erm": eval_records(0.0), "roga": eval_records(0.1)})
    sharpness = pd.DataFrame(
        {"algorithm": ["erm", "erm", "roga", "roga"], "domain": "A", "rho": [0.0, 0.1] * 2, "sharpness": [0, 1, 0, 0.5]}
    )
    alphas = np.linspace(-1, 1, 5)
    slice_2d = (alphas, alphas, np.add.outer(alphas**2, alphas**2))
    layers = {"erm": pd.DataFrame([[0.1, -0.2], [0.3, 0.4]], index=["stem", "head"], columns=["A", "B"])}
    return {
        "alignment_over_training": lambda: alignment_over_training(alignment),
        "alignment_over_training_static": lambda: alignment_over_training_static(alignment),
        "cosine_heatmap": lambda: cosine_heatmap(MATRIX, NAMES),
        "cosine_heatmap_static": lambda: cosine_heatmap_static(MATRIX, NAMES),
        "counts_figure": lambda: counts_figure(manifest),
        "embedding_scatter": lambda: embedding_scatter(embedding_frame()),
        "embedding_scatter_static": lambda: embedding_scatter_static(embedding_frame()),
        "frame_gallery": lambda: frame_gallery(frames, title="frames"),
        "gradcam_gallery": lambda: gradcam_gallery(images, cams, scores, masks=masks),
        "gradcam_gallery_static": lambda: gradcam_gallery_static(images, cams, scores, masks=masks),
        "image_grid": lambda: image_grid([np.ones((4, 4, 3))], ["white"], columns=1),
        "landscape_contour": lambda: landscape_contour(slice_2d),
        "landscape_contour_static": lambda: landscape_contour_static(slice_2d),
        "landscape_line": lambda: landscape_line({"erm": (alphas, alphas**2), "roga": (alphas, alphas**2 / 2)}),
        "landscape_line_static": lambda: landscape_line_static({"erm": (alphas, alphas**2)}),
        "landscape_surface": lambda: landscape_surface(slice_2d),
        "layerwise_heatmap": lambda: layerwise_heatmap(layers),
        "localisation_depth_figure": lambda: localisation_depth_figure(depth_table(), default_layer="layer1"),
        "localisation_depth_static": lambda: localisation_depth_static(depth_table(), default_layer="layer1"),
        "localisation_figure": lambda: localisation_figure(LOCALISATION),
        "method_comparison_figure": lambda: method_comparison_figure(method_table()),
        "method_comparison_static": lambda: method_comparison_static(method_table()),
        "results_bars": lambda: results_bars(SUMMARY),
        "results_bars_static": lambda: results_bars_static(SUMMARY),
        "robustness_figure": lambda: robustness_figure(
            pd.DataFrame(
                {
                    "algorithm": ["erm"] * 3 + ["roga"] * 3,
                    "group": "source_test",
                    "perturbation": ["none", "jpeg", "jpeg"] * 2,
                    "level": [0, 1, 5] * 2,
                    "auc": [0.9, 0.8, 0.6] * 2,
                    "auc_low": 0.5,
                    "auc_high": 0.95,
                    "ci_level": 0.95,
                    "n_boot": 100,
                }
            )
        ),
        "sharpness_vs_rho": lambda: sharpness_vs_rho(sharpness),
        "sharpness_vs_rho_static": lambda: sharpness_vs_rho_static(sharpness),
        "training_curves": lambda: training_curves(evaluations),
        "training_curves_static": lambda: training_curves_static(evaluations),
    }


def visible_text(figure: Any) -> list[str]:
    """Titles, axis titles, annotations, legend entries and category ticks of a plotly or matplotlib figure."""
    if isinstance(figure, Figure):
        texts = [figure.get_suptitle()]
        for ax in figure.axes:
            texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
            texts += [t.get_text() for t in (*ax.get_xticklabels(), *ax.get_yticklabels())]
        texts += [t.get_text() for legend in figure.legends for t in legend.get_texts()]
        return texts
    layout = figure.layout
    texts = [layout.title.text or ""] + [a.text or "" for a in layout.annotations]
    for name in dir(layout):
        if name.startswith(("xaxis", "yaxis")) and getattr(layout, name) is not None:
            texts.append(getattr(layout, name).title.text or "")
    for trace in figure.data:
        if getattr(trace, "showlegend", None) is not False and trace.type not in (
            "image",
            "heatmap",
            "contour",
            "surface",
        ):
            texts.append(trace.name or "")
        for axis in ("x", "y"):
            values = getattr(trace, axis, None)
            if trace.type in ("bar", "scatter") and values is not None and len(values) and isinstance(values[0], str):
                texts += list(values)
    return texts


def test_every_builder_in_the_package_is_covered():
    assert set(workbench.viz.__all__) == set(builders()) | NOT_BUILDERS


@pytest.mark.parametrize("name", sorted(builders()))
def test_figures_are_labelled_with_words_not_variable_names(name):
    figure = builders()[name]()
    assert isinstance(figure, (go.Figure, Figure))
    offending = [text for text in visible_text(figure) if VARIABLE_NAME.search(str(text))]
    assert not offending, f"{name} shows variable names: {offending}"


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_CHROMIUM.exists() and "BROWSER_PATH" not in os.environ, reason="no Chromium for kaleido")
def test_every_figure_builder_renders_to_png(tmp_path):
    with kaleido_session():
        for name, build in builders().items():
            path = save_figure(build(), tmp_path / f"{name}.png", scale=1)
            with Image.open(path) as image:
                image.verify()
                assert image.format == "PNG" and min(image.size) > 150, name


def test_error_bars_say_what_they_are():
    assert (
        error_bar_caption(SUMMARY) == "error bars: the summary's confidence intervals (level and method not recorded)"
    )
    summary = SUMMARY.assign(
        ci_level=0.95,
        ci_method=[
            "video bootstrap (1 seed(s) pooled)",
            "seed bootstrap",
            "video bootstrap (3 seed(s) pooled)",
            "none: 1 seed and no predictions",
        ],
    )
    caption = "error bars: 95% CI, seed bootstrap or video bootstrap; none where 1 seed and no predictions"
    assert error_bar_caption(summary) == caption
    assert error_bar_caption(summary.assign(ci_method="none: metric undefined")) == (
        "no error bars; none where metric undefined"
    )
    assert results_bars(summary).layout.xaxis.title.text == caption
    assert results_bars_static(summary).axes[0].get_xlabel() == caption


def test_static_results_legend_never_covers_a_bar():
    summary = pd.concat(
        [
            SUMMARY[SUMMARY["algorithm"] == "erm"].assign(algorithm=name)
            for name in ("erm", "sam", "sagm", "roga", "irm", "fish")
        ]
    )
    figure = results_bars_static(summary.assign(mean=0.99, ci_low=0.98, ci_high=1.0))  # bars up to the top
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    legend = figure.legends[0].get_window_extent(renderer)
    axes = figure.axes[0].get_window_extent(renderer)
    assert legend.y1 <= axes.y0 and not figure.axes[0].get_legend()
