"""`Classifier`: a trained attribute classifier loaded once, for any face images.

    clf = Classifier.load("runs/classifier")
    verdict = clf.predict(images)        # (B, 3, H, W) in [-1, 1], any size
    verdict.attr_logits                  # (B, A) probabilities, columns clf.attributes
    verdict.style_logits                 # (B, C) probabilities, columns clf.styles

Images of another size are brought to the classifier's own: a non-square image (a
makeover's 32x40) is first padded back to the square it was cut from (its edge pixels
repeated), then resized. `Filter.load` refuses a classifier run, and this refuses a
filter run, each in one line.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facefilter.inference.filter import pick_device
from facefilter.models.capabilities import Predicts, Verdict
from facefilter.runs.config import RunConfig, read_run_config
from facefilter.runs.weights import load_classifier


class Classifier:
    """Verdicts (attribute and style probabilities) and features of a trained classifier."""

    def __init__(self, family: Predicts, config: RunConfig, device: torch.device):
        self.family, self.config, self.device = family, config, device
        self.size = config.image_size.side
        self.attributes, self.styles = family.attributes, family.styles
        self.path = config.source.parent

    @classmethod
    def load(cls, path: Path | str, device: str | None = None, flag: str = "--classifier"):
        path = Path(path)
        chosen = pick_device(device)  # a bad --device is refused before the model loads
        family = load_classifier(path, flag)
        family.to(chosen)
        return cls(family, read_run_config(path), chosen)

    @property
    def num_features(self) -> int:
        return self.family.num_features

    def fit(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [-1, 1], any size -> (B, 3, S, S) at the classifier's size."""
        height, width = images.shape[-2:]
        if height != width:  # the middle of a square: put back what was cut, as edge pixels
            side = max(height, width)
            left, top = (side - width) // 2, (side - height) // 2
            pad = (left, side - width - left, top, side - height - top)
            images = F.pad(images, pad, mode="replicate")
        if images.shape[-1] == self.size:
            return images
        return F.interpolate(images, size=(self.size, self.size), mode="bilinear",
                             antialias=images.shape[-1] > self.size)  # fmt: skip

    @torch.no_grad()
    def predict(self, images: Tensor, batch_size: int = 128) -> Verdict:
        """Probabilities and features for (N, 3, H, W) images, on the CPU, in batches."""
        parts = [self.family.predict(self.fit(images[i : i + batch_size].to(self.device)))
                 for i in range(0, len(images), batch_size)]  # fmt: skip
        if not parts:
            empty = torch.zeros(0, self.num_features)
            return Verdict(empty, torch.zeros(0, len(self.attributes)),
                           torch.zeros(0, len(self.styles)))  # fmt: skip
        return Verdict(*(torch.cat([getattr(p, f).cpu() for p in parts]) for f in Verdict._fields))

    def feature_net(self) -> nn.Module:
        """A module (B, 3, H, W) in [-1, 1] -> (B, D) pooled features: FID / KID on them."""
        return ClassifierFeatures(self)


class ClassifierFeatures(nn.Module):
    """The classifier's pooled trunk as a feature extractor (the offline stand-in for
    InceptionV3 in FID and KID; not comparable with published figures)."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.num_features
        self.name = f"classifier {classifier.path}"

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier.predict(images).features
