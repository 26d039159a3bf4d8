"""Which manifest rows train and which evaluate: source, held-out target and leave-one-out groups.

Group names and their meaning are documented in docs/records.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.data.manifest import ManifestError, domain_roles


@dataclass(frozen=True)
class Protocol:
    """Source domains to train on, held-out targets to evaluate, and an optional LODO domain."""

    source_domains: tuple[str, ...]
    target_domains: tuple[str, ...] = ()
    lodo_domain: str | None = None
    target_split: str = "test"

    def check(self, manifest: pd.DataFrame) -> None:
        """Reject unknown or misused domain names, naming them."""
        roles = domain_roles(manifest)
        named = list(self.source_domains) + list(self.target_domains) + ([self.lodo_domain] if self.lodo_domain else [])
        unknown = [d for d in named if d not in roles]
        if unknown:
            raise ManifestError(f"domain(s) {unknown} not in the manifest; it has {sorted(roles)}")
        if not self.source_domains:
            raise ManifestError("at least one source domain is needed")
        for domain in self.source_domains:
            if roles[domain] != "fake":
                raise ManifestError(
                    f"source domain {domain!r} must hold only fakes (its reals belong in a real domain); "
                    f"it is {roles[domain]!r}"
                )
        overlap = set(self.source_domains) & set(self.target_domains)
        if overlap:
            raise ManifestError(f"domain(s) {sorted(overlap)} are both source and target")
        if self.lodo_domain in self.source_domains:
            raise ManifestError(f"lodo_domain {self.lodo_domain!r} must not also be a training source domain")
        if self.lodo_domain in self.target_domains:
            raise ManifestError(
                f"lodo_domain {self.lodo_domain!r} must not also be a target domain: selecting on "
                "its validation split would tune the model on a tested domain"
            )

    def training_domains(self) -> list[str]:
        return list(self.source_domains)


def source_datasets(manifest: pd.DataFrame, domains: Sequence[str]) -> list[str]:
    return sorted(manifest.loc[manifest["domain"].isin(domains), "dataset"].unique())


def real_rows(manifest: pd.DataFrame, datasets: Sequence[str], split: str) -> np.ndarray:
    """Rows of real-only domains of ``datasets`` in ``split`` (the shared real pool)."""
    roles = domain_roles(manifest)
    real_domains = [d for d, role in roles.items() if role == "real"]
    mask = manifest["domain"].isin(real_domains) & manifest["dataset"].isin(datasets) & (manifest["split"] == split)
    return np.flatnonzero(mask.to_numpy())


def _fake_rows(manifest: pd.DataFrame, domains: Sequence[str], split: str) -> np.ndarray:
    mask = manifest["domain"].isin(domains) & (manifest["split"] == split) & (manifest["label"] == 1)
    return np.flatnonzero(mask.to_numpy())


def _require(rows: np.ndarray, what: str) -> np.ndarray:
    if len(rows) == 0:
        raise ManifestError(f"{what} is empty")
    return rows


def evaluation_groups(manifest: pd.DataFrame, protocol: Protocol) -> dict[str, np.ndarray]:
    """Map each evaluation group name to the manifest rows it scores (see docs/records.md)."""
    protocol.check(manifest)
    roles = domain_roles(manifest)
    groups: dict[str, np.ndarray] = {}
    datasets = source_datasets(manifest, protocol.source_domains)
    for split in ("val", "test"):
        reals = _require(real_rows(manifest, datasets, split), f"real pool of {datasets} in split {split!r}")
        fakes = _fake_rows(manifest, protocol.source_domains, split)
        groups[f"source_{split}"] = np.concatenate([_require(fakes, f"source fakes in split {split!r}"), reals])
        for domain in protocol.source_domains:
            domain_fakes = _require(_fake_rows(manifest, [domain], split), f"domain {domain!r} in split {split!r}")
            groups[f"source_{split}/{domain}"] = np.concatenate([domain_fakes, reals])
    for domain in protocol.target_domains:
        in_split = (manifest["domain"] == domain) & (manifest["split"] == protocol.target_split)
        rows = _require(
            np.flatnonzero(in_split.to_numpy()), f"target domain {domain!r} in split {protocol.target_split!r}"
        )
        if roles[domain] == "fake":
            own = source_datasets(manifest, [domain])
            rows = np.concatenate(
                [
                    rows,
                    _require(
                        real_rows(manifest, own, protocol.target_split), f"real pool of {own} for target {domain!r}"
                    ),
                ]
            )
        groups[f"target/{domain}"] = rows
    if protocol.lodo_domain:
        own = source_datasets(manifest, [protocol.lodo_domain])
        fakes = _require(
            _fake_rows(manifest, [protocol.lodo_domain], "val"), f"lodo domain {protocol.lodo_domain!r} in split 'val'"
        )
        groups["lodo_val"] = np.concatenate(
            [fakes, _require(real_rows(manifest, own, "val"), f"real pool of {own} in split 'val'")]
        )
    return groups


def training_real_pool(manifest: pd.DataFrame, protocol: Protocol) -> np.ndarray:
    """Real training frames shared by all source domains."""
    return real_rows(manifest, source_datasets(manifest, protocol.source_domains), "train")
