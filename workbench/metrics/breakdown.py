"""Per-domain metric tables from a predictions table (``predictions.csv``, docs/records.md)."""

from __future__ import annotations

import pandas as pd

from workbench.data.manifest import video_keys
from workbench.metrics.binary import (
    METRIC_KEYS,
    SCORE_METRICS,
    check_labels,
    check_probabilities,
    check_videos,
    compute_metrics,
)

REALS_MODES: tuple[str, ...] = ("pooled", "own")


def per_domain_metrics(
    predictions: pd.DataFrame,
    *,
    prob_col: str = "prob_fake",
    domain_col: str = "domain",
    group_col: str | None = "group",
    label_col: str = "label",
    video_col: str | None = "video",
    dataset_col: str | None = "dataset",
    reals: str = "pooled",
    threshold: float = 0.5,
) -> pd.DataFrame:
    """One row of metrics per (evaluation group, domain).

        ``reals="pooled"`` scores a domain that holds only fakes against all reals of the same
        evaluation group (the shared real pool, as for ``source_val/<domain>`` in the records); a domain
        with reals of its own is scored alone. ``reals="own"`` scores every domain alone. The ``reals``
        column says which was used. Without ``group_col`` (``None``) the whole table is one group named
        ``"all"``. Video ids are qualified by dataset and domain (:func:`workbench.data.manifest.video_keys`), so
    equal ids in two domains or datasets stay two videos; ``dataset_col=None`` for a table of one dataset.
    """
    if reals not in REALS_MODES:
        raise ValueError(f"reals={reals!r} is not one of {list(REALS_MODES)}")
    needed = [c for c in (prob_col, domain_col, group_col, label_col, video_col) if c is not None]
    needed += [dataset_col] if video_col is not None and dataset_col is not None else []
    missing = [c for c in needed if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions lack column(s) {missing}; have {list(predictions.columns)}")
    table = pd.DataFrame(
        {
            "group": predictions[group_col].astype(str) if group_col is not None else "all",
            "domain": predictions[domain_col].astype(str),
            "label": check_labels(predictions[label_col], f"column {label_col!r} row", predictions.index),
            "prob_fake": check_probabilities(predictions[prob_col], f"column {prob_col!r} row", predictions.index),
        },
        index=predictions.index,
    )
    if video_col is not None:
        ids = check_videos(predictions[video_col], f"column {video_col!r} row", predictions.index)
        datasets = predictions[dataset_col].astype(str) if dataset_col is not None else ""
        table["video"] = video_keys(pd.DataFrame({"dataset": datasets, "domain": table["domain"], "video": ids}))

    rows = []
    for group, in_group in table.groupby("group", sort=False):
        group_reals = in_group[in_group["label"] == 0]
        for domain, in_domain in in_group.groupby("domain", sort=True):
            only_fakes = bool((in_domain["label"] == 1).all())
            pooled = reals == "pooled" and only_fakes
            subset = pd.concat([in_domain, group_reals]) if pooled else in_domain
            metrics = compute_metrics(
                subset["label"],
                subset["prob_fake"],
                subset["video"] if video_col is not None else None,
                threshold=threshold,
            )
            rows.append({"group": group, "domain": domain, "reals": "pooled" if pooled else "own", **metrics})
    columns = ["group", "domain", "reals", *METRIC_KEYS, *(f"{m}_reason" for m in SCORE_METRICS)]
    return pd.DataFrame(rows).reindex(columns=columns)
