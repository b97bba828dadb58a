"""The project's one pixel convention: uint8 0..255 pictures <-> float32 in [-1, 1].

Every conversion between the two goes through these two functions, so the scale,
the rounding and the clamping are the same in training data, inference, export,
pictures and metrics. Both keep the layout they are given ((B, 3, H, W), (H, W, 3), ...).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def from_pixels(pixels: Tensor | np.ndarray) -> Tensor:
    """uint8 0..255 -> float32 in [-1, 1] (x / 127.5 - 1: 0 -> -1, 255 -> 1 exactly)."""
    tensor = torch.as_tensor(pixels)
    return tensor.to(torch.float32) / 127.5 - 1.0


def to_pixels(images: Tensor) -> Tensor:
    """float in [-1, 1] -> uint8, clamped and rounded to nearest (inverts `from_pixels`)."""
    return ((images.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def to_unit(images: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], for torchvision's picture helpers."""
    return (images.clamp(-1, 1) + 1) / 2
