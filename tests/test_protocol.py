"""The protocol's domain roles: sources train, targets are tested, a LODO domain is neither."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import SOURCE, TARGET

from workbench.data.manifest import ManifestError
from workbench.data.protocol import Protocol, evaluation_groups


def test_a_lodo_domain_that_is_neither_source_nor_target_adds_lodo_val(tiny_manifest: Path) -> None:
    manifest = pd.read_csv(tiny_manifest)
    groups = evaluation_groups(manifest, Protocol(tuple(SOURCE[:2]), (TARGET,), lodo_domain=SOURCE[2]))
    assert set(manifest.iloc[groups["lodo_val"]]["domain"]) == {SOURCE[2], "R"}


@pytest.mark.parametrize(
    ("role", "protocol"),
    [
        ("target", Protocol(tuple(SOURCE[:2]), (TARGET,), lodo_domain=TARGET)),
        ("training source", Protocol(tuple(SOURCE), (TARGET,), lodo_domain=SOURCE[0])),
    ],
)
def test_a_lodo_domain_that_is_also_a_source_or_target_is_refused(
    tiny_manifest: Path, role: str, protocol: Protocol
) -> None:
    with pytest.raises(ManifestError, match=rf"lodo_domain '{protocol.lodo_domain}' must not also be a {role}"):
        protocol.check(pd.read_csv(tiny_manifest))
