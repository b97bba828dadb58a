"""deep-makeover's networks: a near-identity encoder-decoder ResNet and a ResNet critic.

The generator encodes only twice (the write-up: encoding further lost the person),
through residual blocks with a bypass around every convolution. Its residual
branches start near zero and its projections (1x1 convolutions between widths) near
the identity, so before any training it returns almost exactly its input, the best
first guess when input and output are both faces.

deep-makeover halved the resolution with average pooling, which made that starting
point a 4x4-blurred face. Here the halving is a space-to-depth reshuffle
(`PixelUnshuffle`), lossless, and the doubling its inverse (`PixelShuffle`), so the
near-identity start is the input to within the initial noise: L1 about 0.0005.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from facefilter.models.blocks import NormKind, norm_layer

RESIDUAL_INIT = 0.1  # deep-makeover's scale: uniform(+-0.1 / (k * k * c_in * c_out))


def near_zero_(conv: nn.Conv2d) -> nn.Conv2d:
    """Residual weights tiny and centred on zero: the branch adds almost nothing at first."""
    out_ch, in_ch, kh, kw = conv.weight.shape
    bound = RESIDUAL_INIT / (kh * kw * in_ch * out_ch)
    with torch.no_grad():
        conv.weight.uniform_(-bound, bound)
        if conv.bias is not None:
            conv.bias.zero_()
    return conv


def near_identity_(conv: nn.Conv2d) -> nn.Conv2d:
    """A projection that passes channel i to channel i (as far as both exist), plus tiny noise."""
    near_zero_(conv)
    out_ch, in_ch, kh, kw = conv.weight.shape
    with torch.no_grad():
        for i in range(min(in_ch, out_ch)):
            conv.weight[i, i, kh // 2, kw // 2] += 1.0
    return conv


class ResidualUnit(nn.Module):
    """x + conv(act(norm(x))): one convolution with its own bypass (deep-makeover's block)."""

    def __init__(self, channels: int, norm: NormKind, act: nn.Module) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            norm_layer(norm)(channels), act, near_zero_(nn.Conv2d(channels, channels, 3, padding=1))
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.branch(x)


def residual_block(
    in_ch: int, out_ch: int, norm: NormKind, act: Callable[[], nn.Module], units: int = 2
) -> nn.Sequential:
    """A near-identity projection when the width changes, then `units` residual units."""
    layers: list[nn.Module] = []
    if in_ch != out_ch:
        layers.append(near_identity_(nn.Conv2d(in_ch, out_ch, 1)))
    layers += [ResidualUnit(out_ch, norm, act()) for _ in range(units)]
    return nn.Sequential(*layers)


class MakeoverGenerator(nn.Module):
    """(B, 3, H, W) -> (B, 3, H, W), H and W multiples of 4; unbounded output (apply clamps).

    `masked`: the network paints a colour and a mask, and the output is the input with
    the colour blended in where the mask says, x + m * (colour - x), m = sigmoid(logit)
    (GANimation's attention). Where m falls to 0 the input passes untouched, its fine
    grain too, which a face repainted through every layer loses.
    """

    def __init__(
        self, encoder: Sequence[int], decoder: Sequence[int], width: int, norm: NormKind,
        masked: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.masked = masked
        layers: list[nn.Module] = []
        channels = 3
        for units in encoder:  # each level: a block, then half the resolution
            layers += [residual_block(channels, units, norm, nn.ReLU), nn.PixelUnshuffle(2)]
            channels = units * 4
        for units in decoder:  # two blocks, then twice the resolution
            layers += [residual_block(channels, units, norm, nn.ReLU),
                       residual_block(units, units, norm, nn.ReLU), nn.PixelShuffle(2)]  # fmt: skip
            channels = units // 4
        layers += [residual_block(channels, width, norm, nn.ReLU),
                   residual_block(width, width, norm, nn.ReLU),
                   near_identity_(nn.Conv2d(width, 3, 1))]  # fmt: skip
        if masked:  # the mask's logit, 0 at first: with colour ~ x, any mask gives ~ x
            mask = nn.Conv2d(width, 1, 1)
            for param in mask.parameters():  # weight and bias
                nn.init.zeros_(param)
            colour = layers.pop()
            layers.append(_Heads(colour, mask))
        self.net = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        out: Tensor = self.net(images)
        if self.masked:
            colour, logit = out[:, :3], out[:, 3:]
            out = images + torch.sigmoid(logit) * (colour - images)
        return out


class _Heads(nn.Module):
    """The colour and the mask's logit from the same features, as one (B, 4, H, W)."""

    def __init__(self, colour: nn.Module, mask: nn.Module) -> None:
        super().__init__()
        self.colour, self.mask = colour, mask

    def forward(self, features: Tensor) -> Tensor:
        return torch.cat([self.colour(features), self.mask(features)], dim=1)


class MakeoverCritic(nn.Module):
    """A ResNet judge: residual blocks, each followed by 2x average pooling; one score per image.

    No normalisation: a gradient penalty is taken per image, which batch statistics would
    mix across the batch (Gulrajani et al. 2017).
    """

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, padding=1)]
        channels = widths[0]
        for units in widths:
            layers += [residual_block(channels, units, "none", _lrelu), nn.AvgPool2d(2)]
            channels = units
        layers += [nn.LeakyReLU(0.2), nn.Conv2d(channels, 1, 3, padding=1)]
        self.net = nn.Sequential(*layers)
        for module in self.modules():  # the near-identity start is the generator's idea only
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0.2)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B,) scores."""
        out: Tensor = self.net(images).mean(dim=(1, 2, 3))
        return out


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2)
