"""The trainer-overhead benchmark: the bare loop is ERM's computation, and the CLI reports what it timed."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from benchmarks.throughput import bare_training_step
from benchmarks.trainer_overhead import erm_config, main, pooled_batches
from workbench.algorithms import build_algorithm, resolve_hparams
from workbench.algorithms.base import build_optimizer
from workbench.models import create_model
from workbench.saved_config import dump_config
from workbench.training import Trainer


def test_the_bare_loop_takes_the_same_steps_as_erm(tiny_config, tmp_path):
    config = erm_config(None, [], steps=2)
    config["data"] = copy.deepcopy(tiny_config["data"])
    config["train"]["device"] = "cpu"
    batches = pooled_batches(Trainer(config, tmp_path / "probe"), 4)
    assert len(batches) == 4 and all(len(y) == tiny_config["data"]["batch_size"] for _, y in batches)
    torch.manual_seed(0)
    bare_model = create_model("test_resnet", num_classes=2).double()
    # SGD: Adam's first steps are ~lr·sign(g) and would amplify rounding in near-zero gradients.
    hparams = resolve_hparams("erm", {"precision": "fp32", "optimizer": "sgd", "lr": 0.05})
    erm = build_algorithm("erm", create_model("test_resnet", num_classes=2).double(), hparams)
    erm.model.load_state_dict(bare_model.state_dict())
    step = bare_training_step(
        bare_model, build_optimizer(list(bare_model.parameters()), hparams), "fp32", channels_last=False
    )
    for x, y in batches:
        step(x.double(), y)
        half = len(y) // 2
        erm.update([(x[:half].double(), y[:half]), (x[half:].double(), y[half:])])
    for (name, a), b in zip(bare_model.state_dict().items(), erm.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.slow
def test_cli_prints_each_run_and_a_summary_with_the_ratio(tiny_config, tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    dump_config(tiny_config, path)
    assert main(["--config", str(path), "--steps", "2", "--repeats", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["run"], r.get("repeat")) for r in lines] == [
        ("trainer", 0),
        ("bare", 0),
        ("trainer", 1),
        ("bare", 1),
        ("summary", None),
    ]
    for r in lines[:-1]:
        assert r["img_s"] > 0
        assert r["img_s"] * r["ms_per_step"] / 1000.0 == pytest.approx(tiny_config["data"]["batch_size"])
    summary = lines[-1]
    trainer = sorted(r["img_s"] for r in lines if r["run"] == "trainer")
    bare = sorted(r["img_s"] for r in lines if r["run"] == "bare")
    assert summary["trainer_img_s"] == pytest.approx(sum(trainer) / 2)
    assert summary["bare_img_s"] == pytest.approx(sum(bare) / 2)
    assert summary["ratio"] == pytest.approx(summary["trainer_img_s"] / summary["bare_img_s"])
    assert (summary["model"], summary["steps"], summary["hparams"]["precision"]) == ("test_resnet", 2, "auto")


def test_bad_arguments_name_the_value_at_fault(capsys):
    with pytest.raises(SystemExit):
        main(["--config", "configs/demo.yaml", "--steps", "0"])
    assert "--steps must be >= 1 (got 0)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--config", "configs/missing.yaml"])
    assert "configs/missing.yaml" in capsys.readouterr().err
