"""Tests for workbench.training.step_window: statistics and throughput between two evaluations."""

from __future__ import annotations

import pytest

from workbench.training.step_window import StepWindow


def test_means_and_timing_over_the_steps_added():
    window = StepWindow()
    assert window.means() == {} and window.timing() == {"img_s": None, "step_ms": None, "data_ms": None}
    window.add({"loss": 1.0, "grad_norm": 4.0}, images=32, seconds=0.5, data_seconds=0.1)
    window.add({"loss": 0.5, "grad_norm": 2.0}, images=32, seconds=1.5, data_seconds=0.3)
    assert window.means() == {"loss": 0.75, "grad_norm": 3.0}
    timing = window.timing()
    assert timing["img_s"] == pytest.approx(64 / 2.0)
    assert timing["step_ms"] == pytest.approx(1000.0) and timing["data_ms"] == pytest.approx(200.0)
