"""Tests for workbench.training.selection: each rule picks the right step, errors explain themselves."""

from __future__ import annotations

import copy
import json

import pytest

from workbench.training.selection import (
    SELECTION_RULES,
    RecordsError,
    SelectionError,
    improves,
    load_records,
    record_score,
    select,
)


def _record(step, source_val, target_a, target_b, lodo=None, source_eer=None):
    evals = {
        "source_val": {"auc": source_val, "eer": source_eer},
        "target/A": {"auc": target_a},
        "target/B": {"auc": target_b},
    }
    if source_val is None:
        evals["source_val"]["auc_reason"] = "only one class present (n_real=0, n_fake=4); needs real and fake"
    if lodo is not None:
        evals["lodo_val"] = {"auc": lodo}
    return {"step": step, "epoch": step / 100, "algorithm": "erm", "seed": 0, "eval": evals}


RECORDS = [
    # step, source_val, target/A, target/B (target means .55 .75 .625 .8), lodo_val, source eer
    _record(100, 0.80, 0.6, 0.5, lodo=0.70, source_eer=0.20),
    _record(200, 0.90, 0.7, 0.8, lodo=0.60, source_eer=0.10),
    _record(300, 0.90, 0.65, 0.6, lodo=0.75, source_eer=0.15),
    _record(400, 0.85, 0.9, 0.7, source_eer=0.10),
]


def test_registry_names_every_rule():
    assert set(SELECTION_RULES) == {"source_val", "lodo", "oracle", "last", "swad"}


def test_the_swad_record_is_selected_only_by_the_swad_rule():
    swad = {**_record(400, 0.99, 0.99, 0.99), "kind": "swad"}
    records = [*RECORDS, swad]
    for rule in ("source_val", "oracle", "last"):
        assert select(records, rule)["step"] == select(RECORDS, rule)["step"]
        assert "kind" not in select(records, rule)
    chosen = select(records, "swad")
    assert chosen["kind"] == "swad" and chosen["selection"]["score"] == 0.99
    with pytest.raises(SelectionError, match="train.swad.enabled=true"):
        select(RECORDS, "swad")


@pytest.mark.parametrize(
    ("rule", "metric", "step", "score"),
    [
        ("source_val", "auc", 200, 0.90),  # tie with step 300 -> earliest
        ("source_val", "eer", 200, 0.10),  # lower is better; tie with step 400 -> earliest
        ("lodo", "auc", 300, 0.75),  # step 400 has no lodo_val group and is skipped
        ("oracle", "auc", 400, 0.80),  # mean of target/A and target/B
        ("last", "auc", 400, None),
    ],
)
def test_each_rule_picks_the_expected_step(rule, metric, step, score):
    chosen = select(RECORDS, rule=rule, metric=metric)
    assert chosen["step"] == step
    assert chosen["selection"]["rule"] == rule
    assert chosen["selection"]["metric"] == metric
    assert chosen["selection"]["score"] == (pytest.approx(score) if score is not None else None)
    assert chosen["eval"] == next(r["eval"] for r in RECORDS if r["step"] == step)


@pytest.mark.parametrize("rule", ["source_val", "lodo", "oracle"])
@pytest.mark.parametrize("metric", ["auc", "eer"])
def test_keeping_the_best_record_by_record_score_picks_what_select_picks(rule, metric):
    """The trainer's running best (one record at a time) agrees with select() on the whole file."""
    best_step, best_score = None, None
    for record in RECORDS:
        score = record_score(record, rule, metric)
        if improves(score, best_score, metric):
            best_step, best_score = record["step"], score
    if best_step is None:  # eer is only logged for source_val here: select refuses too
        with pytest.raises(SelectionError):
            select(RECORDS, rule=rule, metric=metric)
        return
    chosen = select(RECORDS, rule=rule, metric=metric)
    assert (best_step, best_score) == (chosen["step"], pytest.approx(chosen["selection"]["score"]))


def test_record_scores_by_hand():
    assert record_score(RECORDS[1], "oracle") == pytest.approx(0.75)
    assert record_score(RECORDS[3], "lodo") is None
    assert record_score(RECORDS[0], "source_val", "eer") == 0.20
    assert improves(0.1, 0.2, "eer") and not improves(0.2, 0.2, "auc") and not improves(None, None)
    with pytest.raises(SelectionError, match="'last' has no per-record score"):
        record_score(RECORDS[0], "last")


def test_oracle_is_labelled_as_a_diagnostic():
    oracle = select(RECORDS, rule="oracle")["selection"]
    assert oracle["oracle"] is True
    assert "ORACLE" in oracle["description"] and "not a valid selection" in oracle["description"]
    assert select(RECORDS)["selection"]["oracle"] is False


def test_selection_does_not_modify_the_records():
    before = copy.deepcopy(RECORDS)
    select(RECORDS, rule="oracle")
    assert RECORDS == before


def test_null_metrics_are_skipped():
    records = [_record(100, 0.7, 0.5, 0.5), _record(200, None, 0.5, 0.5), _record(300, 0.6, 0.5, 0.5)]
    assert select(records)["step"] == 100
    records[0]["eval"]["source_val"]["auc"] = None
    assert select(records)["step"] == 300


def test_all_null_metrics_raise_with_the_reason():
    records = [_record(100, None, 0.5, 0.5), _record(200, None, 0.5, 0.5)]
    with pytest.raises(SelectionError, match="null in all 2 records.*only one class present"):
        select(records)


def test_missing_groups_raise_clear_errors():
    no_lodo = [_record(100, 0.8, 0.5, 0.5)]
    with pytest.raises(SelectionError, match="'lodo_val'.*set data.lodo_domain"):
        select(no_lodo, rule="lodo")
    no_target = [{"step": 1, "eval": {"source_val": {"auc": 0.5}}}]
    with pytest.raises(SelectionError, match="target/"):
        select(no_target, rule="oracle")
    with pytest.raises(SelectionError, match="unknown selection rule 'best'"):
        select(RECORDS, rule="best")
    with pytest.raises(SelectionError, match="cannot select on metric 'n'"):
        select(RECORDS, metric="n")
    with pytest.raises(SelectionError, match="no records"):
        select([])
    with pytest.raises(SelectionError, match="record 1"):
        select([RECORDS[0], {"eval": {}}])


def test_every_rule_selects_among_evaluation_lines_only():
    analysis = {"kind": "alignment", "step": 500, "alignment": {"cos": 0.1}}
    swad = {**_record(400, 0.8, 0.8, 0.8), "kind": "swad"}
    records = [*RECORDS, swad, analysis]
    for rule in SELECTION_RULES:
        chosen = select(records, rule=rule)
        assert "eval" in chosen and chosen["step"] == select([*RECORDS, swad], rule=rule)["step"]
    assert select(records, rule="last")["step"] == 400
    with pytest.raises(SelectionError, match="none of the 1 records is an evaluation"):
        select([analysis], rule="last")


def _write_lines(run_dir, lines):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "records.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_load_records_round_trip_skips_blank_lines(tmp_path):
    _write_lines(tmp_path / "run", [json.dumps(r) for r in RECORDS[:2]] + ["", json.dumps(RECORDS[2])])
    assert load_records(tmp_path / "run") == RECORDS[:3]


def test_load_records_names_file_and_line(tmp_path):
    _write_lines(tmp_path / "run", [json.dumps(RECORDS[0]), "", '{"step": 200, "eval": {'])
    with pytest.raises(RecordsError, match=r"run/records.jsonl: line 3: invalid JSON"):
        load_records(tmp_path / "run")
    _write_lines(tmp_path / "run2", [json.dumps(RECORDS[0]), '{"epoch": 2}'])
    with pytest.raises(RecordsError, match=r"run2/records.jsonl: line 2: .*integer 'step'"):
        load_records(tmp_path / "run2")
    with pytest.raises(FileNotFoundError, match="missing/records.jsonl"):
        load_records(tmp_path / "missing")
