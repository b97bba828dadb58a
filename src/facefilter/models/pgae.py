"""`pgae`: the feature autoencoder grown progressively (Karras et al. 2017, for an
autoencoder rather than a GAN), as the feature-changer write-up trains it.

Training starts at 8 px and doubles the resolution until `--size` (64 by default):
8 -> 16 -> 32 -> 64. Each new resolution brings an encoder block (with its own
from-RGB 1x1 conv) in front and a decoder block (with its own to-RGB 1x1 conv) at the
end, faded in: while `alpha` rises from 0 to 1 the new blocks' output is blended with
the previous resolution's, upsampled. Then the new resolution trains alone for a
phase, and the next one fades in.

    phase:   0        1          2        3          4        5          6 ...
    trains:  8 px     16 fades   16 px    32 fades   32 px    64 fades   64 px to the end

Phases last `--phase-steps` steps (0: the run is cut into equal phases, the last
resolution keeping two of them; that length is fixed when training starts, so a run
resumed with a raised `--max-steps` keeps its schedule). Resolution and alpha are a
function of the step
(`growth`), set before every step, so a run resumed in the middle of a fade goes on
exactly; they live in the network's buffers, so a saved model, its ONNX export and
its sample grids all run at the resolution training had reached. Layers follow
`dcae` (3x3 conv, batch norm, LeakyReLU, max pooling, nearest upsampling), with the
widths doubling as the resolution halves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facefilter.errors import UserError
from facefilter.models.base import Progress
from facefilter.models.dcae import conv_bn
from facefilter.models.featureae import (
    Autoencoder,
    CodeHead,
    FeatureAEConfig,
    FeatureAutoencoder,
)

START_SIZE = 8  # the write-up's (and Karras et al.'s 4 x 4, one doubling later)
BOTTOM = 4  # the map the encoder ends on, before the linear layer to the code
MAX_SIZE = 256


@dataclass
class PGAEConfig(FeatureAEConfig):
    """The progressively grown autoencoder: 8 px up to --size (64 px by default)."""

    train_defaults: ClassVar[dict[str, Any]] = {"batch_size": 64, "size": 64}  # write-up: 64

    phase_steps: int = 0  # steps per fade and per stable phase; 0: the run in equal phases

    def validate(self, image_size: int) -> None:
        super().validate(image_size)
        if self.phase_steps < 0:
            raise UserError(f"--phase-steps {self.phase_steps} must be >= 0 (0: automatic)")
        if image_size < 2 * START_SIZE or image_size > MAX_SIZE or image_size & (image_size - 1):
            raise UserError(
                f"pgae grows from {START_SIZE} px by doubling: --size must be a power of two "
                f"from {2 * START_SIZE} to {MAX_SIZE}, not {image_size}"
            )


def resolutions(size: int) -> list[int]:
    """8, 16, ..., size."""
    return [START_SIZE * 2**i for i in range((size // START_SIZE).bit_length())]


def phase_length(total: int, levels: int, phase_steps: int) -> int:
    """Steps per phase: `phase_steps`, or the run cut into 2 * levels equal phases."""
    return phase_steps if phase_steps > 0 else max(1, total // (2 * levels))


def growth(step: int, length: int, levels: int) -> tuple[int, float]:
    """(level, alpha) at `step`: level 0 trains alone for one phase; each further level
    fades in over a phase (alpha 0 -> 1), then trains at alpha 1 for one; the last level
    stays to the end."""
    phase = step // length
    if phase >= 2 * levels - 2:
        return levels - 1, 1.0
    level = (phase + 1) // 2
    fading = phase % 2 == 1
    return level, (step % length) / length if fading else 1.0


class PGAENet(Autoencoder):
    """Encoder and decoder blocks for every resolution, of which `level` are in use."""

    level: Tensor  # () long: index of the current resolution in `self.sizes`
    alpha: Tensor  # () float: how far the current resolution has faded in (1: fully)
    phase: Tensor  # () long: steps per phase, fixed at the first step (0: not yet)

    def __init__(self, config: FeatureAEConfig, size: int) -> None:
        super().__init__()
        self.sizes = resolutions(size)
        width = {s: min(config.channels * size // s, config.max_channels)
                 for s in [BOTTOM, *self.sizes]}  # fmt: skip
        self.from_rgb = nn.ModuleList(nn.Sequential(nn.Conv2d(3, width[s], 1), nn.LeakyReLU(0.2))
                                      for s in self.sizes)  # fmt: skip
        self.down = nn.ModuleList(nn.Sequential(*conv_bn(width[s], width[s // 2]), nn.MaxPool2d(2))
                                  for s in self.sizes)  # fmt: skip
        self.up = nn.ModuleList(nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                                              *conv_bn(width[s // 2], width[s]))
                                for s in self.sizes)  # fmt: skip
        self.to_rgb = nn.ModuleList(nn.Conv2d(width[s], 3, 1) for s in self.sizes)
        self.shape = (width[BOTTOM], BOTTOM, BOTTOM)
        self.head = CodeHead(width[BOTTOM] * BOTTOM**2, config.latent_dim, config.variational)
        self.register_buffer("level", torch.tensor(len(self.sizes) - 1))
        self.register_buffer("alpha", torch.tensor(1.0))
        self.register_buffer("phase", torch.tensor(0))
        # Host copies of the buffers, so a step never waits on the device to read them;
        # None after weights are loaded, until read once.
        self.host: tuple[int, float, int] | None = None  # (level, alpha, phase)
        self.register_load_state_dict_post_hook(lambda module, _: setattr(module, "host", None))

    def set_growth(self, level: int, alpha: float, phase: int | None = None) -> None:
        self.level.fill_(level)
        self.alpha.fill_(alpha)
        if phase is not None:
            self.phase.fill_(phase)
        # as the float32 buffer holds it, so host and device compute alike
        self.host = (level, float(np.float32(alpha)), int(phase or self.growth[2]))

    @property
    def growth(self) -> tuple[int, float, int]:
        """(level, alpha, phase): the buffers, read from the device only after a load."""
        if self.host is None:
            self.host = (int(self.level), float(self.alpha), int(self.phase))
        return self.host

    @property
    def working_size(self) -> int:
        return self.sizes[self.growth[0]]

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        level, alpha, _ = self.growth
        hidden = self.down[level](self.from_rgb[level](images))  # (B, C, s/2, s/2)
        if level > 0 and alpha < 1:  # the previous resolution's entry, faded out
            previous = self.from_rgb[level - 1](F.avg_pool2d(images, 2))
            hidden = alpha * hidden + (1 - alpha) * previous
        for index in range(level - 1, -1, -1):
            hidden = self.down[index](hidden)  # down to (B, C, 4, 4)
        return self.head.encode(hidden.flatten(1))

    def decode(self, codes: Tensor) -> Tensor:
        level, alpha, _ = self.growth
        hidden = self.head.decode(codes).view(-1, *self.shape)
        for index in range(level):
            hidden = self.up[index](hidden)  # up to (B, C, s/2, s/2)
        rgb = self.to_rgb[level](self.up[level](hidden))
        if level > 0 and alpha < 1:  # the previous resolution's picture, upsampled
            previous = F.interpolate(self.to_rgb[level - 1](hidden), scale_factor=2.0)
            rgb = alpha * rgb + (1 - alpha) * previous
        return torch.tanh(rgb)


class PGAE(FeatureAutoencoder):
    name = "pgae"
    config: PGAEConfig
    unused_parameters = True  # blocks not grown yet get no gradient

    def make_autoencoder(self) -> Autoencoder:
        return PGAENet(self.config, self.image_size)

    def prepare_step(self, progress: Progress) -> None:
        net = self.autoencoder(live=True)
        assert isinstance(net, PGAENet)
        levels = len(net.sizes)
        phase = net.growth[2]
        if phase == 0:  # the first step: the phase length is fixed for the run, so a
            # resume with a raised --max-steps keeps growing instead of shrinking back
            phase = phase_length(progress.total, levels, self.config.phase_steps)
        # a --train-time budget's span is fixed after its first steps: only then the phase
        kept = phase if progress.settled or self.config.phase_steps > 0 else 0
        net.set_growth(*growth(progress.step, phase, levels), phase=kept)

    def growth_note(self) -> str:
        net = self.autoencoder()
        assert isinstance(net, PGAENet)
        level, alpha, _ = net.growth
        return f", fading in (alpha {alpha:.2f})" if alpha < 1 and level > 0 else ""
