"""Detector backbones: any timm model with a 2-logit head, never touching the network."""

from workbench.models.factory import (
    backbone_normalization,
    classifier_split,
    create_model,
    input_normalization,
    load_pretrained_file,
    penultimate_features,
)

__all__ = [
    "backbone_normalization",
    "classifier_split",
    "create_model",
    "input_normalization",
    "load_pretrained_file",
    "penultimate_features",
]
