"""Detector backbones: any timm model with a 2-logit head, never touching the network."""

from workbench.models.factory import create_model, input_normalization, load_pretrained_file, penultimate_features

__all__ = ["create_model", "input_normalization", "load_pretrained_file", "penultimate_features"]
