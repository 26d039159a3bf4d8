"""``python -m workbench``: every command is registered and explains itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.__main__ import COMMANDS, build_parser, main
from workbench.cli import RESUME_HINT, CommandError, add_command, run_command
from workbench.training.selection import load_records, select


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
    assert (
        main(
            [
                "train",
                "--config",
                str(config_path),
                "--set",
                "train.steps=2",
                "train.eval_every=2",
                "--run-dir",
                str(run_dir),
            ]
        )
        == 0
    )
    assert (run_dir / "done").exists()
    assert main(["eval", str(run_dir), "--out", str(tmp_path / "eval")]) == 0
    assert '"source_test"' in capsys.readouterr().out
    assert (tmp_path / "eval" / "predictions.csv").exists()
    assert build_parser().parse_args(["report", str(run_dir)]).command == "report"


def test_eval_evaluates_the_model_a_kept_rule_selected(tiny_config, tmp_path, capsys):
    config_path = _config_file(tiny_config, tmp_path)
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--config",
                config_path,
                "--run-dir",
                str(run_dir),
                "--set",
                "train.checkpoint_rules=[source_val, oracle]",
            ]
        )
        == 0
    )
    capsys.readouterr()
    oracle_step = select(load_records(run_dir), "oracle")["step"]
    for argv, step in (
        (["--selection", "oracle"], oracle_step),
        (["--selection", "last"], 6),
        (["--checkpoint", "best_oracle.pt"], oracle_step),
    ):
        assert main(["eval", str(run_dir), *argv]) == 0
        assert json.loads(capsys.readouterr().out)["step"] == step
    assert main(["eval", str(run_dir), "--selection", "lodo"]) == 1
    assert "kept the best models of ['source_val', 'oracle'] only, not 'lodo'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", str(run_dir), "--selection", "oracle", "--checkpoint", "last.pt"])


@pytest.mark.parametrize("command", [["train"], ["eval", "some-run"], ["demo"]])
def test_repeated_set_flags_all_count(command):
    args = build_parser().parse_args([*command, "--set", "train.steps=5", "a.b=1", "--set", "train.seed=1"])
    assert args.overrides == ["train.steps=5", "a.b=1", "train.seed=1"]
    assert build_parser().parse_args(command).overrides == []


def _config_file(config, tmp_path):
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_train_reports_bad_config_values_in_one_line_and_writes_nothing(tiny_config, tmp_path, capsys):
    run_dir = tmp_path / "cli-run"
    config = _config_file(tiny_config, tmp_path)
    for value in ("abc", "0"):
        assert main(["train", "--config", config, "--set", f"train.steps={value}", "--run-dir", str(run_dir)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: config key 'train.steps'") and "Traceback" not in err
    assert not run_dir.exists()


def test_train_refuses_a_finished_run_before_loading_anything(tiny_config, tmp_path, capsys, monkeypatch):

    config = _config_file(tiny_config, tmp_path)
    run_dir = tmp_path / "cli-run"
    argv = [
        "train",
        "--config",
        config,
        "--set",
        "train.steps=2",
        "--set",
        "train.eval_every=2",
        "--run-dir",
        str(run_dir),
    ]
    assert main(argv) == 0 and (run_dir / "done").exists()
    assert [json.loads(line)["step"] for line in (run_dir / "records.jsonl").read_text().splitlines()] == [2]
    monkeypatch.setattr(
        "workbench.training.trainer.TrainingData", lambda *args: pytest.fail("data loaded for a finished run")
    )
    capsys.readouterr()
    assert main(argv) == 1
    assert capsys.readouterr().err == f"error: {run_dir} is a finished run; choose another run name or directory\n"


def test_eval_reports_user_errors_in_one_line(tiny_config, tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing")]) == 1
    assert "is '" + str(tmp_path / "missing") + "' a run directory?" in capsys.readouterr().err
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(Path(_config_file(tiny_config, tmp_path)).read_text())
    assert main(["eval", str(run_dir), "--set", "train.seed=1.5"]) == 1
    assert capsys.readouterr().err == "error: config key 'train.seed' must be an integer >= 0, got 1.5\n"
    assert main(["eval", str(run_dir), "--set", "data.source_domains=[D-A, D-X]"]) == 1
    assert "'D-X'" in capsys.readouterr().err


def test_an_interrupted_train_says_in_one_line_how_to_resume(tiny_config, tmp_path, capsys, monkeypatch):
    import workbench.cli.train as train_cli

    def interrupted(config, run_dir, callbacks):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_cli, "train", interrupted)
    assert main(["train", "--config", _config_file(tiny_config, tmp_path)]) == 130
    assert capsys.readouterr().err == f"interrupted: {RESUME_HINT}\n"


def test_algorithms_lists_the_registry_and_describes_each_hyper_parameter(capsys):
    from workbench.algorithms import ALGORITHMS, hparam_spec

    assert main(["algorithms"]) == 0
    listing = capsys.readouterr().out
    for name, cls in ALGORITHMS.items():
        assert f"| {name} " in listing and cls.family in listing
    assert main(["algorithms", "SAGM"]) == 0
    described = capsys.readouterr().out
    assert described.startswith("sagm (flatness)") and "Wang" in described
    for key in hparam_spec("sagm"):
        assert f"| {key} " in described
    assert main(["algorithms", "nope"]) == 1
    assert "unknown algorithm 'nope'" in capsys.readouterr().err


class OwnError(Exception):
    pass


def _parsed(command, errors=(OwnError,), interrupted=None):
    """``args`` of a one-command parser whose command is ``command``."""
    import argparse

    parser = argparse.ArgumentParser(prog="test")
    add_command(parser.add_subparsers(), "go", command, errors=errors, interrupted=interrupted)
    return parser.parse_args(["go"])


def _raising(error):
    def command(args):
        raise error

    return command


def test_a_commands_input_errors_are_one_line_and_exit_status_1(capsys):
    assert run_command(_parsed(_raising(OwnError("bad value 7 in x.csv row 3")))) == 1
    assert capsys.readouterr().err == "error: bad value 7 in x.csv row 3\n"
    assert run_command(_parsed(_raising(CommandError("--n 0 must be at least 1")), errors=())) == 1
    assert capsys.readouterr().err == "error: --n 0 must be at least 1\n"
    assert run_command(_parsed(_raising(KeyError("unknown algorithm 'nope'")), errors=(KeyError,))) == 1
    assert capsys.readouterr().err == "error: unknown algorithm 'nope'\n"  # without KeyError's extra quotes
    assert run_command(_parsed(lambda args: None)) == 0
    assert run_command(_parsed(lambda args: 2)) == 2


def test_other_errors_keep_their_traceback_and_ctrl_c_gives_the_hint(capsys):
    with pytest.raises(ZeroDivisionError):
        run_command(_parsed(_raising(ZeroDivisionError("a bug"))))
    with pytest.raises(KeyboardInterrupt):
        run_command(_parsed(_raising(KeyboardInterrupt())))
    hint = _parsed(_raising(KeyboardInterrupt()), interrupted=lambda args: f"rerun {args.func.__name__}")
    assert run_command(hint) == 130
    assert capsys.readouterr().err == "interrupted: rerun command\n"


def test_every_command_says_which_errors_are_its_users(capsys):
    parser = build_parser()
    for command in COMMANDS:
        (action,) = [a for a in parser._subparsers._group_actions]
        sub = action.choices[command]
        if sub._subparsers is None:
            assert sub.get_default("func") is not None and sub.get_default("errors") is not None, command
        else:
            for name, nested in sub._subparsers._group_actions[0].choices.items():
                assert nested.get_default("errors") is not None, (command, name)


def test_eval_refuses_resampling_flags_without_perturb_in_one_line(capsys, tmp_path):
    assert main(["eval", str(tmp_path), "--n-boot", "5"]) == 1
    assert capsys.readouterr().err == "error: --levels and --n-boot apply to --perturb, which is not given\n"
    assert main(["eval", str(tmp_path), "--perturb", "all", "--n-boot", "0"]) == 1
    assert capsys.readouterr().err == "error: --n-boot must be at least 1, got 0\n"
