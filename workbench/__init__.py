"""RoGA workbench: domain-generalised deepfake detection, with the tools to see why it generalises."""

__version__ = "0.1.0"
