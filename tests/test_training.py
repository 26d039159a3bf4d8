"""The trainer: run directory contents, bit-for-bit resume, non-finite losses, checkpoints."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from workbench.training import NonFiniteLossError, Trainer, load_checkpoint
from workbench.training.records import RecordWriter


def read_records(run_dir):
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]


def test_run_directory_has_everything_the_records_doc_promises(tiny_config, tmp_path):
    run_dir = Trainer(tiny_config, tmp_path / "run").fit()
    for name in ("config.yaml", "records.jsonl", "predictions.csv", "done",
                 "checkpoints/last.pt", "checkpoints/best_source_val.pt"):
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
    assert state["step"] == 6 and set(state) >= {"model", "optimizer", "rng_cpu"}


def test_resume_reproduces_an_uninterrupted_run_bit_for_bit(tiny_config, tmp_path):
    config = copy.deepcopy(tiny_config)
    config["model"]["kwargs"] = {"drop_rate": 0.3}  # dropout makes the global RNG state matter
    full = Trainer(config, tmp_path / "full").fit()
    Trainer(config, tmp_path / "split").fit(stop_at_step=3)
    # An interrupted stretch after the checkpoint leaves a stale record that resume must drop.
    RecordWriter(tmp_path / "split").append({"kind": "alignment", "step": 4, "alignment": {}})
    split = Trainer(config, tmp_path / "split").fit()
    a = load_checkpoint(full / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(split / "checkpoints" / "last.pt")["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
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
    for key in good["model"]:
        assert torch.equal(kept["model"][key], good["model"][key])


def test_the_next_batch_is_prepared_before_the_update_is_waited_for(tiny_config, tmp_path, monkeypatch):
    import workbench.training.trainer as trainer_module

    trainer = Trainer(tiny_config, tmp_path / "run")
    events = []
    fetch, launch, read = trainer.domain_batches, trainer.algorithm.launch, trainer_module.as_floats

    def fetched(step):
        events.append(("fetch", step))
        return fetch(step)

    def launched(batches):
        events.append(("launch",))
        return launch(batches)

    def read_stats(stats):
        events.append(("read",))
        return read(stats)

    monkeypatch.setattr(trainer, "domain_batches", fetched)
    monkeypatch.setattr(trainer.algorithm, "launch", launched)
    monkeypatch.setattr(trainer_module, "as_floats", read_stats)
    trainer.fit(stop_at_step=3)
    assert events == [("fetch", 1), ("launch",), ("fetch", 2), ("read",),
                      ("launch",), ("fetch", 3), ("read",),
                      ("launch",), ("fetch", 4), ("read",)]


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
    a = load_checkpoint(in_process / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(prefetched / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
