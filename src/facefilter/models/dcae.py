"""`dcae`: the deep convolutional autoencoder of the feature-changer write-up.

Convolution, batch norm and max pooling down to a small map, a linear layer to the
code (100 values), and the mirror image up: nearest upsampling, convolution, batch
norm. 32 px by default, like the write-up; any multiple of 8 from 32 to 128 works
(the encoder halves the image until the map is 4 to 15 px a side).

    (B, 3, 32, 32) -> conv-bn-lrelu-pool x3 -> (B, 128, 4, 4) -> linear -> (B, 100)
    (B, 100) -> linear -> (B, 128, 4, 4) -> up-conv-bn-lrelu x3 -> conv -> tanh -> (B, 3, 32, 32)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from facefilter.errors import UserError
from facefilter.models.featureae import (
    Autoencoder,
    CodeHead,
    FeatureAEConfig,
    FeatureAutoencoder,
)

MIN_SIZE, MAX_SIZE = 32, 128


@dataclass
class DCAEConfig(FeatureAEConfig):
    """The deep convolutional autoencoder: 32 px and a code of 100 by default."""

    def validate(self, image_size: int) -> None:
        super().validate(image_size)
        if not MIN_SIZE <= image_size <= MAX_SIZE or image_size % 8:
            raise UserError(
                f"dcae works at {MIN_SIZE} to {MAX_SIZE} px in steps of 8, not {image_size}; "
                "use e.g. --size 32 or 64"
            )


def halvings(size: int) -> int:
    """How often the encoder halves `size`: while the half is whole and at least 4 px."""
    count = 0
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        count += 1
    return count


def conv_bn(in_ch: int, out_ch: int) -> list[nn.Module]:
    """3x3 conv (no bias: batch norm removes it), batch norm, LeakyReLU 0.2."""
    return [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch),
            nn.LeakyReLU(0.2, inplace=True)]  # fmt: skip


class DCAENet(Autoencoder):
    """Encoder and decoder of a fixed size; a VAE when `variational` (mean and log-variance)."""

    def __init__(self, config: FeatureAEConfig, size: int) -> None:
        super().__init__()
        stages = halvings(size)
        widths = [min(config.channels * 2**i, config.max_channels) for i in range(stages)]
        self.size, self.bottom = size, size // 2**stages
        self.shape = (widths[-1], self.bottom, self.bottom)
        flat = widths[-1] * self.bottom**2
        encoder: list[nn.Module] = []
        for in_ch, out_ch in zip([3, *widths], widths, strict=False):
            encoder += [*conv_bn(in_ch, out_ch), nn.MaxPool2d(2)]
        self.encoder = nn.Sequential(*encoder, nn.Flatten())
        self.head = CodeHead(flat, config.latent_dim, config.variational)
        decoder: list[nn.Module] = []
        for in_ch, out_ch in zip(widths[::-1], [*widths[::-1][1:], widths[0]], strict=True):
            decoder += [nn.Upsample(scale_factor=2.0, mode="nearest"), *conv_bn(in_ch, out_ch)]
        self.decoder = nn.Sequential(*decoder, nn.Conv2d(widths[0], 3, 3, padding=1), nn.Tanh())

    @property
    def working_size(self) -> int:
        return self.size

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.head.encode(self.encoder(images))

    def decode(self, codes: Tensor) -> Tensor:
        return self.decoder(self.head.decode(codes).view(-1, *self.shape))


class DCAE(FeatureAutoencoder):
    name = "dcae"
    config: DCAEConfig

    def make_autoencoder(self) -> Autoencoder:
        return DCAENet(self.config, self.image_size)
