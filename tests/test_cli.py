"""``python -m workbench``: every command is registered and explains itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.__main__ import COMMANDS, build_parser, main


def test_every_command_has_help(capsys):
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: python -m workbench " + command in capsys.readouterr().out


def test_module_entry_point_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "workbench", "--help"], capture_output=True, text=True, check=True)
    for command in COMMANDS:
        assert command in result.stdout


def test_train_and_eval_through_the_cli(tiny_config, tmp_path, capsys):
    import yaml

    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(tiny_config))
    run_dir = tmp_path / "cli-run"
    assert main(["train", "--config", str(config_path), "--set", "train.steps=2", "train.eval_every=2",
                 "--run-dir", str(run_dir)]) == 0
    assert (run_dir / "done").exists()
    assert main(["eval", str(run_dir), "--out", str(tmp_path / "eval")]) == 0
    assert '"source_test"' in capsys.readouterr().out
    assert (tmp_path / "eval" / "predictions.csv").exists()
    assert build_parser().parse_args(["report", str(run_dir)]).command == "report"
