"""Data: manifests, frame images, domain-balanced sampling, evaluation groups, augmentation."""

from workbench.data.augment import Augment, normalize
from workbench.data.images import FrameDataset, collate_frames, load_image
from workbench.data.manifest import (
    ManifestError,
    domain_roles,
    read_manifest,
    read_manifests,
    validate_manifest,
    write_manifest,
)
from workbench.data.protocol import Protocol, evaluation_groups, training_real_pool
from workbench.data.sampling import DomainBatchSampler, step_generator

__all__ = [
    "Augment",
    "DomainBatchSampler",
    "FrameDataset",
    "ManifestError",
    "Protocol",
    "collate_frames",
    "domain_roles",
    "evaluation_groups",
    "load_image",
    "normalize",
    "read_manifest",
    "read_manifests",
    "step_generator",
    "training_real_pool",
    "validate_manifest",
    "write_manifest",
]
