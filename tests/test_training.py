"""The trainer: run directory contents, bit-for-bit resume, non-finite losses, checkpoints."""

from __future__ import annotations

import copy
import json
import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import yaml
from method_cards import CARDS

import workbench.training.run_dir as run_dir_module
import workbench.training.trainer as trainer_module
from workbench.algorithms import ALGORITHMS
from workbench.algorithms.execution import ExecutionPolicy
from workbench.config import ConfigError
from workbench.training import NonFiniteLossError, Trainer, load_checkpoint
from workbench.training.checkpoint import model_state
from workbench.training.distributed import DistContext
from workbench.training.pipeline import TrainingData, synthetic_manifest
from workbench.training.records import RecordsError, RecordWriter
from workbench.training.run_dir import BEST, LAST, best_checkpoint
from workbench.training.selection import load_records, select


def assert_same_state(a, b, where="state"):
    """Nested checkpoint contents are equal: tensors bit for bit, everything else by value."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def read_records(run_dir):
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]


def test_run_directory_has_everything_the_records_doc_promises(tiny_config, tmp_path):
    run_dir = Trainer(tiny_config, tmp_path / "run").fit()
    for name in (
        "config.yaml",
        "records.jsonl",
        "predictions.csv",
        "done",
        "checkpoints/last.pt",
        "checkpoints/best_source_val.pt",
    ):
        assert (run_dir / name).exists(), name
    records = read_records(run_dir)
    assert [r["step"] for r in records] == [3, 6]
    groups = set(records[0]["eval"])
    assert {"source_val", "source_test", "target/D-T", "source_val/D-A", "source_test/D-C"} <= groups
    assert records[0]["eval"]["target/D-T"]["n_fake"] == 6 and records[0]["eval"]["target/D-T"]["n_real"] == 6
    assert {"loss", "loss_perturbed", "img_s", "step_ms", "data_ms", "lr"} <= set(records[0]["train"])
    for record in records:
        timing = record["train"]
        images_per_step = tiny_config["data"]["batch_size"]
        assert timing["img_s"] * timing["step_ms"] / 1000.0 == pytest.approx(images_per_step)
        assert 0.0 < timing["data_ms"] < timing["step_ms"]
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["step"] == 6 and set(state) >= {"algorithm", "rng_cpu", "best"}
    assert set(model_state(state)) == set(Trainer(tiny_config, tmp_path / "other").model.state_dict())


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_resume_reproduces_an_uninterrupted_run_bit_for_bit(algorithm, tiny_config, tmp_path):
    """Every algorithm, with whatever state it keeps, continues from last.pt exactly as if never stopped."""
    config = copy.deepcopy(tiny_config)
    config["algorithm"] = {"name": algorithm, "hparams": {"lr": 1e-3, **CARDS[algorithm].hparams}}
    config["model"]["kwargs"] = {"drop_rate": 0.3}  # dropout makes the global RNG state matter
    full = Trainer(config, tmp_path / "full").fit()
    Trainer(config, tmp_path / "split").fit(stop_at_step=3)
    # An interrupted stretch after the checkpoint leaves a stale record that resume must drop.
    RecordWriter(tmp_path / "split").append({"kind": "alignment", "step": 4, "alignment": {}})
    split = Trainer(config, tmp_path / "split").fit()
    assert_same_state(
        load_checkpoint(full / "checkpoints" / "last.pt")["algorithm"],
        load_checkpoint(split / "checkpoints" / "last.pt")["algorithm"],
    )
    strip = lambda recs: [{k: v for k, v in r.items() if k not in ("wall_s", "train", "callbacks_s")} for r in recs]  # noqa: E731
    assert strip(read_records(full)) == strip(read_records(split))
    assert read_records(full)[-1]["train"]["loss"] == read_records(split)[-1]["train"]["loss"]


def test_resume_refuses_a_changed_config(tiny_config, tmp_path):
    Trainer(tiny_config, tmp_path / "run").fit(stop_at_step=3)
    changed = copy.deepcopy(tiny_config)
    changed["algorithm"]["hparams"]["rho"] = 0.5
    with pytest.raises(ValueError, match="algorithm.hparams.rho"):
        Trainer(changed, tmp_path / "run").fit()


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tiny_config, tmp_path):
    Trainer(tiny_config, tmp_path / "run").fit(stop_at_step=3)
    good = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    trainer = Trainer(tiny_config, tmp_path / "run")
    original = trainer.algorithm.launch
    trainer.algorithm.launch = lambda batches: {**original(batches), "loss": torch.tensor(math.nan)}
    with pytest.raises(NonFiniteLossError, match="step 4.*last good checkpoint"):
        trainer.fit()
    kept = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert kept["step"] == good["step"] == 3
    for key, value in model_state(good).items():
        assert torch.equal(model_state(kept)[key], value)


def test_the_next_batch_is_prepared_before_the_update_is_waited_for(tiny_config, tmp_path, monkeypatch):
    trainer = Trainer(tiny_config, tmp_path / "run")
    events = []
    fetch, launch, read = trainer.data.domain_batches, trainer.algorithm.launch, trainer_module.as_floats

    def fetched(step):
        events.append(("fetch", step))
        return fetch(step)

    def launched(batches):
        events.append(("launch",))
        return launch(batches)

    def read_stats(stats):
        events.append(("read",))
        return read(stats)

    monkeypatch.setattr(trainer.data, "domain_batches", fetched)
    monkeypatch.setattr(trainer.algorithm, "launch", launched)
    monkeypatch.setattr(trainer_module, "as_floats", read_stats)
    trainer.fit(stop_at_step=3)
    assert events == [
        ("fetch", 1),
        ("launch",),
        ("fetch", 2),
        ("read",),
        ("launch",),
        ("fetch", 3),
        ("read",),
        ("launch",),
        ("fetch", 4),
        ("read",),
    ]


def test_finished_runs_are_not_overwritten(tiny_config, tmp_path):
    Trainer(tiny_config, tmp_path / "run").fit()
    with pytest.raises(FileExistsError, match="finished run"):
        Trainer(tiny_config, tmp_path / "run").fit()


def test_training_lowers_the_loss_and_learns_the_source_domains(tiny_config, tmp_path):
    config = copy.deepcopy(tiny_config)
    config["algorithm"] = {"name": "erm", "hparams": {"lr": 3e-3}}
    config["train"].update(steps=40, eval_every=40)
    config["data"]["augment"] = False
    run_dir = Trainer(config, tmp_path / "run").fit()
    record = read_records(run_dir)[-1]
    assert record["eval"]["source_test"]["auc"] > 0.9


def test_cross_dataset_target_from_a_second_manifest(tiny_config, tmp_path):
    from test_manifest import second_dataset

    config = copy.deepcopy(tiny_config)
    other = second_dataset(tmp_path / "other")
    config["data"].update(manifest=[config["data"]["manifest"], str(other)], target_domains=["D-T", "X-CD"])
    config["train"].update(steps=2, eval_every=2)
    record = read_records(Trainer(config, tmp_path / "run").fit())[-1]
    assert record["eval"]["target/X-CD"]["n"] == 4
    assert record["eval"]["target/X-CD"]["n_real"] == 2


def test_loader_workers_give_the_same_run_as_in_process_loading(tiny_config, tmp_path):
    config = copy.deepcopy(tiny_config)
    config["train"].update(steps=3, eval_every=3)
    in_process = Trainer(config, tmp_path / "a").fit()
    config["data"]["workers"] = 2
    prefetched = Trainer(config, tmp_path / "b").fit()
    a = model_state(load_checkpoint(in_process / "checkpoints" / "last.pt"))
    b = model_state(load_checkpoint(prefetched / "checkpoints" / "last.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)


class Killed(Exception):
    """Stands for the process being killed at a chosen point of a run."""


def kill_at_save(monkeypatch, name, step):
    """Make saving checkpoint ``name`` at ``step`` raise :class:`Killed` (before it is written)."""
    save = run_dir_module.save_checkpoint

    def saving(state, path):
        if path.name == name and state["step"] == step:
            raise Killed(f"{name} at step {step}")
        return save(state, path)

    monkeypatch.setattr(run_dir_module, "save_checkpoint", saving)


def source_val_aucs(monkeypatch, *aucs):
    """Make successive evaluations report these source-val AUCs (then 0.5), so the best step is known."""
    evaluate, scores = Trainer.evaluate, iter(aucs)

    def evaluating(self):
        results, predictions = evaluate(self)
        results["source_val"]["auc"] = next(scores, 0.5)
        return results, predictions

    monkeypatch.setattr(Trainer, "evaluate", evaluating)


def crash_at_save(config, run, monkeypatch, name, step, aucs=()):
    """Train ``run`` until checkpoint ``name`` is about to be saved at ``step``, then stop as a kill would.

    ``aucs``: the source-val AUCs of the evaluations on the way (:func:`source_val_aucs`), when the
    best step matters.
    """
    with monkeypatch.context() as patch:
        if aucs:
            source_val_aucs(patch, *aucs)
        kill_at_save(patch, name, step)
        with pytest.raises(Killed):
            Trainer(config, run).fit()


def test_a_kill_before_the_first_checkpoint_starts_the_run_over(tiny_config, tmp_path, monkeypatch):
    run = tmp_path / "run"
    crash_at_save(tiny_config, run, monkeypatch, LAST, 3)
    RecordWriter(run).append({"kind": "alignment", "step": 2, "alignment": {}})
    assert [r["step"] for r in read_records(run)] == [3, 2]
    with pytest.warns(UserWarning, match=r"no checkpoints/last.pt to resume from.*records.jsonl"):
        Trainer(tiny_config, run).fit()
    assert [r["step"] for r in read_records(run)] == [3, 6]


def test_a_rerun_with_another_config_is_refused_before_the_first_checkpoint_too(tiny_config, tmp_path, monkeypatch):
    run = tmp_path / "run"
    crash_at_save(tiny_config, run, monkeypatch, LAST, 3)
    changed = copy.deepcopy(tiny_config)
    changed["algorithm"]["name"] = "erm"
    with pytest.raises(ConfigError, match=r"algorithm.name: saved 'roga', requested 'erm'"):
        Trainer(changed, run).fit()
    assert yaml.safe_load((run / "config.yaml").read_text())["algorithm"]["name"] == "roga"
    assert [r["algorithm"] for r in read_records(run)] == ["roga"]


def test_a_kill_before_last_pt_leaves_no_best_checkpoint_of_a_later_step(tiny_config, tmp_path, monkeypatch):
    run = tmp_path / "run"
    crash_at_save(tiny_config, run, monkeypatch, LAST, 6, aucs=(0.6, 0.7))
    checkpoints = run / "checkpoints"
    assert (
        load_checkpoint(checkpoints / BEST)["step"]
        == load_checkpoint(checkpoints / LAST)["best"]["source_val"]["step"]
        == 3
    )
    with monkeypatch.context() as patch:
        source_val_aucs(patch, 0.5)  # the redone step 6 scores lower this time (e.g. on a GPU)
        Trainer(tiny_config, run).fit()
    assert load_checkpoint(checkpoints / BEST)["step"] == 3
    assert set(pd.read_csv(run / "predictions.csv")["step"]) == {3}


def test_a_kill_between_last_pt_and_the_best_checkpoint_restores_the_best(tiny_config, tmp_path, monkeypatch):
    run = tmp_path / "run"
    crash_at_save(tiny_config, run, monkeypatch, BEST, 6, aucs=(0.6, 0.7))
    checkpoints = run / "checkpoints"
    assert (
        load_checkpoint(checkpoints / BEST)["step"] == 3
        and load_checkpoint(checkpoints / LAST)["best"]["source_val"]["step"] == 6
    )
    Trainer(tiny_config, run).fit()
    best, last = load_checkpoint(checkpoints / BEST), load_checkpoint(checkpoints / LAST)
    assert best["step"] == 6
    assert all(torch.equal(best["model"][k], model_state(last)[k]) for k in best["model"])
    assert set(pd.read_csv(run / "predictions.csv")["step"]) == {6}


def group_aucs(monkeypatch, scores):
    """Make the n-th evaluation report ``scores[group][n]`` (then 0.5) as the AUC of each named group."""
    evaluate, calls = Trainer.evaluate, iter(range(10**6))

    def evaluating(self):
        results, predictions = evaluate(self)
        n = next(calls)
        for group, values in scores.items():
            results[group]["auc"] = values[n] if n < len(values) else 0.5
        return results, predictions

    monkeypatch.setattr(Trainer, "evaluate", evaluating)


ALL_RULES = {"source_val": (0.9, 0.6, 0.7), "lodo_val": (0.5, 0.8, 0.8), "target/D-T": (0.6, 0.6, 0.9)}


@pytest.fixture
def all_rules_config(tiny_config):
    config = copy.deepcopy(tiny_config)
    config["data"].update(source_domains=["D-A", "D-B"], lodo_domain="D-C")
    config["train"].update(steps=9, checkpoint_rules=["source_val", "lodo", "oracle"])
    return config


def test_each_kept_rule_checkpoints_the_model_of_the_record_it_selects(all_rules_config, tmp_path, monkeypatch):
    group_aucs(monkeypatch, ALL_RULES)
    run = Trainer(all_rules_config, tmp_path / "run").fit()
    records, checkpoints = load_records(run), run / "checkpoints"
    steps = {
        rule: load_checkpoint(checkpoints / best_checkpoint(rule))["step"] for rule in ("source_val", "lodo", "oracle")
    }
    assert steps == {rule: select(records, rule)["step"] for rule in steps} == {"source_val": 3, "lodo": 6, "oracle": 9}
    oracle, last = load_checkpoint(checkpoints / "best_oracle.pt"), load_checkpoint(checkpoints / LAST)
    assert all(torch.equal(oracle["model"][k], v) for k, v in model_state(last).items())
    assert not torch.equal(
        load_checkpoint(checkpoints / "best_lodo.pt")["model"]["fc.weight"], model_state(last)["fc.weight"]
    )
    assert set(pd.read_csv(run / "predictions.csv")["step"]) == {3}  # predictions stay source_val's


def test_a_kill_before_a_rules_checkpoint_is_restored_on_resume(all_rules_config, tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        group_aucs(patch, ALL_RULES)
        uninterrupted = Trainer(all_rules_config, tmp_path / "full").fit()
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        group_aucs(patch, ALL_RULES)
        kill_at_save(patch, "best_lodo.pt", 6)
        with pytest.raises(Killed):
            Trainer(all_rules_config, run).fit()
    assert load_checkpoint(run / "checkpoints" / "best_lodo.pt")["step"] == 3
    with monkeypatch.context() as patch:
        group_aucs(patch, {group: values[2:] for group, values in ALL_RULES.items()})
        Trainer(all_rules_config, run).fit()
    for rule in ("source_val", "lodo", "oracle"):
        a = load_checkpoint(uninterrupted / "checkpoints" / best_checkpoint(rule))
        b = load_checkpoint(run / "checkpoints" / best_checkpoint(rule))
        assert a["step"] == b["step"] and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), rule


def test_the_kept_rules_cannot_change_on_resume(all_rules_config, tmp_path):
    Trainer(all_rules_config, tmp_path / "run").fit(stop_at_step=3)
    fewer = copy.deepcopy(all_rules_config)
    fewer["train"]["checkpoint_rules"] = ["source_val"]
    with pytest.raises(ConfigError, match=r"train.checkpoint_rules"):
        Trainer(fewer, tmp_path / "run").fit()


def test_resume_drops_predictions_of_steps_after_the_checkpoint(tiny_config, tmp_path):
    config = copy.deepcopy(tiny_config)
    config["train"]["steps"] = 9
    run = Trainer(config, tmp_path / "run").fit(stop_at_step=3)
    stale = pd.DataFrame(
        {
            "group": ["source_val", "source_val"],
            "path": ["a.png", "b.png"],
            "label": [0, 1],
            "prob_fake": [0.2, 0.9],
            "step": [3, 6],
        }
    )
    stale.to_csv(run / "predictions.csv", index=False)
    Trainer(config, run).fit(stop_at_step=4)
    assert list(pd.read_csv(run / "predictions.csv")["step"]) == [3]


def test_resume_drops_a_torn_final_record_line(tiny_config, tmp_path):
    run = Trainer(tiny_config, tmp_path / "run").fit(stop_at_step=3)
    with (run / "records.jsonl").open("a") as handle:
        handle.write('{"step": 6, "epoch": 1.5, "ev')
    Trainer(tiny_config, run).fit()
    assert [r["step"] for r in read_records(run)] == [3, 6]


def test_truncation_names_an_unparsable_line_that_is_not_the_last(tmp_path):
    writer = RecordWriter(tmp_path)
    writer.append({"step": 3, "eval": {}})
    with writer.path.open("a") as handle:
        handle.write('{"step": 4, "ev\n')
    writer.append({"step": 6, "eval": {}})
    with pytest.raises(RecordsError, match=r"records.jsonl: line 2: invalid JSON"):
        writer.truncate_after(3)
    with writer.path.open("a") as handle:
        handle.write('{"step": 6')
    with pytest.raises(RecordsError, match="line 2"):
        writer.truncate_after(3)


def test_a_run_cannot_be_shortened_on_resume(tiny_config, tmp_path):
    Trainer(tiny_config, tmp_path / "run").fit(stop_at_step=3)
    shorter = copy.deepcopy(tiny_config)
    shorter["train"]["steps"] = 2
    with pytest.raises(ConfigError, match=r"'train.steps' is 2, below the step 3"):
        Trainer(shorter, tmp_path / "run").fit()


@pytest.mark.parametrize(
    ("key", "value"), [("steps", 0), ("steps", -3), ("eval_every", 0), ("seed", 1.5), ("steps", "abc")]
)
def test_bad_numbers_are_refused_before_anything_is_written(tiny_config, tmp_path, key, value):
    config = copy.deepcopy(tiny_config)
    config["train"][key] = value
    with pytest.raises(ConfigError, match=rf"'train.{key}'.*got {value!r}"):
        Trainer(config, tmp_path / "run").fit()
    assert not (tmp_path / "run").exists()


class RandomDrawingCallback:
    """A callback that consumes the global random state, as train-mode dropout in an analysis pass would."""

    name, every = "noise", 1

    def __call__(self, model, domain_batches, step):
        return {"draw": float(torch.rand(()))}


def test_callbacks_do_not_change_training_even_when_they_draw_random_numbers(tiny_config, tmp_path):
    """The trainer forks the RNG around callbacks: weights with and without the callback are identical."""
    config = {
        **tiny_config,
        "model": {**tiny_config["model"], "kwargs": {"drop_rate": 0.3}},
        "algorithm": {"name": "erm", "hparams": {"lr": 1e-3}},
    }
    plain = torch.load(Trainer(config, tmp_path / "plain").fit() / "checkpoints" / "last.pt", weights_only=True)
    logged = torch.load(
        Trainer(config, tmp_path / "logged", callbacks=[RandomDrawingCallback()]).fit() / "checkpoints" / "last.pt",
        weights_only=True,
    )
    for key, value in model_state(plain).items():
        assert torch.equal(value, model_state(logged)[key]), key


def test_shard_positions_place_each_rank_in_the_global_batch():
    """Rank r of 2 holds rows r, r+2, … of each domain's global batch (step_rows); offsets are per domain."""

    def positions(rank, world, sizes):
        return TrainingData.shard_positions(SimpleNamespace(dist=DistContext(rank=rank, world_size=world)), sizes)

    assert positions(0, 1, [4, 4]) == ()
    got, total = positions(1, 2, [2, 3])
    assert got.tolist() == [1, 3, 5, 7, 9] and total == 10


def test_each_synthetic_benchmark_gets_its_own_cache_folder(monkeypatch, tmp_path):
    """Options beyond videos/frames/size/seed (here the split fractions) name a folder of their own."""
    folders = []
    monkeypatch.setattr("workbench.data.synthetic.generate_benchmark", lambda out, **_: folders.append(out) or out)
    base = {
        "cache_dir": str(tmp_path),
        "videos_per_domain": 10,
        "frames_per_video": 2,
        "size": 32,
        "seed": 0,
        "workers": 1,
    }
    synthetic_manifest(base)
    synthetic_manifest({**base, "workers": 2})
    synthetic_manifest({**base, "split_fractions": [0.4, 0.3, 0.3]})
    assert folders[0] == folders[1] == tmp_path / "v10-f2-32px-seed0"
    assert folders[2].name.startswith("v10-f2-32px-seed0-") and folders[2] != folders[0]


class StepProbe:
    """A callback that notes the steps it ran at."""

    name, every = "probe", 2

    def __init__(self) -> None:
        self.steps: list[int] = []

    def __call__(self, model, domain_batches, step):
        self.steps.append(step)
        return {}


def test_every_process_runs_the_callbacks_and_only_the_main_one_records(tiny_config, tmp_path):
    """Under torchrun a rank that skipped a train-mode callback pass would leave SyncBatchNorm's collectives
    waiting; so all ranks run callbacks, and a rank without a records writer only skips the recording."""
    probe = StepProbe()
    trainer = Trainer(tiny_config, tmp_path / "run", callbacks=[probe])
    batches = trainer.data.domain_batches(2)
    trainer._run_callbacks(batches, 2, writer=None)  # as on a rank other than the main one
    trainer._run_callbacks(batches, 3, writer=None)  # not due
    assert probe.steps == [2] and not (tmp_path / "run" / "records.jsonl").exists()


def poison_weights_at(trainer, step_to_poison: int) -> None:
    """Make the update of ``step_to_poison`` leave NaN weights while reporting a finite loss."""
    original, calls = trainer.algorithm.launch, iter(range(1, 10**6))

    def launch(batches):
        stats = original(batches)
        if next(calls) == step_to_poison:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(math.nan)
        return stats

    trainer.algorithm.launch = launch


def test_weights_that_diverge_on_an_evaluation_step_stop_training_cleanly(tiny_config, tmp_path):
    """The update of step 3 (an evaluation step) makes the weights NaN: no traceback from the metrics, no
    record or checkpoint of the broken model, the clean message."""
    trainer = Trainer(tiny_config, tmp_path / "run")
    poison_weights_at(trainer, 3)
    with pytest.raises(NonFiniteLossError, match=r"weights became non-finite \(.*\) at step 3.*does not exist yet"):
        trainer.fit()
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
    assert not (tmp_path / "run" / "records.jsonl").exists()


def test_non_finite_outputs_of_finite_weights_stop_training_cleanly(tiny_config, tmp_path, monkeypatch):
    trainer = Trainer(tiny_config, tmp_path / "run")
    monkeypatch.setattr(ExecutionPolicy, "predict", lambda self, model, x: torch.full((len(x), 2), math.nan))
    with pytest.raises(
        NonFiniteLossError, match=r"evaluation failed: the model.s fake probability is nan for 54 of 54 "
    ):
        trainer.fit()


@pytest.mark.parametrize("damage", ["truncated", "pickle"])
def test_a_damaged_last_checkpoint_is_named_in_one_line(damage, tiny_config, tmp_path, capsys):
    from workbench.__main__ import main

    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(tiny_config))
    run = tmp_path / "run"
    Trainer(tiny_config, run).fit(stop_at_step=3)
    last = run / "checkpoints" / "last.pt"
    if damage == "truncated":
        last.write_bytes(last.read_bytes()[:200])
    else:
        torch.save({"step": 3, "hook": SimpleNamespace(a=1)}, last)
    assert main(["train", "--config", str(config_path), "--run-dir", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(last) in err and "best_source_val.pt" in err
    if damage == "truncated":
        assert "damaged or not a checkpoint" in err
    else:
        assert "holds objects other than tensors" in err and "will not be loaded" in err
        assert "safe_globals" not in err and "weights_only" not in err


def test_eval_names_a_damaged_kept_model_and_the_other_checkpoints(tiny_config, tmp_path, capsys):
    from workbench.__main__ import main

    run = Trainer(tiny_config, tmp_path / "run").fit()
    best = run / "checkpoints" / "best_source_val.pt"
    best.write_bytes(best.read_bytes()[:100])
    assert main(["eval", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(best) in err and "['last.pt']" in err and "--checkpoint" in err


def test_a_device_that_does_not_exist_is_a_config_error(tiny_config, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for device in ("cuda", "cuda:7"):
        config = copy.deepcopy(tiny_config)
        config["train"]["device"] = device
        with pytest.raises(ConfigError, match=rf"config key 'train.device': '{device}' does not exist on this machine"):
            Trainer(config, tmp_path / "run")
