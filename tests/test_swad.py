"""SWAD's loss-valley averaging (workbench.training.swad) against hand-worked windows, and SWAD in the trainer."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from torch.optim.swa_utils import update_bn

from workbench.__main__ import main
from workbench.training import Trainer, load_checkpoint
from workbench.training.checkpoint import model_state
from workbench.training.selection import load_records, select
from workbench.training.swad import LossValley

# s0 … s12: convergence at s3 (lowest of s3, s4, s5), threshold 1.5 × mean(4, 4.5, 4.2) = 6.35, the window
# reaches back over s2 and s1 (s0 is above it) and ends after s6: s7's six-segment window lies above it.
LOSSES = [10, 6, 5, 4, 4.5, 4.2, 5.0, 9, 9.5, 10, 11, 12, 13]


def run_valley(losses, iterates_per_segment=2, **kwargs) -> LossValley:
    """Segment i holds the iterates of steps 2i+1 and 2i+2, each a one-element 'weight' equal to its step."""
    valley = LossValley(**{"n_converge": 3, "n_tolerance": 6, "tolerance_ratio": 0.5, **kwargs})
    step = 0
    for loss in losses:
        for _ in range(iterates_per_segment):
            step += 1
            valley.add([torch.tensor([float(step)])], step)
        valley.close(loss)
    return valley


def test_the_valley_starts_at_convergence_reaches_back_and_ends_where_the_loss_stays_high():
    weights, summary = run_valley(LOSSES).final()
    assert summary == {
        "converged": True,
        "dead_valley": True,
        "threshold": pytest.approx(6.35),
        "start_step": 3,
        "end_step": 14,
        "iterates": 12,
    }
    assert weights[0].item() == pytest.approx(sum(range(3, 15)) / 12)  # s1 … s6: steps 3 … 14, each once


def test_the_end_of_training_decides_the_last_segments_on_the_windows_that_exist():
    weights, summary = run_valley(LOSSES[:10]).final()  # s4 kept; s5 and s6 below, s7 … s9 above the threshold
    assert (summary["start_step"], summary["end_step"], summary["dead_valley"]) == (3, 14, True)
    weights, summary = run_valley(LOSSES[:7]).final()  # s4 … s6 all still below
    assert (summary["start_step"], summary["end_step"], summary["dead_valley"]) == (3, 14, False)
    assert weights[0].item() == pytest.approx(sum(range(3, 15)) / 12)


def test_before_convergence_the_last_segment_is_used():
    weights, summary = run_valley([5, 4, 3, 2]).final()  # still falling: never converged
    assert summary["converged"] is False and (summary["start_step"], summary["end_step"]) == (7, 8)
    assert weights[0].item() == pytest.approx(7.5)
    assert LossValley().final() is None


def test_segments_of_unequal_length_are_averaged_per_iterate():
    valley = LossValley(n_converge=1, n_tolerance=1, tolerance_ratio=0.0)
    for step, loss_after in ((1, None), (2, 1.0), (3, 1.0)):
        valley.add([torch.tensor([float(step)])], step)
        if loss_after is not None:
            valley.close(loss_after)
    assert valley.final()[0][0].item() == pytest.approx(2.0)  # (1 + 2 + 3) / 3, not ((1.5) + 3) / 2


def test_state_dict_resumes_the_rule_exactly():
    full = run_valley(LOSSES)
    half = run_valley(LOSSES[:5])
    resumed = LossValley(n_converge=3, n_tolerance=6, tolerance_ratio=0.5)
    resumed.load_state_dict(copy.deepcopy(half.state_dict()))
    step = 10
    for loss in LOSSES[5:]:
        for _ in range(2):
            step += 1
            resumed.add([torch.tensor([float(step)])], step)
        resumed.close(loss)
    (a, summary_a), (b, summary_b) = full.final(), resumed.final()
    assert summary_a == summary_b and torch.equal(a[0], b[0])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="n_converge >= 1"):
        LossValley(n_converge=0)


@pytest.fixture
def swad_config(tiny_config):
    config = copy.deepcopy(tiny_config)
    config["algorithm"] = {"name": "erm", "hparams": {"lr": 1e-3}}
    config["train"].update(
        steps=8,
        eval_every=2,
        swad={"enabled": True, "n_converge": 1, "n_tolerance": 2, "tolerance_ratio": 10.0, "bn_update_steps": 3},
    )
    return config


def test_the_trainer_keeps_evaluates_and_predicts_with_the_swad_model(swad_config, tmp_path):
    run = Trainer(swad_config, tmp_path / "run").fit()
    records = load_records(run)
    swad = select(records, "swad")
    assert swad["kind"] == "swad" and swad["step"] == 8 and swad["swad"]["converged"]
    assert "kind" not in select(records, "last") and "kind" not in select(records, "source_val")
    assert {r["step"] for r in records if "eval" in r} == {2, 4, 6, 8}
    kept = load_checkpoint(run / "checkpoints" / "swad.pt")
    start, end = swad["swad"]["start_step"], swad["swad"]["end_step"]
    assert kept["swad"] == swad["swad"] and 1 <= start <= end <= 8
    predictions = pd.read_csv(run / "predictions.csv")
    assert set(predictions["model"]) == {"source_val", "swad"}
    assert set(predictions.loc[predictions["model"] == "swad", "step"]) == {8}
    # BatchNorm statistics recomputed for the averaged weights from the steps after the last one
    trainer = Trainer(swad_config, tmp_path / "check")
    trainer.model.load_state_dict(kept["model"])
    with torch.no_grad():
        for module in trainer.model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
    update_bn((torch.cat([x for x, _ in trainer.data.domain_batches(8 + i)]) for i in (1, 2, 3)), trainer.model)
    for key, value in trainer.model.state_dict().items():
        if "running" in key:
            torch.testing.assert_close(value, kept["model"][key], msg=key)
    assert not torch.equal(
        kept["model"]["fc.weight"], model_state(load_checkpoint(run / "checkpoints" / "last.pt"))["fc.weight"]
    )


def test_swad_resumes_to_the_same_averaged_model(swad_config, tmp_path):
    full = Trainer(swad_config, tmp_path / "full").fit()
    Trainer(swad_config, tmp_path / "split").fit(stop_at_step=4)
    split = Trainer(swad_config, tmp_path / "split").fit()
    a = load_checkpoint(full / "checkpoints" / "swad.pt")
    b = load_checkpoint(split / "checkpoints" / "swad.pt")
    assert a["swad"] == b["swad"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert sum(r.get("kind") == "swad" for r in load_records(split)) == 1


def test_eval_and_report_take_the_swad_model(swad_config, tmp_path, capsys):
    run = Trainer(swad_config, tmp_path / "run").fit()
    assert main(["eval", str(run), "--selection", "swad"]) == 0
    assert '"step": 8' in capsys.readouterr().out
    assert main(["report", str(run), "--rule", "swad", "--out", str(tmp_path / "report")]) == 0
    without = copy.deepcopy(swad_config)
    without["train"]["swad"]["enabled"] = False
    plain = Trainer(without, tmp_path / "plain").fit()
    assert main(["eval", str(plain), "--selection", "swad"]) == 1
    assert "train.swad.enabled=true" in capsys.readouterr().err
