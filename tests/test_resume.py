"""Exact resumption: what last.pt holds, loading it back, and refusing what cannot be resumed."""

from __future__ import annotations

import pytest
import torch
from tiny_models import cnn_with_bn

from workbench.algorithms import build_algorithm
from workbench.config import ConfigError
from workbench.training.checkpoint import CheckpointError
from workbench.training.resume import load_training_state, training_state
from workbench.training.run_dir import LAST, RunDir

SGD = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0}
BEST = {"source_val": {"step": 4, "score": 0.75}}


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(4, 3, 8, 8, generator=gen, dtype=torch.float64), torch.tensor([0, 1, 0, 1])) for _ in range(2)]


def test_the_saved_state_brings_back_the_algorithm_the_generator_and_the_best_models(tmp_path):
    algorithm = build_algorithm("sam", cnn_with_bn(), SGD)
    algorithm.update(_batches())  # momentum buffers exist
    directory = RunDir(tmp_path)
    torch.manual_seed(7)
    directory.save(LAST, training_state(algorithm, None, 5, BEST))
    expected_draw = torch.rand(3)
    resumed = build_algorithm("sam", cnn_with_bn(seed=1), SGD)
    torch.manual_seed(123)
    assert load_training_state(directory, 10, ["source_val"], resumed, None, torch.device("cpu")) == (5, BEST)
    assert torch.equal(torch.rand(3), expected_draw)
    algorithm.update(_batches())
    resumed.update(_batches())  # the same next update: weights and optimizer state were restored
    for (key, a), b in zip(algorithm.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=key)


def test_nothing_to_resume_starts_at_step_0_without_best_models(tmp_path):
    algorithm = build_algorithm("erm", cnn_with_bn(), SGD)
    rules = ["source_val", "lodo"]
    assert load_training_state(RunDir(tmp_path), 10, rules, algorithm, None, torch.device("cpu")) == (
        0,
        {rule: {"step": -1, "score": None} for rule in rules},
    )


def test_a_last_pt_that_cannot_be_resumed_is_refused_naming_why(tmp_path):
    algorithm = build_algorithm("erm", cnn_with_bn(), SGD)
    directory = RunDir(tmp_path)
    directory.save(LAST, training_state(algorithm, None, 5, BEST))
    with pytest.raises(ConfigError, match=r"'train.steps' is 4, below the step 5 .* set train.steps >= 5"):
        load_training_state(directory, 4, ["source_val"], algorithm, None, torch.device("cpu"))
    state = directory.load(LAST)
    del state["best"], state["algorithm"]
    directory.save(LAST, state)
    with pytest.raises(CheckpointError, match=r"last.pt lacks algorithm, best, so the run cannot resume"):
        load_training_state(directory, 10, ["source_val"], algorithm, None, torch.device("cpu"))
