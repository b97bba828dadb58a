"""Differentiable augmentation for discriminators (DiffAugment, Zhao et al. 2020).

A discriminator shown a few hundred images learns them by heart: its scores stop
saying anything about the generator's images, and the generator collapses or learns
the set's quirks. DiffAugment puts every image a discriminator sees, real and
generated alike, and in the generator's step as in its own, through the same kind of
random transformation. The transformations are differentiable, so the generator still
learns through them, and since fakes are transformed as reals are, the generator is
not asked to produce the transformed images (as it would be if only reals were).

    color        brightness shift in [-0.5, 0.5], saturation x [0, 2], contrast x [0.5, 1.5]
    translation  a shift of up to 1/8 of the side each way, zero filled
    cutout       a square of half the side zeroed, at a random place

Each image draws its own transformation from torch's global generator, which the
training engine seeds from (seed, step, rank) before every step: the draws are a
function of (seed, step), so a resumed run sees the very augmentations an unbroken
one would. Images are in [-1, 1], so zero filling is mid-grey.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from facefilter.errors import UserError
from facefilter.models.blocks import instance_noise

TRANSLATION_RATIO = 0.125  # the paper's: up to 1/8 of the side each way
CUTOUT_RATIO = 0.5  # the paper's: a square of half the side


def _uniform(images: Tensor, low: float, high: float) -> Tensor:
    """(B, 1, 1, 1) uniform draws in [low, high), one per image."""
    draws = torch.rand(images.shape[0], 1, 1, 1, device=images.device, dtype=images.dtype)
    return low + (high - low) * draws


def color(images: Tensor) -> Tensor:
    """Brightness, saturation and contrast, each image its own factors."""
    images = images + _uniform(images, -0.5, 0.5)
    grey = images.mean(dim=1, keepdim=True)
    images = grey + (images - grey) * _uniform(images, 0.0, 2.0)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return mean + (images - mean) * _uniform(images, 0.5, 1.5)


def translation(images: Tensor) -> Tensor:
    """Shift each image by whole pixels, up to 1/8 of each side, filling with zeros."""
    count, _, height, width = images.shape
    most_y, most_x = round(height * TRANSLATION_RATIO), round(width * TRANSLATION_RATIO)
    device = images.device
    shift_y = torch.randint(-most_y, most_y + 1, (count, 1, 1), device=device)
    shift_x = torch.randint(-most_x, most_x + 1, (count, 1, 1), device=device)
    rows = torch.arange(height, device=device).view(1, height, 1) - shift_y  # (B, H, 1)
    cols = torch.arange(width, device=device).view(1, 1, width) - shift_x  # (B, 1, W)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)  # (B, H, W)
    flat = rows.clamp(0, height - 1) * width + cols.clamp(0, width - 1)  # (B, H, W)
    # A gather, not a resampling: pixels move whole, and the gradient flows back to them.
    index = flat.reshape(count, 1, -1).expand(-1, images.shape[1], -1)
    moved = images.flatten(2).gather(2, index).view_as(images)
    return moved * inside.unsqueeze(1).to(images.dtype)


def cutout(images: Tensor) -> Tensor:
    """Zero a square of half each side, centred anywhere (clipped at the edges)."""
    count, _, height, width = images.shape
    cut_y, cut_x = round(height * CUTOUT_RATIO), round(width * CUTOUT_RATIO)
    device = images.device
    centre_y = torch.randint(0, height + 1 - cut_y % 2, (count, 1, 1), device=device)
    centre_x = torch.randint(0, width + 1 - cut_x % 2, (count, 1, 1), device=device)
    top, left = centre_y - cut_y // 2, centre_x - cut_x // 2  # may lie outside: clipped
    rows = torch.arange(height, device=device).view(1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, width)
    inside = (rows >= top) & (rows < top + cut_y) & (cols >= left) & (cols < left + cut_x)
    return images * (~inside).unsqueeze(1).to(images.dtype)


TRANSFORMS: dict[str, Callable[[Tensor], Tensor]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}


def parse_policy(text: str, flag: str = "--diff-augment") -> tuple[str, ...]:
    """`color,translation,cutout` -> the transforms in that order; "" -> none."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in names:
        if name not in TRANSFORMS:
            choices = ", ".join(TRANSFORMS)
            raise UserError(
                f"{flag} {text!r}: unknown transform {name!r}; choose from {choices} "
                "(comma-separated), or '' for none"
            )
    if len(set(names)) != len(names):
        raise UserError(f"{flag} {text!r} names a transform twice; give each once")
    return names


def diff_augment(images: Tensor, policy: str) -> Tensor:
    """`images` (B, 3, H, W) through each transform `policy` names, in order."""
    for name in parse_policy(policy):
        images = TRANSFORMS[name](images)
    return images


def shown_to_critic(images: Tensor, policy: str, noise: float) -> Tensor:
    """What a discriminator is shown of `images`: augmented as `policy` says
    (--diff-augment), then with instance noise of std `noise`."""
    return instance_noise(diff_augment(images, policy), noise)
