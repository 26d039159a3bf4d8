"""The shared pieces of a results cell: numeric run values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from workbench.training.cells import ReportError, numeric_column


def test_numeric_column_keeps_numbers_and_missing_values_and_names_the_run_of_anything_else():
    cell = pd.DataFrame({"run_dir": ["runs/a", "runs/b", "runs/c"], "g:auc": [0.75, None, "0.5"]})
    values = numeric_column(cell, "g:auc")
    assert values.iloc[0] == 0.75 and math.isnan(values.iloc[1]) and values.iloc[2] == 0.5
    cell.loc[2, "g:auc"] = "n/a"
    with pytest.raises(ReportError, match=r"^runs/c: g:auc = 'n/a' is not a number$"):
        numeric_column(cell, "g:auc")
