"""``python -m workbench predict`` end to end on CPU: short clips of real face photos, a faceless clip,
a damaged file."""

import json

import pandas as pd
import pytest
from predict_media import BLANK_FRAME, tiny_run, write_media

from workbench.__main__ import main


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    return tiny_run(root), write_media(root / "media"), root


def test_predict_scores_every_readable_file_and_names_the_damaged_one(setting, capsys):
    run, media, root = setting
    out = root / "out"
    code = main(
        [
            "predict",
            str(run),
            str(root / "media"),
            "--out",
            str(out),
            "--frames",
            "6",
            "--size",
            "64",
            "--top",
            "3",
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 2 and f"UNREADABLE {media['corrupt']}" in captured.err
    frames, table = pd.read_csv(out / "frame_scores.csv"), pd.read_csv(out / "media_scores.csv")
    assert set(table["media"]) == {str(path) for path in media.values()}
    face = table[table["media"] == str(media["face"])].iloc[0]
    scored = frames[(frames["media"] == str(media["face"])) & (frames["status"] == "ok")]
    assert face["score"] == pytest.approx(scored["prob_fake"].mean())
    faceless = frames[frames["status"] == "no_face"]
    assert set(zip(faceless["media"], faceless["frame"])) >= {(str(media["face"]), BLANK_FRAME)}
    assert faceless["prob_fake"].isna().all()
    document = json.loads((out / "scores.json").read_text())
    assert len(document["frames"]) == len(frames) and document["media"][0]["media"] == table.loc[0, "media"]
    assert {row["prob_fake"] for row in document["frames"] if row["status"] == "no_face"} == {None}
    assert {path.name for path in (out / "timelines").iterdir()} == {"000_blank.png", "001_face.png"}
    page = (out / "summary.html").read_text()
    assert "suspicious_frames.png" in page and (out / "suspicious_frames.png").stat().st_size > 0


def test_unusable_arguments_give_one_line_errors(setting, tmp_path, capsys):
    run, media, _ = setting
    assert main(["predict", str(run), str(tmp_path / "nothing.mp4"), "--out", str(tmp_path)]) == 1
    assert "nothing.mp4" in capsys.readouterr().err
    assert main(["predict", str(media["grace"]), str(media["grace"]), "--out", str(tmp_path)]) == 1
    assert "--arch" in capsys.readouterr().err
