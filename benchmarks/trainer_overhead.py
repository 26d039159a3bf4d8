"""What the trainer costs: its ERM training loop against a bare timm loop on the same batches.

    python -m benchmarks.trainer_overhead --config configs/demo.yaml --steps 40 --repeats 3 \
        [--set model.name=efficientnet_b4 data.image_size=256 train.device=cuda ...]

The trainer run is a real :class:`workbench.training.Trainer` run of ``algorithm.name=erm`` (any other
algorithm in the config is replaced) for ``2 × --steps`` steps, evaluated after ``--steps`` and at the
end; its speed is the second window's ``train.img_s`` from ``records.jsonl`` (the first window
absorbs warm-up: CUDA-graph capture, cuDNN autotuning, loader start-up). It therefore includes
everything a training step costs in the trainer — sampling, decoding, augmentation, normalisation,
the host-to-device copy, the update and its statistics — but not evaluation or checkpoints.

The bare loop (:func:`benchmarks.throughput.bare_training_step`) trains a fresh model of the same
name with the same base optimizer, precision and layout on the pooled batches of the same steps,
prepared by the trainer beforehand and held on the device: no data pipeline, no trainer. It runs
``--steps`` untimed steps and then ``--steps`` timed ones.

Trainer and bare loop alternate ``--repeats`` times; one JSON line per timed run, then a summary
line with the median of each and ``ratio`` = median trainer img/s ÷ median bare img/s (its goal:
docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from benchmarks.throughput import bare_training_step, synchronize
from workbench.algorithms import Algorithm, hparam_spec, resolve_hparams
from workbench.algorithms.base import build_optimizer
from workbench.config import load_config, validate_config
from workbench.models import create_model
from workbench.training import Trainer


def erm_config(config_path: str | None, overrides: Sequence[str], steps: int) -> dict:
    """The config with ERM, ``2 × steps`` steps, an evaluation after ``steps``, and no progress bar.

    The config's shared hyper-parameters (optimizer, precision, layout) are kept; those of its own
    algorithm, which ERM does not have, are left out.
    """
    if steps < 1:
        raise ValueError(f"--steps must be >= 1 (got {steps})")
    config = load_config(
        config_path, [*overrides, f"train.steps={2 * steps}", f"train.eval_every={steps}", "train.progress=false"]
    )
    shared = {key: value for key, value in config["algorithm"]["hparams"].items() if key in hparam_spec("erm")}
    config["algorithm"] = {"name": "erm", "hparams": shared}
    validate_config(config)
    return config


def trainer_run(config: dict, run_dir: Path) -> dict:
    """Train with the trainer; return the timing of the second (warm) window."""
    Trainer(config, run_dir).fit()
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    timed = [r for r in records if "eval" in r][-1]["train"]
    return {"run": "trainer", "img_s": timed["img_s"], "ms_per_step": timed["step_ms"], "data_ms": timed["data_ms"]}


def pooled_batches(trainer: Trainer, steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The trainer's prepared batches of steps ``1..steps``, each pooled over the domains, on the device."""
    return [Algorithm.pooled(batches) for _, batches in trainer.data.iterate_steps(1, steps)]


def bare_run(config: dict, batches: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> dict:
    """Train a fresh model with a bare loop over ``batches``: first half untimed, second half timed."""
    hparams = resolve_hparams(config["algorithm"]["name"], config["algorithm"]["hparams"])
    model_cfg = config["model"]
    model = create_model(model_cfg["name"], pretrained=model_cfg["pretrained"], **model_cfg["kwargs"]).to(device)
    step = bare_training_step(
        model.train(),
        build_optimizer(list(model.parameters()), hparams),
        hparams["precision"],
        hparams["channels_last"],
    )
    half = len(batches) // 2
    for x, y in batches[:half]:
        step(x, y)
    synchronize(device)
    start = time.perf_counter()
    for x, y in batches[half:]:
        step(x, y)
    synchronize(device)
    elapsed = time.perf_counter() - start
    images = sum(len(y) for _, y in batches[half:])
    return {"run": "bare", "img_s": images / elapsed, "ms_per_step": 1000.0 * elapsed / (len(batches) - half)}


def run(config: dict, repeats: int, emit: Callable[[dict], None] | None = None) -> dict:
    """Alternate trainer and bare runs ``repeats`` times; return the summary (medians and ratio)."""
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1 (got {repeats})")
    emit = emit or (lambda record: None)
    results: dict[str, list[float]] = {"trainer": [], "bare": []}
    with tempfile.TemporaryDirectory(prefix="trainer-overhead-") as tmp:
        probe = Trainer(config, Path(tmp) / "probe")
        batches = pooled_batches(probe, int(config["train"]["steps"]))
        device = probe.device
        del probe
        for repeat in range(repeats):
            for result in (trainer_run(config, Path(tmp) / f"run{repeat}"), bare_run(config, batches, device)):
                result["repeat"] = repeat
                results[result["run"]].append(result["img_s"])
                emit(result)
    trainer_img_s, bare_img_s = statistics.median(results["trainer"]), statistics.median(results["bare"])
    summary = {
        "run": "summary",
        "trainer_img_s": trainer_img_s,
        "bare_img_s": bare_img_s,
        "ratio": trainer_img_s / bare_img_s,
        "repeats": repeats,
        "steps": int(config["train"]["eval_every"]),
        "device": str(device),
        "model": config["model"]["name"],
        "image_size": config["data"]["image_size"],
        "batch_size": config["data"]["batch_size"],
        "workers": config["data"]["workers"],
        "augment": config["data"]["augment"],
        "hparams": resolve_hparams(config["algorithm"]["name"], config["algorithm"]["hparams"]),
        "torch": torch.__version__,
    }
    emit(summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.trainer_overhead",
        description="Time the trainer's ERM loop against a bare timm loop on the same batches; "
        "print one JSON line per run and a summary with the ratio.",
    )
    parser.add_argument("--config", default="configs/demo.yaml", help="YAML config (algorithm is forced to ERM)")
    parser.add_argument(
        "--set",
        dest="overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides, e.g. train.device=cuda model.name=efficientnet_b4",
    )
    parser.add_argument(
        "--steps", type=int, default=40, help="timed steps per run (the same number runs untimed first)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="trainer/bare alternations; medians are reported")
    args = parser.parse_args(argv)
    try:
        config = erm_config(args.config, args.overrides, args.steps)
    except (ValueError, KeyError, FileNotFoundError) as error:
        parser.error(str(error))
    run(config, args.repeats, emit=lambda r: print(json.dumps(r), flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
