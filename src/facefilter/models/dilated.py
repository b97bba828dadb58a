"""A discriminator that sees the whole face: dilated convolutions after a PatchGAN stem.

Gokaslan et al. 2018 ("Improving Shape Deformation in Unsupervised Image-to-Image
Translation", GANimorph) found CycleGAN's 70x70 PatchGAN blind to the shape of a whole
object: every patch of a photo face with anime colours looks fine to it, big eyes or
not. Their discriminator keeps the stride-2 stem and then widens the view without
losing resolution: 3x3 convolutions dilated 2, 4, 8, whose output is concatenated
with their input (a skip, so local texture still reaches the decision), merged by a
3x3 conv and mapped to one score per position.

Here the chain of dilations doubles until the receptive field of every output
position, corners included, covers the whole training image (at least GANimorph's
three: 2, 4, 8, which reach 302 px: enough up to 128 px; 256 px adds a 16), so it
adapts to the size instead of being fixed for 128 px. Widths follow `ndf`
(ndf, 2ndf, 4ndf in the stem, 4ndf after), half of GANimorph's 128..512, so its cost
stays near the PatchGAN's; norms and LeakyReLU slopes are CycleGAN's.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from facefilter.models.blocks import NormKind, conv_norm_act, strided_stem

STEM_LAYERS = 3  # stride-2 4x4 convs before the dilated chain (total stride 8)
MIN_DILATIONS = (2, 4, 8)  # GANimorph's chain


def dilations_for(image_size: int) -> tuple[int, ...]:
    """Dilation rates, doubling from 2, until every score sees the whole image: a score
    at a corner is centred there, so its receptive field must span twice the image."""
    rates = list(MIN_DILATIONS)
    while receptive_field(tuple(rates)) < 2 * image_size:
        rates.append(rates[-1] * 2)
    return tuple(rates)


def receptive_field(rates: tuple[int, ...]) -> int:
    """Receptive field in input pixels of one output position, worked back to the input.

    Each layer adds (kernel - 1) * dilation * stride-so-far: the stem's 4x4 stride-2 convs
    give 4, 10, 22 at stride 8; then the 3x3 conv, the dilated 3x3s, the merge 3x3 and the
    final 4x4 (all stride 1) add 2*8, 2*rate*8 each, 2*8 and 3*8.
    """
    field, stride = 1, 1
    for _ in range(STEM_LAYERS):
        field, stride = field + 3 * stride, stride * 2
    for kernel, dilation in [(3, 1), *((3, rate) for rate in rates), (3, 1), (4, 1)]:
        field += (kernel - 1) * dilation * stride
    return field


class DilatedDiscriminator(nn.Module):
    """(B, 3, H, W) -> (B, 1, H/8, W/8) scores, each seeing the whole training image."""

    def __init__(
        self, in_ch: int = 3, ndf: int = 64, image_size: int = 128, norm: NormKind = "instance"
    ) -> None:
        super().__init__()
        stem, channels = strided_stem(in_ch, ndf, STEM_LAYERS, norm)  # the PatchGAN's stem
        self.stem = nn.Sequential(*stem, self._conv(channels, channels, norm))
        self.rates = dilations_for(image_size)
        self.dilated = nn.Sequential(
            *(self._conv(channels, channels, norm, rate) for rate in self.rates)
        )
        self.merge = nn.Sequential(
            self._conv(2 * channels, channels, norm),
            nn.ZeroPad2d((1, 2, 1, 2)),  # a 4x4 kernel keeps the size with uneven padding
            nn.Conv2d(channels, 1, 4, 1, 0),
        )

    @staticmethod
    def _conv(in_ch: int, out_ch: int, norm: NormKind, dilation: int = 1) -> nn.Sequential:
        """3x3, stride 1, zero padding ("same" size), norm, LeakyReLU 0.2."""
        return conv_norm_act(in_ch, out_ch, 3, 1, norm, "lrelu", "zeros", dilation)

    def forward(self, images: Tensor) -> Tensor:
        local = self.stem(images)  # (B, 4ndf, H/8, W/8)
        wide = self.dilated(local)  # same size, each position sees the whole image
        return self.merge(torch.cat([local, wide], dim=1))  # the skip: texture still counts
