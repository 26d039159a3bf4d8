"""Sweeps: the planned grid, the run directories, skipping and resuming, failures, and tuning afterwards."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from workbench.__main__ import main
from workbench.config import ConfigError
from workbench.saved_config import dump_config
from workbench.training.report import report_tables
from workbench.training.run_dir import RunDir, RunMismatchError
from workbench.training.sweep import GridAxis, ensure_runs, parse_axis, plan_sweep, planned_status, run_sweep


@pytest.fixture
def base(tiny_config, tmp_path):
    """The tests' tiny config as a file: planning reads its manifest, not the default benchmark."""
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(tiny_config))
    return path


def test_axes_parse_keys_values_and_algorithm_scopes():
    assert parse_axis("algorithm.hparams.rho=[0.02, 0.05]") == GridAxis("algorithm.hparams.rho", (0.02, 0.05))
    assert parse_axis("RoGA,sagm:algorithm.hparams.alpha=[0, 1e-3]") == GridAxis(
        "algorithm.hparams.alpha", (0, 1e-3), ("roga", "sagm")
    )
    assert parse_axis("model.kwargs=[{drop_rate: 0.1}, {}]").values == ({"drop_rate": 0.1}, {})
    for text, message in (
        ("rho", "must look like"),
        ("a.b=0.1", "non-empty YAML list"),
        ("a.b=[]", "non-empty"),
        ("a.b=[1, 1]", "listed twice"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_axis(text)


def test_the_plan_multiplies_only_the_axes_of_each_algorithm(base):
    runs = plan_sweep(
        base,
        ["train.steps=4"],
        ["erm", "roga"],
        [0, 1],
        [parse_axis("roga:algorithm.hparams.rho=[0.02, 0.05]"), parse_axis("algorithm.hparams.lr=[1e-3]")],
    )
    assert [run.name for run in runs] == [
        "erm-lr=0.001-seed0",
        "erm-lr=0.001-seed1",
        "roga-rho=0.02-lr=0.001-seed0",
        "roga-rho=0.02-lr=0.001-seed1",
        "roga-rho=0.05-lr=0.001-seed0",
        "roga-rho=0.05-lr=0.001-seed1",
    ]
    last = runs[-1].config
    assert (last["algorithm"]["name"], last["train"]["seed"], last["train"]["steps"]) == ("roga", 1, 4)
    assert last["algorithm"]["hparams"] == {"lr": 1e-3, "rho": 0.05}
    assert runs[0].grid == {"algorithm.hparams.lr": 1e-3}
    two = plan_sweep(
        base,
        [],
        ["sam"],
        [0],
        [parse_axis("algorithm.hparams.rho=[0.1]"), parse_axis("model.kwargs=[{drop_rate: 0.1}]")],
    )
    assert two[0].name == "sam-rho=0.1-kwargs=drop_rate_0.1-seed0"


def test_a_bad_value_anywhere_in_the_grid_fails_before_anything_trains(base, tmp_path):
    with pytest.raises(ConfigError, match=r"sweep run roga, seed 0, grid \{'algorithm.hparams.rho': -1\}.*rho=-1"):
        plan_sweep(base, [], ["erm", "roga"], [0], [parse_axis("roga:algorithm.hparams.rho=[0.05, -1]")])
    with pytest.raises(ConfigError, match=r"algorithm 'erm' has no hyper-parameter 'rho'.*'sam,roga:algorithm"):
        plan_sweep(base, [], ["erm", "sam", "roga"], [0], [parse_axis("algorithm.hparams.rho=[0.05]")])
    with pytest.raises(ConfigError, match=r"limited to \['sagm'\]"):
        plan_sweep(base, [], ["erm"], [0], [parse_axis("sagm:algorithm.hparams.rho=[0.05]")])
    with pytest.raises(ConfigError, match="listed once"):
        plan_sweep(base, [], ["erm"], [0, 0])
    with pytest.raises(ConfigError, match=r"share run directories \['erm-synthetic=a_x_y-seed0'\]"):
        plan_sweep(base, [], ["erm"], [0], [parse_axis("data.synthetic=[{a: 'x y'}, {a: 'x/y'}]")])
    for key in ("algorithm.name", "train.seed", "run.dir", "train.device"):
        with pytest.raises(ConfigError, match=rf"grid keys \['{key}'\] cannot be swept"):
            plan_sweep(base, [], ["erm"], [0], [parse_axis(f"{key}=[x]")])
    # what training checks before its first step, against the manifest
    for overrides, grid, message in (
        ([], "data.batch_size=[12, 8]", r"grid \{'data.batch_size': 8\}: data.batch_size=8 must be divisible by the 3"),
        ([], "data.lodo_domain=[D-A]", "lodo_domain 'D-A' must not also be a training source domain"),
        ([], "data.lodo_domain=[D-X]", r"domain\(s\) \['D-X'\] not in the manifest"),
        (["train.checkpoint_rules=[source_val, lodo]"], "algorithm.hparams.lr=[0.1]", "'lodo' needs a held-out"),
    ):
        with pytest.raises(ConfigError, match=message):
            plan_sweep(base, overrides, ["erm"], [0], [parse_axis(grid)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.yaml", "data"]  # nothing trained or written


def test_runs_are_trained_skipped_when_done_and_failures_do_not_stop_the_sweep(base, tmp_path):
    runs = plan_sweep(base, [], ["erm", "sam"], [0, 1])
    trained = []

    def fake_train(config, run_dir):
        if config["algorithm"]["name"] == "sam" and config["train"]["seed"] == 0:
            raise RuntimeError("loss became nan")
        run_dir.mkdir(parents=True)
        dump_config(config, run_dir / "config.yaml")
        (run_dir / "done").write_text("")
        trained.append(run_dir.name)
        return run_dir

    table = run_sweep(runs, tmp_path / "sweep", fake_train, errors=(RuntimeError,))
    assert trained == ["erm-seed0", "erm-seed1", "sam-seed1"]
    assert table["status"].tolist() == ["trained", "trained", "failed: loss became nan", "trained"]
    assert pd.read_csv(tmp_path / "sweep" / "sweep.csv")["status"].tolist() == table["status"].tolist()
    again = run_sweep(runs, tmp_path / "sweep", fake_train, errors=(RuntimeError,))
    assert again["status"].tolist() == ["already done", "already done", "failed: loss became nan", "already done"]
    with pytest.raises(KeyError):  # an error outside ``errors`` is a bug: it stops the sweep
        run_sweep(runs[2:3], tmp_path / "other", lambda config, run_dir: {}["missing"], errors=(RuntimeError,))


def test_a_finished_run_of_another_config_is_never_reused_and_the_table_keeps_earlier_rows(base, tmp_path):
    def fake_train(config, run_dir):
        run_dir.mkdir(parents=True)
        dump_config(config, run_dir / "config.yaml")
        (run_dir / "done").write_text("")

    out = tmp_path / "sweep"
    run_sweep(plan_sweep(base, [], ["erm", "sam"], [0]), out, fake_train)
    longer = plan_sweep(base, ["train.steps=600", "train.device=cpu"], ["sam"], [0])  # device: where, not what
    status = run_sweep(longer, out, fake_train)["status"].item()
    assert status.startswith(
        f"failed: {out / 'sam-seed0'}: cannot reuse this finished run: its config differs from "
        "the requested one in train.steps: saved "
    )
    table = pd.read_csv(out / "sweep.csv")
    assert table["name"].tolist() == ["erm-seed0", "sam-seed0"] and table["status"].iloc[0] == "trained"
    assert run_sweep(plan_sweep(base, ["train.device=cpu"], ["sam"], [0]), out, fake_train)["status"].item() == (
        "already done"
    )


def test_cli_sweep_then_report_tune_on_the_tiny_dataset(base, tmp_path, capsys):
    config_file = base
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        "--config",
        str(config_file),
        "--set",
        "train.steps=2",
        "train.eval_every=2",
        "--algorithms",
        "erm",
        "roga",
        "--seeds",
        "0",
        "1",
        "--grid",
        "roga:algorithm.hparams.rho=[0.02, 0.5]",
        "--out",
        str(out),
    ]
    assert main([*argv, "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[2] == "roga-rho=0.02-seed0\tto train"
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().err
    status = pd.read_csv(out / "sweep.csv")
    assert status["status"].tolist() == ["trained"] * 6
    assert json.loads(status["grid"].iloc[-1]) == {"algorithm.hparams.rho": 0.5}
    # the documented command: the sweep folder stands for its runs
    assert (
        main(
            [
                "report",
                str(out),
                "--tune",
                "--groups",
                "source_test",
                "--n-boot",
                "20",
                "--out",
                str(tmp_path / "report"),
            ]
        )
        == 0
    )
    assert "Hyper-parameters of roga/test_resnet [source_val], chosen among 2 variant(s)" in capsys.readouterr().out
    runs = pd.read_csv(tmp_path / "report" / "runs.csv")
    assert len(runs) == 6 and runs["chosen"].sum() == 4
    roga = runs[(runs["algorithm"] == "roga")]
    best = roga.groupby("variant")["selection_score"].mean()
    assert roga.loc[roga["chosen"], "variant"].iloc[0] == best.idxmax()
    assert main(argv) == 0
    assert capsys.readouterr().err.count(": already done") == 6
    # a failed run is left out of the report, named in a warning
    status.loc[5, "status"] = "failed: loss became nan at step 2"
    status.to_csv(out / "sweep.csv", index=False)
    with pytest.warns(UserWarning, match=r"left out 1 sweep run\(s\) that did not finish: \['roga-rho=0.5-seed1"):
        runs, _ = report_tables([out], groups=["source_test"], n_boot=20, tune=True)
    assert len(runs) == 5


def test_an_interrupted_sweep_still_lists_every_run_and_dry_run_says_what_would_happen(base, tmp_path):
    out = tmp_path / "sweep"
    first = plan_sweep(base, [], ["erm"], [0])

    def fake_train(config, run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_config(config, run_dir / "config.yaml")
        if config["algorithm"]["name"] == "sam":
            (run_dir / "checkpoints").mkdir()
            (run_dir / "checkpoints" / "last.pt").write_bytes(b"")
            raise KeyboardInterrupt
        (run_dir / "done").write_text("")

    run_sweep(first, out, fake_train)
    runs = plan_sweep(base, [], ["sam", "sagm"], [0])
    with pytest.raises(KeyboardInterrupt):
        run_sweep(runs, out, fake_train)
    table = pd.read_csv(out / "sweep.csv")
    assert table["name"].tolist() == ["erm-seed0", "sam-seed0", "sagm-seed0"]
    assert table["status"].tolist() == ["trained", "pending", "pending"]
    assert [planned_status(run, out / run.name) for run in first + runs] == ["already done", "to resume", "to train"]
    other = plan_sweep(base, ["algorithm.hparams.lr=0.5"], ["sam"], [0])[0]
    assert planned_status(other, out / "sam-seed0").startswith(
        f"failed: {out / 'sam-seed0'}: cannot resume this run: its config differs from the requested one in "
        "algorithm.hparams.lr: saved "
    )
    longer = plan_sweep(base, ["train.steps=12"], ["sam"], [0])[0]
    assert planned_status(longer, out / "sam-seed0") == "to resume"  # a run may be extended


def test_the_cli_says_in_one_line_how_to_continue_an_interrupted_sweep(base, tmp_path, capsys, monkeypatch):
    import workbench.analysis.callbacks as callbacks

    def interrupted(config, run_dir, callbacks):
        raise KeyboardInterrupt

    monkeypatch.setattr(callbacks, "train", interrupted)
    out = tmp_path / "sweep"
    assert main(["sweep", "--config", str(base), "--algorithms", "erm", "--out", str(out)]) == 130
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"interrupted: {out / 'sweep.csv'} lists the runs")


def test_a_run_whose_weights_diverge_on_an_evaluation_step_is_recorded_and_the_sweep_goes_on(
    base, tmp_path, monkeypatch
):
    """The real trainer: sam's update at step 3 (an evaluation step) leaves NaN weights."""
    import math

    import torch

    from workbench.cli.sweep import RUN_FAILURES
    from workbench.training.trainer import Trainer, train

    original = Trainer.__init__

    def setup(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.config["algorithm"]["name"] == "sam":
            launch, calls = self.algorithm.launch, iter(range(1, 100))

            def poisoned(batches):
                stats = launch(batches)
                if next(calls) == 3:
                    with torch.no_grad():
                        next(self.model.parameters()).fill_(math.nan)
                return stats

            self.algorithm.launch = poisoned

    monkeypatch.setattr(Trainer, "__init__", setup)
    runs = plan_sweep(base, [], ["sam", "erm"], [0])
    table = run_sweep(runs, tmp_path / "sweep", train, errors=RUN_FAILURES)
    assert table["status"].tolist()[1] == "trained"
    assert table["status"].tolist()[0].startswith("failed: the model's weights became non-finite")


class _StoppedLauncher:
    """Starts every run elsewhere, then the sweep is interrupted before any finishes."""

    def launch(self, jobs):
        for job in jobs:
            yield job, None
        raise KeyboardInterrupt

    def where(self, job):
        return f"elsewhere {job.name}"


def test_runs_started_elsewhere_are_running_then_pending_when_the_sweep_stops(base, tmp_path):
    out = tmp_path / "sweep"
    runs = plan_sweep(base, [], ["erm", "sam"], [0])
    seen = []
    launcher = _StoppedLauncher()
    original = launcher.launch

    def watching(jobs):
        for item in original(jobs):
            yield item
            seen.append(pd.read_csv(out / "sweep.csv", keep_default_na=False)[["status", "job"]].values.tolist())

    launcher.launch = watching
    with pytest.raises(KeyboardInterrupt):
        run_sweep(runs, out, lambda config, run_dir: None, launcher=launcher)
    assert seen[-1] == [["running", "elsewhere erm-seed0"], ["running", "elsewhere sam-seed0"]]
    assert pd.read_csv(out / "sweep.csv")["status"].tolist() == ["pending", "pending"]  # their processes stopped


def test_runs_a_killed_sweep_left_running_are_named_in_a_warning_and_trained_again(base, tmp_path):
    out = tmp_path / "sweep"
    runs = plan_sweep(base, [], ["erm"], [0])
    run_sweep(runs, out, lambda config, run_dir: None)
    table = pd.read_csv(out / "sweep.csv", keep_default_na=False)
    assert table[["status", "job"]].values.tolist() == [["trained", "sweep process"]]
    table.loc[0, ["status", "job"]] = ["running", "slurm job 77_0"]  # as a coordinator killed outright leaves it
    table.to_csv(out / "sweep.csv", index=False)
    with pytest.warns(
        UserWarning, match=r"killed before it could stop them: \['erm-seed0 \(slurm job 77_0\)'\].*scancel"
    ):
        assert run_sweep(runs, out, lambda config, run_dir: None)["status"].tolist() == ["trained"]


def test_a_loaded_config_plans_the_same_runs_as_its_file(base, tiny_config):
    from_file = plan_sweep(base, ["train.steps=4"], ["erm", "roga"], [0, 2])
    from_dict = plan_sweep(tiny_config, ["train.steps=4"], ["erm", "roga"], [0, 2])
    assert [run.name for run in from_dict] == [run.name for run in from_file]
    assert [run.config for run in from_dict] == [run.config for run in from_file]


def test_the_runner_reuses_refuses_before_training_and_trains(base, tmp_path, monkeypatch):
    """ensure_runs (demo, notebooks): same config reused, another config refused before anything trains."""
    import workbench.analysis.callbacks as callbacks

    trained = []

    def fake_train(config, run_dir, callbacks=()):
        trained.append(run_dir.name)
        RunDir(run_dir).write_config(config)
        RunDir(run_dir).mark_done(config["train"]["steps"])
        return run_dir

    monkeypatch.setattr(callbacks, "train", fake_train)
    out = tmp_path / "runs"
    runs = plan_sweep(base, [], ["erm", "sam"], [0])
    assert ensure_runs(runs, out, callbacks.train_with_callbacks) == [out / "erm-seed0", out / "sam-seed0"]
    assert trained == ["erm-seed0", "sam-seed0"]
    ensure_runs(runs, out, callbacks.train_with_callbacks)  # finished with the same config: reused
    assert trained == ["erm-seed0", "sam-seed0"]
    longer = plan_sweep(base, ["train.steps=9"], ["erm", "sam", "roga"], [0])
    with pytest.raises(RunMismatchError, match=r"erm-seed0: cannot reuse .* train.steps: saved \d+, requested 9"):
        ensure_runs(longer, out, callbacks.train_with_callbacks)
    assert trained == ["erm-seed0", "sam-seed0"]  # roga was not trained before the refusal
