"""Figure builders: structure and data of the plotly figures and their matplotlib versions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from matplotlib.collections import QuadMesh
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

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
    gradcam_gallery,
    gradcam_gallery_static,
    image_grid,
    landscape_contour,
    landscape_contour_static,
    landscape_line,
    landscape_line_static,
    landscape_surface,
    layerwise_heatmap,
    localisation_figure,
    results_bars,
    results_bars_static,
    sharpness_vs_rho,
    sharpness_vs_rho_static,
    training_curves,
    training_curves_static,
)
from workbench.viz.style import ALGORITHM_COLOURS, colours_for

MATRIX = np.array([[1.0, 0.2, -0.4], [0.2, 1.0, 0.5], [-0.4, 0.5, 1.0]])
NAMES = ["SWAP", "REENACT", "GAN"]


def alignment_records(offset: float) -> list[dict]:
    lines = [{"step": 0, "eval": {"source_val": {"auc": 0.5}}}]  # evaluation lines are skipped
    for step in (100, 200):
        stats = {"cos_clean_mean": offset + step / 1000, "cos_perturbed_mean": offset + step / 500, "conflict_rate": 0.0}
        lines.append({"kind": "alignment", "step": step, "alignment": stats})
    return lines


def eval_records(auc_shift: float) -> list[dict]:
    records = []
    for step in (50, 100):
        records.append(
            {
                "step": step, "algorithm": "x", "train": {"loss": 1.0 / step + auc_shift, "lr": 2e-4},
                "eval": {
                    "source_val": {"auc": 0.8 + auc_shift + step / 1000, "eer": 0.2, "n": 40, "n_real": 20, "n_fake": 20},
                    "target/GAN": {"auc": None, "auc_reason": "one class", "eer": 0.3},
                },
            }
        )
    records.append({"kind": "alignment", "step": 100, "alignment": {"cos_clean_mean": 0.1}})
    return records


def test_colours_keep_algorithm_colours_and_fill_in_others():
    colours = colours_for(["RoGA", "erm", "mine", "other"])
    assert colours["RoGA"] == ALGORITHM_COLOURS["roga"] and colours["erm"] == ALGORITHM_COLOURS["erm"]
    assert colours["mine"] != colours["other"]
    assert len(colours_for([f"run{i}" for i in range(25)])) == 25


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
    assert [a.text for a in figure.layout.annotations] == ["erm", "roga"]
    assert [t.type for t in figure.data] == ["heatmap", "heatmap"]
    np.testing.assert_array_equal(np.asarray(figure.data[1].z), -erm.to_numpy())
    assert list(figure.data[0].x) == ["A", "B"] and list(figure.data[0].y) == layers
    assert (figure.data[0].zmin, figure.data[0].zmax) == (-1, 1)
    assert [t.showscale for t in figure.data] == [False, True]  # one colour bar for the shared scale
    assert figure.data[1].xaxis == "x2" and figure.layout.height == 120 + 28 * 3
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
    assert [a.text for a in figure.layout.annotations] == ["cos_clean_mean", "cos_perturbed_mean"]
    # per panel: erm line, roga band, roga line
    assert len(figure.data) == 6
    lines = [t for t in figure.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["erm", "roga", "erm", "roga"]
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
    assert [a.text for a in figure.layout.annotations] == ["train loss", "auc"]
    assert [t.name for t in figure.data] == ["erm", "erm · source_val", "roga", "roga · source_val"]
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
    erm_b = [t for t in figure.data if t.name == "erm"][1]
    np.testing.assert_allclose(erm_b.x, [0.0, 0.05, 0.1])
    np.testing.assert_allclose(erm_b.y, [0.0, 0.2, 0.4])
    assert erm_b.line.color == ALGORITHM_COLOURS["erm"]
    with pytest.raises(ValueError, match="needs column"):
        sharpness_vs_rho(table(1.0))  # no algorithm column


def test_landscape_figures_carry_the_slices():
    alphas, betas = np.linspace(-1, 1, 5), np.linspace(-1, 1, 4)
    loss = np.add.outer(alphas**2, 2 * betas**2)
    curve = LossCurve(alphas, alphas**2, np.ones(5))
    line = landscape_line({"erm": curve, "roga": (alphas, 0.5 * alphas**2)})
    assert [t.name for t in line.data] == ["erm", "roga"]
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
    return images, cams, scores


def test_gradcam_gallery_grid_overlays_and_titles():
    images, cams, scores = gallery_inputs()
    figure = gradcam_gallery(images, cams, scores)
    assert len(figure.data) == 2 * 3 * 2
    assert sum(isinstance(t, go.Image) for t in figure.data) == 6
    titles = [a.text for a in figure.layout.annotations]
    assert titles[0] == "erm · A" and titles[3] == "roga · A<br>energy in mask 0.83"
    roga_b = figure.data[2 * (3 + 1) + 1]
    np.testing.assert_allclose(roga_b.z, cams["roga"]["B"] / cams["roga"]["B"].max())
    np.testing.assert_array_equal(figure.data[0].z, np.round(images["A"] * 255).astype(np.uint8))
    np.testing.assert_array_equal(figure.data[4].z, images["C"].transpose(1, 2, 0))
    raw = gradcam_gallery(images, cams, normalize=False)
    np.testing.assert_allclose(raw.data[1].z, cams["erm"]["A"])
    assert raw.data[1].zmax == pytest.approx(max(c.max() for per in cams.values() for c in per.values()))
    with pytest.raises(ValueError, match=r"no CAM for domain\(s\) \['C'\]"):
        gradcam_gallery(images, {"erm": {"A": cams["erm"]["A"], "B": cams["erm"]["B"]}})
    with pytest.raises(ValueError, match="erm · A: map has shape"):
        gradcam_gallery(images, {"erm": {**cams["erm"], "A": np.ones((4, 4))}})
    with pytest.raises(ValueError, match="undo input normalisation"):
        gradcam_gallery({**images, "A": images["A"] - 0.5}, cams)



def test_localisation_figure_bars_with_the_mask_area_reference():
    table = pd.DataFrame({
        "algorithm": ["erm", "erm", "roga", "roga", "roga"],
        "domain": ["A", "B", "A", "B", "C"],
        "energy_in_mask": [0.2, 0.4, 0.6, 0.8, np.nan],  # C: no mask, dropped
        "pointing_game": [0.0, 1.0, 1.0, 1.0, np.nan],
        "mask_fraction": [0.1, 0.3, 0.1, 0.3, 0.0],
    })
    figure = localisation_figure(table)
    assert [t.name for t in figure.data] == ["erm", "roga", "uniform CAM"]
    roga = figure.data[1]
    assert list(roga.x) == ["A", "B"] and list(roga.y) == [0.6, 0.8]
    assert roga.marker.color == ALGORITHM_COLOURS["roga"]
    assert list(figure.data[2].x) == ["A", "B"] and list(figure.data[2].y) == [0.1, 0.3]
    assert figure.layout.barmode == "group" and tuple(figure.layout.yaxis.range) == (0, 1)
    pointing = localisation_figure(table, value="pointing_game")
    assert [t.name for t in pointing.data] == ["erm", "roga"]  # the area reference is for energy_in_mask only
    assert pointing.layout.title.text == "Grad-CAM pointing_game per domain"

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
    assert [t.name for t in figure.data] == ["erm", "roga"]
    roga = figure.data[1]
    assert list(roga.x) == ["source_test", "target/GAN"]
    np.testing.assert_allclose(roga.y, [0.96, 0.78])
    np.testing.assert_allclose(roga.error_y.array, [0.02, 0.03], atol=1e-12)
    np.testing.assert_allclose(roga.error_y.arrayminus, [0.02, 0.04], atol=1e-12)
    assert figure.layout.barmode == "group"
    assert [shape.y0 for shape in figure.layout.shapes] == [0.5]  # chance line for AUC
    assert not results_bars(SUMMARY, metric="EER").layout.shapes
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
    assert [ax.get_title() for ax in aligned.axes] == ["cos_clean_mean", "cos_perturbed_mean"]
    np.testing.assert_allclose(aligned.axes[1].lines[1].get_ydata(), [0.3, 0.5])

    table = pd.DataFrame({"algorithm": "sam", "domain": ["A", "A", "B", "B"], "rho": [0.0, 0.1] * 2, "sharpness": [0, 1, 0, 2.0]})
    sharp = sharpness_vs_rho_static(table)
    assert [ax.get_title() for ax in sharp.axes] == ["A", "B"]
    np.testing.assert_allclose(sharp.axes[1].lines[0].get_ydata(), [0.0, 2.0])

    alphas = np.linspace(-1, 1, 5)
    line = landscape_line_static({"erm": (alphas, alphas**2)})
    np.testing.assert_allclose(line.axes[0].lines[0].get_ydata(), alphas**2)
    contour = landscape_contour_static((alphas, alphas[:4], np.add.outer(alphas, alphas[:4])))
    assert contour.axes[0].get_xlabel() == "β (direction 2)"

    images, cams, scores = gallery_inputs()
    gallery = gradcam_gallery_static(images, cams, scores)
    assert len(gallery.axes) == 6
    assert gallery.axes[3].get_title() == "roga · A\nenergy in mask 0.83"
    overlay = gallery.axes[4].images[1].get_array()
    np.testing.assert_allclose(overlay, cams["roga"]["B"] / cams["roga"]["B"].max())
    cmap = gallery.axes[4].images[1].get_cmap()  # the interactive gallery's scale: zero is transparent
    assert cmap(0.0)[3] == 0.0 and cmap(1.0) == pytest.approx((1.0, 0.0, 0.0, 0.8))

    scatter = embedding_scatter_static(embedding_frame())
    assert len(scatter.axes[0].collections[0].get_offsets()) == 10

    bars = results_bars_static(SUMMARY)
    assert bars.axes[0].get_title() == "" and results_bars_static(SUMMARY, title="AUC").axes[0].get_title() == "AUC"
    heights = [patch.get_height() for patch in bars.axes[0].patches]
    np.testing.assert_allclose(heights, [0.95, 0.70, 0.96, 0.78])
    errorbars = [c for c in bars.axes[0].containers if isinstance(c, ErrorbarContainer)]
    roga_segments = errorbars[1].lines[2][0].get_segments()
    np.testing.assert_allclose([[seg[0][1], seg[1][1]] for seg in roga_segments], [[0.94, 0.98], [0.74, 0.81]])
    assert [tuple(line.get_ydata()) for line in bars.axes[0].lines if line.get_linestyle() == "--"] == [(0.5, 0.5)]
    assert not [line for line in results_bars_static(SUMMARY, metric="EER").axes[0].lines if line.get_linestyle() == "--"]

    curves = training_curves_static(eval_frame({"erm": eval_records(0.0)}), groups=["source_val"])
    assert [ax.get_title() for ax in curves.axes[:2]] == ["train loss", "auc"]
    np.testing.assert_allclose(curves.axes[1].lines[0].get_ydata(), [0.85, 0.9])


def test_counts_figure_stacks_splits_per_label():
    manifest = pd.DataFrame({
        "domain": ["R"] * 5 + ["F"] * 3,
        "label": [0] * 5 + [1] * 3,
        "split": ["train", "train", "train", "val", "test", "train", "test", "test"],
    })
    figure = counts_figure(manifest, title="counts")
    bars = {(t.name, t.xaxis, x): y for t in figure.data for x, y in zip(t.x, t.y)}
    assert bars == {("train", "x", "R"): 3, ("val", "x", "R"): 1, ("test", "x", "R"): 1,
                    ("train", "x2", "F"): 1, ("test", "x2", "F"): 2}  # panel 1: real, panel 2: fake
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
    frames = Frames(pd.DataFrame({"domain": domains, "label": [1] * len(domains)}), images,
                    np.zeros((len(domains), 4, 4)))
    figure = frame_gallery(frames, masks=False)
    assert [t.xaxis for t in figure.data] == ["x", "x2", "x3", "x4", "x7", "x8", "x9"]
