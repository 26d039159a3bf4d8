"""Hyper-parameter choice after DomainBed: per selection rule, algorithm and backbone, the config variant
with the best mean validation score over its seeds; no test group is looked at unless the rule does."""

from __future__ import annotations

import pandas as pd

from workbench.metrics import LOWER_IS_BETTER
from workbench.training.cells import ReportError
from workbench.training.collect import CELL_KEYS


def tune_variants(runs: pd.DataFrame) -> pd.DataFrame:
    """Hyper-parameter selection after DomainBed: per rule, algorithm and backbone, the best config variant.

    A variant's score is the mean over its seeds of each run's ``selection_score`` (what the rule
    selected the run's record by: source-val metric for ``source_val``, ``lodo_val`` for ``lodo``,
    the target mean for ``oracle``, which is therefore oracle-tuned too); the best (highest, lowest
    for error metrics; ties go to the variant listed first) is chosen, so no test group is looked at
    unless the rule does. Returns ``runs`` (from :func:`workbench.training.collect.collect`) with ``tuning_score`` (the
    variant's mean score), ``tuning_seeds``, ``tuning_incomplete`` (its runs without a ``done`` marker,
    which compete with the records they have; the notes flag them) and ``chosen`` columns. ``last``
    has no score and is refused.
    """
    if (runs["selection"] == "last").any():
        raise ReportError("hyper-parameter tuning needs a rule with a validation score; 'last' has none")
    scores = pd.to_numeric(runs["selection_score"], errors="coerce")
    variant_of = [runs[k] for k in CELL_KEYS]
    by_variant = scores.groupby(variant_of, sort=False)
    incomplete = (~runs["complete"].astype(bool)).groupby(variant_of, sort=False).transform("sum")
    runs = runs.assign(
        tuning_score=by_variant.transform("mean"),
        tuning_seeds=by_variant.transform("count"),
        tuning_incomplete=incomplete.astype(int),
    )
    chosen = pd.Series(False, index=runs.index)
    for cell, members in runs.groupby(["selection", "algorithm", "backbone"], sort=False):
        scored = members.dropna(subset=["tuning_score"])
        if scored.empty:
            raise ReportError(
                f"{dict(zip(['selection', 'algorithm', 'backbone'], cell))}: no run has a selection score to tune on"
            )
        lower = scored["selection_metric"].iloc[0] in LOWER_IS_BETTER
        best = scored["tuning_score"].idxmin() if lower else scored["tuning_score"].idxmax()
        chosen[members.index[members["variant"] == scored.at[best, "variant"]]] = True
    return runs.assign(chosen=chosen)


def tuning_notes(runs: pd.DataFrame) -> pd.DataFrame:
    """Per rule, algorithm and backbone, one line naming the chosen variant and the candidates' scores."""
    rows = []
    for (selection, algorithm, backbone), members in runs.groupby(["selection", "algorithm", "backbone"], sort=False):
        variants = members.drop_duplicates("variant")
        metric = members["selection_metric"].iloc[0]
        candidates = "; ".join(
            f"{'**' if v.chosen else ''}{v.variant or '(default)'}: {v.tuning_score:.4f} ({v.tuning_seeds} seeds"
            f"{f', {v.tuning_incomplete} incomplete' if v.tuning_incomplete else ''}){'**' if v.chosen else ''}"
            for v in variants.itertuples()
        )
        rows.append(
            {
                "selection": selection,
                "algorithm": algorithm,
                "backbone": backbone,
                "tuning": f"{len(variants)} variant(s) by mean {selection} {metric}: {candidates}",
            }
        )
    return pd.DataFrame(rows)
