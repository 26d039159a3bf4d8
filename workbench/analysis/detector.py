"""A deepfake detector ready to score face crops: a trained model, its input size and normalisation.

Loaded from a run folder (its selected or a named checkpoint, the run's backbone and image size) or
from a weights file (a backbone name; the image size its ``pretrained_cfg`` states unless given).
Crops reach the model as training reads them: RGB, bilinear resize to the image size, standardised
with the backbone's statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn

from workbench.analysis.attribution import GradCAM
from workbench.data.augment import normalize
from workbench.models import create_model
from workbench.models.factory import input_normalization
from workbench.training.runs import load_run_model, run_config, selected_checkpoint


@dataclass
class Detector:
    """``model`` (eval mode) with the ``image_size`` and ``(mean, std)`` it was trained with; ``source`` names it."""

    model: nn.Module
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str

    def inputs(self, crops_bgr: Sequence[np.ndarray]) -> torch.Tensor:
        """Face crops (BGR ``uint8``) as the model's input batch ``[N, 3, image_size, image_size]``."""
        images = [self.rgb(crop) for crop in crops_bgr]
        batch = torch.from_numpy(np.stack([image.transpose(2, 0, 1) for image in images]))
        return normalize(batch, self.mean, self.std)

    def rgb(self, crop_bgr: np.ndarray) -> np.ndarray:
        """A crop as the model sees it before standardising: RGB ``uint8`` resized as training's image loader does."""
        image = Image.fromarray(cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2RGB))
        if image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.BILINEAR)
        return np.asarray(image, dtype=np.uint8)

    @torch.no_grad()
    def prob_fake(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """The fake probability (softmax of logit 1) of each crop."""
        if not crops_bgr:
            return np.zeros(0)
        device = next(self.model.parameters()).device
        logits = self.model(self.inputs(crops_bgr).to(device))
        return torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy()

    def gradcam(self, crops_bgr: Sequence[np.ndarray], layer: str | None = None) -> np.ndarray:
        """Grad-CAM maps ``[N, image_size, image_size]`` in [0, 1] for the fake class (peak-normalised)."""
        cam = GradCAM(self.model, layer, input_size=self.image_size)
        maps = cam.attribute(self.inputs(crops_bgr), target=1, normalize=True)
        return maps[:, 0].cpu().numpy()


def load_detector(
    model: str | Path,
    *,
    checkpoint: str | None = None,
    selection: str = "source_val",
    architecture: str | None = None,
    image_size: int | None = None,
    device: str | torch.device = "cpu",
) -> Detector:
    """The detector in a run folder (``checkpoint`` under ``checkpoints/``, else the one ``selection`` picks)
    or in a weights file (``architecture``: its timm or DeepfakeBench backbone name)."""
    path = Path(model)
    if path.is_dir():
        config = run_config(path)
        name = checkpoint or selected_checkpoint(path, selection)
        network = load_run_model(path, name, device)
        size = image_size or int(config["data"]["image_size"])
        source = f"{path} ({name})"
    elif path.is_file():
        if architecture is None:
            raise ValueError(
                f"{str(path)!r} is a weights file: name its backbone with --arch (e.g. efficientnet_b4, "
                "deepfakebench_xception)"
            )
        network = create_model(architecture, pretrained=path).to(device).eval()
        size = image_size or int(network.pretrained_cfg["input_size"][-1])
        source = f"{path} ({architecture})"
    else:
        raise FileNotFoundError(f"model {str(path)!r} is neither a run folder nor a weights file")
    mean, std = input_normalization(network)
    return Detector(network, size, mean, std, source)
