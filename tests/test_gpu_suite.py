"""The GPU suite's CPU-checkable parts: its plan, its trainer setting, and its refusal without CUDA."""

from __future__ import annotations

import pytest
import torch

from benchmarks.gpu_suite import BACKBONES, BATCHES, PRECISIONS, TRAINER_SETTING, main, plan
from benchmarks.trainer_overhead import erm_config


def test_the_plan_answers_the_main_question_first_and_covers_every_cell():
    cells = plan(None)
    first = [(b, p, n, label) for b, p, n, label, _, _ in cells[:6]]
    assert first == [("efficientnet_b4", p, 32, v) for v in ("erm", "roga", "roga-concurrent") for p in PRECISIONS]
    covered = {(b, n, label, p) for b, p, n, label, _, _ in cells}
    for backbone in BACKBONES:
        for batch in BATCHES:
            for label in ("erm", "roga", "roga-concurrent", "sam", "sagm", "bare", "erm-eager"):
                for precision in PRECISIONS:
                    assert (backbone, batch, label, precision) in covered
    assert len(covered) == len(cells)
    assert {b for b, *_ in plan({"legacy_xception:128"})} == {"legacy_xception"}


def test_the_trainer_setting_is_the_paper_setting():
    config = erm_config("configs/demo.yaml", TRAINER_SETTING, steps=30)
    assert config["algorithm"]["name"] == "erm"
    assert (config["model"]["name"], config["data"]["image_size"], config["data"]["batch_size"]) == \
        ("efficientnet_b4", 256, 32)
    assert config["algorithm"]["hparams"]["precision"] == "bf16"
    assert config["algorithm"]["hparams"]["channels_last"] is True
    assert (config["train"]["steps"], config["train"]["eval_every"], config["train"]["cpu_threads"]) == (60, 30, None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_refuses_to_run_without_cuda(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 2
    assert "needs a CUDA device" in capsys.readouterr().err
