"""The demo pipeline on a tiny budget: two runs, a comparison table, report.md with a PNG figure."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.config import load_config
from workbench.demo import run_demo
from workbench.training.selection import load_records, select


@pytest.mark.slow
def test_demo_writes_a_comparison_report(tmp_path):
    config = load_config(
        overrides={
            "data": {
                "synthetic": {
                    "cache_dir": str(tmp_path / "cache"),
                    "videos_per_domain": 5,
                    "frames_per_video": 2,
                    "size": 32,
                    "workers": 1,
                },
                "image_size": 32,
                "batch_size": 16,
            },
            "model": {"name": "test_resnet"},
            "train": {"steps": 4, "eval_every": 2, "device": "cpu", "progress": False},
        }
    )
    table, differences, report = run_demo(config, tmp_path / "demo")
    assert list(table.index) == ["erm", "roga"]
    assert {"source_test", "target/SYN-SEAMLESS", "target/SYN-COMPRESS", "held_out_mean", "gap"} <= set(table.columns)
    for name in ("erm", "roga"):  # named as a sweep names its runs
        assert (tmp_path / "demo" / f"{name}-seed0" / "done").exists()
    text = report.read_text()
    assert "| erm |" in text and "| roga |" in text and "comparison.png" in text
    assert "| source_test | target/SYN-COMPRESS | target/SYN-SEAMLESS |" in text  # the library's results table
    erm = table.loc["erm"]
    assert f"- erm (step {erm['step']:.0f}): held-out mean {erm['held_out_mean']:.3f}, gap {erm['gap']:.3f}\n" in text
    # RoGA's held-out mean and gap minus ERM's, each with its paired interval (one seed each)
    paired = differences.set_index("group")
    assert set(differences["algorithm"]) == {"roga"} and set(differences["baseline"]) == {"erm"}
    for group in ("held_out_mean", "gap"):
        assert paired.loc[group, "difference"] == pytest.approx(table.loc["roga", group] - table.loc["erm", group])
        assert paired.loc[group, "ci_method"] == "paired video bootstrap"
        assert paired.loc[group, "ci_low"] <= paired.loc[group, "difference"] <= paired.loc[group, "ci_high"]
    roga_line = next(line for line in text.splitlines() if line.startswith("- roga (step"))
    assert "; minus erm: held out mean " in roga_line and ", gap " in roga_line and roga_line.count("[") == 2
    assert "paired video bootstrap of the difference to erm" in text
    assert "Total wall time" in text
    for name in ("comparison", "gradcam", "gradcam_depth"):
        png = (tmp_path / "demo" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and f"({name}.png)" in text
    assert "## Where the detectors look" in text  # 32 px faces: the default layer is layer1, 8 × 8
    for name in ("erm", "roga", "untrained"):  # the trained detectors and the random-weight control
        assert f"| {name} | layer1 (8×8) |" in text
    for name in ("erm", "roga"):  # the table holds the source-val-selected record of each run
        chosen = select(load_records(tmp_path / "demo" / f"{name}-seed0"), rule="source_val", metric="auc")
        targets = [v["auc"] for g, v in chosen["eval"].items() if g.startswith("target/")]
        row = table.loc[name]
        assert row["step"] == chosen["step"]
        assert row["source_test"] == pytest.approx(chosen["eval"]["source_test"]["auc"])
        assert row["held_out_mean"] == pytest.approx(sum(targets) / len(targets))
        assert row["gap"] == pytest.approx(row["source_test"] - row["held_out_mean"])
    # the same demo again reuses the finished runs (the runner's rule); --fresh trains them again
    stamp = (tmp_path / "demo" / "erm-seed0" / "done").stat().st_mtime_ns
    run_demo(config, tmp_path / "demo")
    assert (tmp_path / "demo" / "erm-seed0" / "done").stat().st_mtime_ns == stamp
    assert pd.read_csv(tmp_path / "demo" / "sweep.csv")["status"].tolist() == ["already done", "already done"]
    run_demo(config, tmp_path / "demo", algorithms=["erm"], fresh=True)
    assert (tmp_path / "demo" / "erm-seed0" / "done").stat().st_mtime_ns != stamp
