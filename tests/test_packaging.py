"""Packaging: environment.yml and pyproject.toml must name the same dependencies."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def requirements(items):
    return {Requirement(item).name.lower(): str(Requirement(item).specifier) for item in items}


def test_environment_yml_and_pyproject_agree():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda and "pip" in conda
    assert "-e ." in pip_section
    assert requirements([p for p in pip_section if p != "-e ."]) == requirements(pyproject["dependencies"])


def test_torch_pins_and_python_floor():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = requirements(pyproject["dependencies"])
    assert reqs["torch"] == "==2.14.1" and reqs["torchvision"] == "==0.29.1"
    assert pyproject["requires-python"] == ">=3.11"
