"""The append-only ``records.jsonl`` of a run (format: docs/records.md)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

from workbench.atomic import atomic_write_text

RECORDS_FILE = "records.jsonl"


class RecordsError(ValueError):
    """A records file that cannot be read; the message names the file and line."""


def parse_record(path: Path, line_number: int, line: str) -> dict[str, Any]:
    """One line of ``path`` as a record: a JSON object with an integer ``step``, else :class:`RecordsError`."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        why = f"invalid JSON ({exc.msg} at column {exc.colno})"
        raise RecordsError(f"{path}: line {line_number}: {why}") from exc
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        raise RecordsError(f"{path}: line {line_number}: expected a JSON object with an integer 'step'")
    return record


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become null (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class RecordWriter:
    """Appends one JSON object per line and flushes it to disk immediately."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / RECORDS_FILE

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(_clean(record)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def truncate_after(self, step: int, drop_kinds: Collection[str] = ()) -> int:
        """Drop lines written after ``step`` (they belong to an interrupted stretch that will be redone), and
        lines of the ``drop_kinds`` (written after the last checkpoint, when training finishes).

        An unparsable final line is the torn write of such a stretch (each line is on disk before the
        checkpoint that follows it) and is dropped too; an unparsable line elsewhere raises
        :class:`RecordsError`. Returns how many lines were dropped.
        """
        if not self.path.exists():
            return 0
        lines = self.path.read_text(encoding="utf-8").splitlines()
        numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
        kept = []
        for position, (number, line) in enumerate(numbered, start=1):
            try:
                record = parse_record(self.path, number, line)
            except RecordsError:
                if position == len(numbered):  # the torn final write
                    break
                raise
            if record["step"] <= step and record.get("kind") not in drop_kinds:
                kept.append(line)
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))
        return len(lines) - len(kept)
