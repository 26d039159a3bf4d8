"""Model selection as pure post-processing of a run's ``records.jsonl`` (after DomainBed).

A rule looks at every evaluation record of one run and picks one; nothing is retrained. Rules:

- ``source_val`` (default): best metric on the source domains' validation split (``eval["source_val"]``),
  i.e. training-domain validation.
- ``lodo``: best metric on the validation split of a source domain held out of training
  (``eval["lodo_val"]``), i.e. leave-one-domain-out validation.
- ``oracle``: best mean metric over the ``target/*`` groups. It looks at the test domains, so it is
  an upper-bound diagnostic, never a valid model selection; its result is flagged ``oracle: True``.
- ``last``: the record with the largest step.
- ``swad``: the evaluation of the SWAD model (``train.swad``), the dense weight average over the
  validation-loss valley that the trainer computes after the last step; it is not a step of the
  trajectory, so the other rules never pick it.

Every rule picks among the evaluation records (lines with ``"eval"``); analysis lines written by
training callbacks are never selected. "Best" is the maximum, or the minimum for error metrics
(``eer``); ties go to the earliest step. Records whose metric is null are skipped; if every record is
null the rule fails and says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workbench.metrics import LOWER_IS_BETTER, SCORE_METRICS
from workbench.training.records import RECORDS_FILE, RecordsError, parse_record  # noqa: F401 (RecordsError re-exported)

TARGET_PREFIX = "target/"
SWAD_KIND = "swad"  # the ``kind`` of the SWAD model's evaluation record
# the evaluation group each validation rule reads
RULE_GROUPS: dict[str, str] = {"source_val": "source_val", "lodo": "lodo_val"}


class SelectionError(ValueError):
    """A selection rule that cannot pick a record from these records; the message says why."""


def load_records(run_dir: str | Path) -> list[dict[str, Any]]:
    """Read ``<run_dir>/records.jsonl``: one JSON object (with an integer ``step``) per non-empty line.

    A line that is not one raises :class:`RecordsError` naming the file and line.
    """
    path = Path(run_dir) / RECORDS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no records file (is {str(run_dir)!r} a run directory?)")
    records = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if line.strip():
                records.append(parse_record(path, line_number, line))
    return records


def _metric_value(group: Any, metric: str) -> float | None:
    if not isinstance(group, dict):
        return None
    value = group.get(metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _null_reasons(records: Sequence[dict], group: str, metric: str) -> str:
    reasons = {
        str(r.get("eval", {}).get(group, {}).get(f"{metric}_reason", "null without a reason"))
        for r in records
        if group in r.get("eval", {})
    }
    return "; ".join(sorted(reasons))


def _best(scored: list[tuple[int, float]], records: Sequence[dict], metric: str) -> tuple[int, float]:
    """Index and score of the best (index, score) pair; ties go to the earliest step."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    return max(scored, key=lambda item: (sign * item[1], -records[item[0]]["step"]))


def _select_group(records: Sequence[dict], metric: str, group: str, rule: str) -> tuple[int, float]:
    if not any(group in r.get("eval", {}) for r in records):
        hint = (
            " (set data.lodo_domain to a fake domain that is neither a source nor a target, and train, to log it)"
            if group == "lodo_val"
            else ""
        )
        raise SelectionError(f"rule {rule!r} needs the {group!r} evaluation group, which no record has{hint}")
    values = [_metric_value(r.get("eval", {}).get(group), metric) for r in records]
    scored = [(i, v) for i, v in enumerate(values) if v is not None]
    if not scored:
        raise SelectionError(
            f"rule {rule!r}: {metric!r} on {group!r} is null in all {len(records)} records "
            f"({_null_reasons(records, group, metric)})"
        )
    return _best(scored, records, metric)


def select_source_val(records: Sequence[dict], metric: str) -> tuple[int, float | None]:
    """Training-domain validation: best ``eval["source_val"][metric]``."""
    return _select_group(records, metric, RULE_GROUPS["source_val"], "source_val")


def select_lodo(records: Sequence[dict], metric: str) -> tuple[int, float | None]:
    """Leave-one-domain-out validation: best ``eval["lodo_val"][metric]``."""
    return _select_group(records, metric, RULE_GROUPS["lodo"], "lodo")


def _oracle_score(record: dict, metric: str) -> float | None:
    """Mean of ``metric`` over a record's non-null ``target/*`` groups; None when there is none."""
    values = [
        v
        for k, g in record.get("eval", {}).items()
        if k.startswith(TARGET_PREFIX) and (v := _metric_value(g, metric)) is not None
    ]
    return sum(values) / len(values) if values else None


def select_oracle(records: Sequence[dict], metric: str) -> tuple[int, float | None]:
    """Oracle diagnostic: best mean of ``metric`` over the non-null ``target/*`` groups (test data!)."""
    any_target = any(k.startswith(TARGET_PREFIX) for r in records for k in r.get("eval", {}))
    scored = [(i, score) for i, record in enumerate(records) if (score := _oracle_score(record, metric)) is not None]
    if not any_target:
        raise SelectionError(f"rule 'oracle' needs '{TARGET_PREFIX}*' evaluation groups, which no record has")
    if not scored:
        raise SelectionError(
            f"rule 'oracle': {metric!r} is null on every '{TARGET_PREFIX}*' group of all {len(records)} records"
        )
    return _best(scored, records, metric)


def select_last(records: Sequence[dict], metric: str) -> tuple[int, float | None]:
    """The latest evaluation record (largest step; the later line on equal steps). ``metric`` is not used."""
    return max(range(len(records)), key=lambda i: (records[i]["step"], i)), None


def select_swad(records: Sequence[dict], metric: str) -> tuple[int, float | None]:
    """The SWAD model's evaluation (the last one, should there be several), scored by its source-validation
    ``metric`` (what ``report --tune`` compares)."""
    found = [i for i, record in enumerate(records) if record.get("kind") == SWAD_KIND]
    if not found:
        raise SelectionError(
            "rule 'swad' needs the SWAD model's evaluation, which only runs trained with train.swad.enabled=true have"
        )
    return found[-1], _metric_value(records[found[-1]].get("eval", {}).get(RULE_GROUPS["source_val"]), metric)


def record_score(record: dict, rule: str, metric: str = "auc") -> float | None:
    """The score ``rule`` gives one evaluation record (None when its metric is null or its group missing).

    The trainer keeps each rule's best model by this score, so ``checkpoints/best_<rule>.pt`` holds
    the model of the record :func:`select` picks with the same rule and metric.
    """
    if rule == "oracle":
        return _oracle_score(record, metric)
    if rule not in RULE_GROUPS:
        raise SelectionError(f"rule {rule!r} has no per-record score; choose one of {[*RULE_GROUPS, 'oracle']}")
    return _metric_value(record.get("eval", {}).get(RULE_GROUPS[rule]), metric)


def improves(score: float | None, best: float | None, metric: str = "auc") -> bool:
    """Whether ``score`` beats ``best`` under :func:`select`'s order (ties keep the earlier record)."""
    if score is None:
        return False
    if best is None:
        return True
    return score < best if metric in LOWER_IS_BETTER else score > best


SelectionRule = Callable[[Sequence[dict], str], tuple[int, float | None]]

SELECTION_RULES: dict[str, SelectionRule] = {
    "source_val": select_source_val,
    "lodo": select_lodo,
    "oracle": select_oracle,
    "last": select_last,
    "swad": select_swad,
}

RULE_DESCRIPTIONS: dict[str, str] = {
    "source_val": "training-domain validation (source_val)",
    "lodo": "leave-one-domain-out validation (lodo_val)",
    "oracle": "ORACLE: selected on the target test groups; a diagnostic upper bound, not a valid selection",
    "last": "last evaluation",
    "swad": "SWAD: dense weight average over the validation-loss valley (train.swad)",
}


def select(records: Sequence[dict], rule: str = "source_val", metric: str = "auc") -> dict[str, Any]:
    """The evaluation record chosen by ``rule``, with a ``selection`` entry.

    The entry holds the rule, metric, score, oracle flag and description.

    Only lines with ``"eval"`` are candidates; analysis lines of training callbacks are not.
    """
    if rule not in SELECTION_RULES:
        raise SelectionError(f"unknown selection rule {rule!r}; choose one of {list(SELECTION_RULES)}")
    if metric not in SCORE_METRICS:
        raise SelectionError(f"cannot select on metric {metric!r}; choose one of {list(SCORE_METRICS)}")
    if not records:
        raise SelectionError("no records to select from")
    for i, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise SelectionError(f"record {i} is not an object with an integer 'step'")
    evaluations = [record for record in records if "eval" in record]
    if not evaluations:
        raise SelectionError(f"none of the {len(records)} records is an evaluation (a line with 'eval')")
    if rule != "swad":
        evaluations = [record for record in evaluations if record.get("kind") != SWAD_KIND]
    index, score = SELECTION_RULES[rule](evaluations, metric)
    selection = {
        "rule": rule,
        "metric": metric,
        "score": score,
        "oracle": rule == "oracle",
        "description": RULE_DESCRIPTIONS[rule],
    }
    return {**evaluations[index], "selection": selection}
