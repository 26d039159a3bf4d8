"""Fake run directories for the report tests (collection, tuning, tables): records at two steps, optional
config, predictions and done marker."""

from __future__ import annotations

import json

import yaml

TARGET = "target/SYN-SEAMLESS"


def make_run(
    root,
    name,
    algorithm,
    seed,
    target_auc,
    *,
    backbone="resnet18",
    done=True,
    config=True,
    hparams=None,
    oracle_auc=0.99,
    predictions=None,
    source_val_auc=0.95,
    frames=None,
    source_val_eer=None,
):
    """A run evaluated at step 100 (target AUC ``oracle_auc``) and step 200 (best source_val, ``target_auc``).

    ``frames`` = (real, fake) adds the target's frame counts to the records; ``source_val_eer`` = (at step
    100, at step 200) adds a source-val EER to select on.
    """
    run_dir = root / name
    run_dir.mkdir(parents=True)
    if config:
        cfg = {
            "algorithm": {"name": algorithm, "hparams": hparams or {"rho": 0.05}},
            "model": {"name": backbone},
            "train": {"seed": seed, "steps": 200},
            "run": {"dir": str(root), "name": name},
        }
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    records = [
        {
            "step": 100,
            "algorithm": algorithm,
            "seed": seed,
            "backbone": backbone,
            "eval": {
                "source_val": {"auc": 0.80},
                "source_test": {"auc": 0.81},
                TARGET: {"auc": oracle_auc},
                "target/FAKES-ONLY": {"auc": None, "auc_reason": "only one class present (n_real=0, n_fake=3)"},
            },
        },
        {
            "step": 200,
            "algorithm": algorithm,
            "seed": seed,
            "backbone": backbone,
            "eval": {
                "source_val": {"auc": source_val_auc},
                "source_test": {"auc": 0.96},
                TARGET: {"auc": target_auc},
                "target/FAKES-ONLY": {"auc": None, "auc_reason": "only one class present (n_real=0, n_fake=3)"},
            },
        },
    ]
    for record, eer in zip(records, source_val_eer or ()):
        record["eval"]["source_val"]["eer"] = eer
    if frames is not None:
        for record in records:
            record["eval"][TARGET].update(n_real=frames[0], n_fake=frames[1], n=sum(frames))
    (run_dir / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    if predictions is not None:
        predictions.to_csv(run_dir / "predictions.csv", index=False)
    if done:
        (run_dir / "done").write_text("", encoding="utf-8")
    return run_dir


def grid(tmp_path):
    """ERM: target AUC .80 .85 .90 (mean .85, std .05); RoGA: .90 .94 (mean .92, std sqrt(.0008))."""
    runs = [make_run(tmp_path, f"erm_s{s}", "erm", s, auc) for s, auc in enumerate([0.80, 0.85, 0.90])]
    runs += [make_run(tmp_path, f"roga_s{s}", "roga", s, auc) for s, auc in enumerate([0.90, 0.94])]
    return runs
