"""Manifest builders: one per dataset family, turning extracted frame trees into labelled manifests.

``BUILDERS`` maps a dataset name to ``build(root, **options) -> DataFrame``; every builder returns a
manifest validated with its files checked under ``root``. Layouts are documented per builder and in
``data_manifests/README.md``. :func:`import_deepfakebench` converts a DeepfakeBench dataset JSON.
"""

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from workbench.data.builders.celebdf import build_celebdf
from workbench.data.builders.deepfakebench import import_deepfakebench
from workbench.data.builders.dfdc import build_dfdc, build_dfdcp
from workbench.data.builders.faceforensics import build_dfd, build_ffpp
from workbench.data.manifest import ManifestError

BUILDERS: dict[str, Callable[..., pd.DataFrame]] = {
    "ffpp": build_ffpp,
    "celebdf": build_celebdf,
    "dfd": build_dfd,
    "dfdc": build_dfdc,
    "dfdcp": build_dfdcp,
}


def build_manifest(name: str, root: str | Path, **options: object) -> pd.DataFrame:
    """Run the builder registered as ``name`` on the frames tree at ``root``."""
    if name not in BUILDERS:
        raise ManifestError(f"unknown dataset {name!r}; builders exist for {sorted(BUILDERS)}")
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"dataset root {str(root)!r} is not a folder")
    return BUILDERS[name](root, **options)


__all__ = ["BUILDERS", "build_manifest", "import_deepfakebench"]
