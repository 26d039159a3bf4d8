"""Write ``predict``'s outputs to a folder: the score tables (CSV and JSON), a timeline PNG per video, the
most suspicious frames with Grad-CAM overlays, and ``summary.html`` that shows them together."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from workbench.analysis.detector import Detector
from workbench.analysis.media_scores import MediaScores
from workbench.viz.media import score_timeline, suspicious_frames_figure

FRAMES_CSV, MEDIA_CSV, SCORES_JSON = "frame_scores.csv", "media_scores.csv", "scores.json"
SUSPICIOUS_PNG, SUMMARY_HTML = "suspicious_frames.png", "summary.html"


def _records(table: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as JSON-ready dicts: missing values (no face, no error) become null."""
    return json.loads(table.to_json(orient="records"))


def write_summary(scores: MediaScores, detector: Detector, out_dir: str | Path, count: int = 6) -> Path:
    """Write every output under ``out_dir`` and return the path of ``summary.html``."""
    out = Path(out_dir)
    (out / "timelines").mkdir(parents=True, exist_ok=True)
    scores.frames.to_csv(out / FRAMES_CSV, index=False)
    scores.media.to_csv(out / MEDIA_CSV, index=False)
    document = {"model": detector.source, "media": _records(scores.media), "frames": _records(scores.frames)}
    (out / SCORES_JSON).write_text(json.dumps(document, indent=2) + "\n")
    sections = [
        f"<h1>Deepfake scores</h1><p>model: {html.escape(detector.source)}</p>",
        scores.media.to_html(index=False, na_rep="—", float_format="{:.3f}".format),
    ]
    if scores.frames["status"].eq("ok").any():
        suspicious_frames_figure(scores, detector, count).savefig(out / SUSPICIOUS_PNG, dpi=150)
        sections.append(
            f'<h2>The {count} most suspicious frames (Grad-CAM, fake class)</h2><img src="{SUSPICIOUS_PNG}">'
        )
    videos = scores.media[(scores.media["kind"] == "video") & (scores.media["status"] != "error")]
    for number, media in enumerate(videos["media"]):
        name = f"timelines/{number:03d}_{Path(media).stem}.png"
        score_timeline(scores.frames, media).savefig(out / name, dpi=150)
        sections.append(f'<h2>{html.escape(media)}</h2><img src="{html.escape(name)}">')
    page = out / SUMMARY_HTML
    page.write_text(
        '<!doctype html><meta charset="utf-8"><title>Deepfake scores</title>\n' + "\n".join(sections) + "\n"
    )
    return page
