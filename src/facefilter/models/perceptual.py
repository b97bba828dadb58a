"""VGG19 features for the deep-feature-consistent loss (Hou et al. 2016, "DFC-VAE").

Only the layers the loss reads are built: up to relu3_1 that is 12 of VGG19's 37
feature layers and 0.56 M of its 143 M parameters, so the helper costs a few
convolutions per step instead of a whole ImageNet classifier. Layer indices follow
torchvision's `vgg19().features`, so its state dict loads key for key
(`facefilter.pretrained.load_vgg19_layers`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

# torchvision's vgg19().features: index of the ReLU after each block's first conv
VGG19_RELU = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu5_1": 29}
DFC_LAYERS = ("relu1_1", "relu2_1", "relu3_1")  # Hou et al.'s VAE-123: "the first three"
_CONFIG_E = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
             512, 512, 512, 512, "M", 512, 512, 512, 512, "M")  # fmt: skip  # VGG19's layers
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_prefix(count: int) -> nn.Sequential:
    """The first `count` layers of VGG19's feature extractor, randomly initialised."""
    layers: list[nn.Module] = []
    channels = 3
    for item in _CONFIG_E:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            assert isinstance(item, int)
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=False)]
            channels = item
    return nn.Sequential(*layers[:count])


class VGGFeatures(nn.Module):
    """Images in [-1, 1] -> VGG19 activations at `layers` (ImageNet-normalised input,
    which the write-up's upstream skips: VGG was trained on normalised images)."""

    mean: Tensor
    std: Tensor

    def __init__(self, layers: Sequence[str] = DFC_LAYERS) -> None:
        super().__init__()
        unknown = [name for name in layers if name not in VGG19_RELU]
        if unknown or not layers:
            raise ValueError(f"unknown VGG19 layers {unknown}; choose from {list(VGG19_RELU)}")
        self.taps = sorted(VGG19_RELU[name] for name in layers)
        self.layers = vgg19_prefix(self.taps[-1] + 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    @property
    def depth(self) -> int:
        """How many of VGG19's feature layers this keeps (what a weights file must hold)."""
        return len(self.layers)

    def forward(self, images: Tensor) -> list[Tensor]:
        """(B, 3, H, W) in [-1, 1] -> one (B, C, H', W') activation per tap, shallow first."""
        hidden = ((images + 1) / 2 - self.mean) / self.std
        features = []
        for index, layer in enumerate(self.layers):
            hidden = layer(hidden)
            if index in self.taps:
                features.append(hidden)
        return features
