"""Adopt a detector trained elsewhere (e.g. a DeepfakeBench checkpoint) as a finished run directory.

Every analysis of the workbench (``eval``, ``analyse``, ``report``, notebooks 03–05) reads run directories
(docs/records.md). :func:`adopt_run` writes one for a weights file without training anything: the config
it is evaluated with (``model.pretrained`` = the file; ``train.steps`` = 0 and ``train.adopted`` = the
file and its SHA-256, so the run says it was not trained here), the weights as the kept model of every
rule in ``train.checkpoint_rules`` (``best_<rule>.pt``, step 0), one evaluation record scored as training
scores (:func:`workbench.training.scoring.score_model`: the model's own input normalisation, the
config's image size and evaluation groups), ``predictions.csv`` and the ``done`` marker. The trainer
refuses such a config (:func:`refuse_adopted`).
"""

from __future__ import annotations

import copy
import hashlib
import time
import warnings
from pathlib import Path
from typing import Any

from torch import nn

from workbench.config import ConfigError, check_checkpoint_rules_usable, resolve_device, validate_config
from workbench.models import backbone_normalization, create_model
from workbench.training.run_dir import RunDir, best_checkpoint
from workbench.training.scoring import evaluation_data, score_model

ADOPTED_STEP = 0
SELECTED_MODEL = "source_val"  # the ``model`` column of predictions.csv, as the trainer writes it


class InputSizeWarning(UserWarning):
    """The evaluation image size differs from the input size the adopted model records (``pretrained_cfg``)."""


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as lower-case hexadecimal digits."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def adopted_config(config: dict[str, Any], weights: str | Path) -> dict[str, Any]:
    """A copy of ``config`` for the run of ``weights``: ``model.pretrained`` is the file (absolute),
    ``train.steps`` 0 and ``train.adopted`` the file and its SHA-256; validated.

    What only training would have logged is switched off (``train.alignment_every`` 0, ``train.swad.enabled``
    false), so the config never promises alignment records or a SWAD model the run cannot have."""
    weights = Path(weights).expanduser().resolve()
    if not weights.is_file():
        raise FileNotFoundError(f"weights file {str(weights)!r} does not exist")
    result = copy.deepcopy(config)
    result["model"]["pretrained"] = str(weights)
    result["train"]["steps"] = ADOPTED_STEP
    result["train"]["alignment_every"] = 0
    result["train"]["swad"]["enabled"] = False
    result["train"]["adopted"] = {"weights": str(weights), "sha256": file_sha256(weights)}
    validate_config(result)
    return result


def check_input_size(model: nn.Module, image_size: int) -> None:
    """Warn (:class:`InputSizeWarning`) when ``image_size`` is not the input size of a detector's recorded
    convention: a ``pretrained_cfg`` of 2-class weights (DeepfakeBench's); an ImageNet backbone's records only
    its pretraining size."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    recorded = cfg.get("input_size")
    if cfg.get("num_classes") == 2 and recorded and int(recorded[-1]) != int(image_size):
        warnings.warn(
            f"data.image_size is {image_size} but {cfg.get('architecture', 'the model')} records an input "
            f"size of {int(recorded[-1])} px; set data.image_size={int(recorded[-1])} to evaluate it as it "
            "was trained",
            InputSizeWarning,
            stacklevel=3,
        )


def refuse_used(run_dir: RunDir) -> None:
    """Raise ``FileExistsError`` when ``run_dir`` exists and is not empty: an adopted run is written only once."""
    if run_dir.path.exists() and (not run_dir.path.is_dir() or any(run_dir.path.iterdir())):
        what = "a finished run" if run_dir.done else "not an empty directory"
        raise FileExistsError(f"{run_dir.path} is {what}; adopt the weights into a new run directory (or delete it)")


def adopt_run(weights: str | Path, config: dict[str, Any], run_dir: str | Path) -> Path:
    """Write the finished run directory ``run_dir`` of the detector in ``weights``, evaluated on ``config``'s
    data (a resolved config: :func:`workbench.config.load_config`); return ``run_dir``.

    ``config["model"]["name"]`` must be the architecture the weights belong to (``create_model`` refuses a
    file of another layout, naming the keys). Nothing is written before the weights are loaded and scored.
    """
    directory = RunDir(run_dir)
    refuse_used(directory)
    config = adopted_config(config, weights)
    check_checkpoint_rules_usable(config)  # each kept rule's record must be scorable, as in training
    model_cfg = config["model"]
    model = create_model(model_cfg["name"], pretrained=model_cfg["pretrained"], **model_cfg["kwargs"])
    check_input_size(model, config["data"]["image_size"])
    device = resolve_device(config["train"]["device"])
    started = time.perf_counter()
    results, predictions = score_model(model, config, device, evaluation_data(config))
    record = {
        "step": ADOPTED_STEP,
        "epoch": 0.0,
        "wall_s": time.perf_counter() - started,
        "algorithm": config["algorithm"]["name"],
        "seed": config["train"]["seed"],
        "train": {},
        "eval": results,
        "callbacks_s": 0.0,
    }
    predictions["step"] = ADOPTED_STEP
    predictions["model"] = SELECTED_MODEL
    directory.path.mkdir(parents=True, exist_ok=True)
    directory.write_config(config)
    state = {"model": {key: value.cpu() for key, value in model.state_dict().items()}, "step": ADOPTED_STEP}
    for rule in config["train"]["checkpoint_rules"]:
        directory.save(best_checkpoint(rule), state)
    directory.records.append(record)
    directory.write_predictions(predictions)
    directory.mark_done(ADOPTED_STEP)
    return directory.path


def input_convention(run_dir: str | Path) -> dict[str, Any]:
    """What a run's evaluation and analysis feed its model: the backbone's mean and std
    (:func:`workbench.models.backbone_normalization`) and the config's image size."""
    config = RunDir(run_dir).read_config()
    mean, std = backbone_normalization(config["model"]["name"], **(config["model"].get("kwargs") or {}))
    return {"mean": mean, "std": std, "image_size": config["data"]["image_size"]}


def refuse_adopted(config: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` for the config of an adopted run (``train.adopted``): its detector was trained
    elsewhere, and nothing here may train or resume it as if it had been trained here."""
    adopted = config["train"]["adopted"]
    if adopted is not None:
        raise ConfigError(
            f"config key 'train.adopted': this is the config of a detector adopted from "
            f"{adopted['weights']} (sha256 {adopted['sha256']}), trained elsewhere; it is evaluated and "
            "analysed, never trained here. To fine-tune those weights, train a new run with "
            "train.adopted=null, train.steps >= 1 and model.pretrained set to the weights file"
        )
