"""trVAE: one conditional VAE moves a face between any number of classes.

Lotfollahi et al. 2020, "Conditional out-of-distribution generation for unpaired
data using transfer VAE". The encoder sees the image with its class (one-hot
label maps as extra input channels); the decoder sees the code with a class
(one-hot concatenated to z). The decoder's first layer (the "MMD layer") is
pulled together across classes by a maximum mean discrepancy term, so the code
cannot carry the class: the decoder must take it from the label.

Training always encodes and decodes with an image's own class. A transfer
encodes with the source class and decodes with the target class, from the
posterior mean (deterministic at inference).

Strength s interpolates the decoder's class condition from source (0) to target
(1) and fades out the reconstruction residual (input minus its own-class decode,
the detail a VAE drops) as s goes to 1: s = 0 returns the input exactly, s = 1
the plain transfer, s > 1 extrapolates the condition.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, overload

import torch
from torch import Tensor, nn

from facefilter.errors import UserError
from facefilter.models import losses, schedules
from facefilter.models.base import ModelConfig, Progress, StepLogs, strength_column
from facefilter.models.capabilities import Translates
from facefilter.models.targets import Direction, Target
from facefilter.pictures import kinds_grid

RECON_LOSSES = ("l1", "mse")  # "vgg" (perceptual) would slot in here


@dataclass
class TrVAEConfig(ModelConfig):
    """Hyperparameters of the transfer VAE (each one a CLI flag)."""

    # The MMD compares classes inside a batch and needs two faces of a class to do it: at
    # batch size 1 it is always 0, and the VAE decodes one mean face for every input.
    train_defaults: ClassVar[dict[str, Any]] = {"batch_size": 32, "size": 64}
    tunable: ClassVar[tuple[str, ...]] = ("recon", "beta", "gamma", "kl_warmup_steps",
                                          "mmd_warmup_steps", "lr", "beta1", "beta2",
                                          "decay_start")  # fmt: skip

    limits: ClassVar[dict[str, int]] = {"latent_dim": 8192, "mmd_dim": 8192, "channels": 1024}
    latent_dim: int = 64  # enough for pose, shape and colours of an aligned face crop
    channels: tuple[int, ...] = (32, 64, 128, 256)  # one stride-2 stage each: 128 px -> 8x8
    mmd_dim: int = 128  # width of the first decoder layer, where the MMD applies (as the paper)
    # The class enters every decoder stage again after the MMD layer: the MMD makes that
    # layer class-free, so a decoder that only sees it there must fight the MMD to draw
    # the class (the paper's MLP design, False, reconstructs and transfers worse on faces).
    reinject_class: bool = True  # the class enters each decoder stage again after the MMD
    recon: str = "l1"  # l1 or mse, mean over pixels; L1 gives sharper VAE decodes than MSE
    # KL is summed over the code (~50 nats) while recon is a per-pixel mean (~0.1): a small
    # beta keeps the prior a regulariser, not the goal, so decodes (and transfers) stay sharp.
    beta: float = 1e-4  # KL weight: small, as the KL is a sum and the recon a pixel mean
    # MMD weight: 0 leaves the class in the code (no transfer). 0.3 blurred short runs towards
    # one face (600 steps at 32 px: identity top-1 0.19 of 32; 0.1 gave 0.34 and 0.47).
    gamma: float = 0.1
    kl_warmup_steps: int = 2000  # let the decoder learn to read the code before KL squeezes it
    mmd_warmup_steps: int = 1000  # recon first, then pull the classes together
    lr: float = 1e-3  # Adam; 3e-3 is faster on tiny nets but collapsed wider ones to the mean
    beta1: float = 0.9  # Adam defaults: no adversary here, so no need for GAN's 0.5
    beta2: float = 0.999
    decay_start: float = 0.5  # lr constant for the first half, then linearly to 0 (sharper end)

    def validate(self, image_size: int) -> None:
        """Raise UserError for a value that cannot work, naming the value and the fix."""
        if self.recon not in RECON_LOSSES:
            raise UserError(f"--recon {self.recon!r} unknown; choose one of {RECON_LOSSES}")
        positive = {"latent_dim": self.latent_dim, "mmd_dim": self.mmd_dim, "lr": self.lr}
        for field, value in positive.items():
            if value <= 0:
                raise UserError(f"--{field.replace('_', '-')} {value} must be > 0")
        if not self.channels or min(self.channels) <= 0:
            raise UserError(f"--channels {self.channels} needs at least one width, all > 0")
        for field, value in {"beta": self.beta, "gamma": self.gamma}.items():
            if value < 0:
                raise UserError(f"--{field} {value} must be >= 0")
        for field, steps in {"kl_warmup_steps": self.kl_warmup_steps,
                             "mmd_warmup_steps": self.mmd_warmup_steps}.items():  # fmt: skip
            if steps < 0:
                raise UserError(f"--{field.replace('_', '-')} {steps} must be >= 0")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise UserError(f"--beta1 {self.beta1} / --beta2 {self.beta2} must lie in [0, 1)")
        if not 0 <= self.decay_start <= 1:
            raise UserError(f"--decay-start {self.decay_start} must lie in [0, 1] (1 = no decay)")
        factor = 2 ** len(self.channels)
        if image_size % factor != 0:
            raise UserError(
                f"image size {image_size} is not divisible by {factor} (2 ** {len(self.channels)}"
                f" stages of --channels); use a multiple of {factor} or fewer channels"
            )


class VAEPass(NamedTuple):
    """What one training pass of the VAE returns."""

    image: Tensor  # (B, 3, H, W) reconstruction in [-1, 1]
    mean: Tensor  # (B, latent_dim)
    logvar: Tensor  # (B, latent_dim)
    mmd_features: Tensor  # (B, mmd_dim): the first decoder layer's activations


def _group_norm(channels: int) -> nn.GroupNorm:
    # Per-sample statistics: train and eval behave the same and a transfer does
    # not depend on what else is in the batch.
    return nn.GroupNorm(min(8, channels), channels)


def _down(in_channels: int, out_channels: int) -> nn.Sequential:
    """Halve the resolution: 4x4 stride-2 conv (DCGAN style)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1),
        _group_norm(out_channels),
        nn.LeakyReLU(0.2),
    )


def _up(in_channels: int, out_channels: int) -> nn.Sequential:
    """Double the resolution: nearest upsample + 3x3 conv (no checkerboard artefacts)."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2.0, mode="nearest"),
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        _group_norm(out_channels),
        nn.LeakyReLU(0.2),
    )


class TrVAENet(nn.Module):
    """Conditional convolutional VAE whose class enters the encoder and the decoder."""

    class_codes: Tensor  # (K, K) identity: row c is class c's one-hot code

    def __init__(self, config: TrVAEConfig, num_classes: int, image_size: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.bottom_size = image_size // 2 ** len(config.channels)  # e.g. 128 // 16 = 8
        self.bottom_channels = config.channels[-1]
        bottom_numel = self.bottom_channels * self.bottom_size**2
        # Row c is class c's one-hot code; a buffer so ONNX sees a Gather, not a OneHot.
        self.register_buffer("class_codes", torch.eye(num_classes), persistent=False)

        widths = (3 + num_classes, *config.channels)
        self.encoder = nn.Sequential(*(_down(a, b) for a, b in itertools.pairwise(widths)))
        self.to_mean = nn.Linear(bottom_numel, config.latent_dim)
        self.to_logvar = nn.Linear(bottom_numel, config.latent_dim)

        self.mmd_layer = nn.Sequential(
            nn.Linear(config.latent_dim + num_classes, config.mmd_dim), nn.LeakyReLU(0.2)
        )
        self.reinject_class = config.reinject_class
        extra = num_classes if config.reinject_class else 0  # label channels after the MMD layer
        self.from_mmd = nn.Sequential(
            nn.Linear(config.mmd_dim + extra, bottom_numel), nn.LeakyReLU(0.2)
        )
        up_widths = config.channels[::-1]  # (256, 128, 64, 32): the last stage keeps 32
        self.up_stages = nn.ModuleList(
            _up(a + extra, b) for a, b in itertools.pairwise((*up_widths, up_widths[-1]))
        )
        self.to_image = nn.Sequential(nn.Conv2d(up_widths[-1], 3, 3, padding=1), nn.Tanh())

    def encode(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, H, W), (B,) long -> posterior mean and log-variance, each (B, latent_dim)."""
        return self.encode_codes(images, self.class_codes[labels])

    def encode_codes(self, images: Tensor, codes: Tensor) -> tuple[Tensor, Tensor]:
        """As `encode`, with the class as one-hot codes (B, K)."""
        label_maps = codes[:, :, None, None].expand(-1, -1, *images.shape[2:])  # (B, K, H, W)
        features = self.encoder(torch.cat([images, label_maps], dim=1)).flatten(1)  # (B, C*h*w)
        return self.to_mean(features), self.to_logvar(features)

    def decode(self, latent: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """(B, latent_dim), (B,) -> image (B, 3, H, W) in [-1, 1] and MMD features (B, mmd_dim)."""
        return self.decode_codes(latent, self.class_codes[labels])

    def decode_codes(self, latent: Tensor, codes: Tensor) -> tuple[Tensor, Tensor]:
        """Decode with class codes (B, K): one-hot rows, or blends of them for a strength."""
        mmd_features = self.mmd_layer(torch.cat([latent, codes], dim=1))
        hidden = self.from_mmd(self._with_class(mmd_features, codes))
        hidden = hidden.view(-1, self.bottom_channels, self.bottom_size, self.bottom_size)
        for stage in self.up_stages:
            hidden = stage(self._with_class(hidden, codes))
        return self.to_image(hidden), mmd_features

    def _with_class(self, features: Tensor, codes: Tensor) -> Tensor:
        """Append the one-hot `codes` (B, K) to (B, C) or (B, C, h, w) features if re-injecting."""
        if not self.reinject_class:
            return features
        if features.dim() == 4:
            codes = codes[:, :, None, None].expand(-1, -1, *features.shape[2:])
        return torch.cat([features, codes], dim=1)

    @overload
    def forward(self, images: Tensor, source: Tensor, target: Tensor) -> Tensor: ...
    @overload
    def forward(self, images: Tensor, source: Tensor, target: None = None) -> VAEPass: ...
    def forward(
        self, images: Tensor, source: Tensor, target: Tensor | None = None
    ) -> Tensor | VAEPass:
        """With `target`: the transfer from class `source` to `target` (posterior mean).

        Without: one training pass with the image's own class, sampling the code with
        the global torch RNG (reseeded per step by the engine, so resume is exact).
        Training goes through `forward` so DDP wrappers see it.
        """
        mean, logvar = self.encode(images, source)
        if target is not None:
            return self.decode(mean, target)[0]
        latent = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        reconstruction, mmd_features = self.decode(latent, source)
        return VAEPass(reconstruction, mean, logvar, mmd_features)


class TrVAETranslator(nn.Module):
    """Faces of one class in, the same faces in another class out, at a strength."""

    source: Tensor  # (K,) one-hot code of the class the input images belong to
    target: Tensor  # (K,) one-hot code of the class to render them in

    def __init__(self, vae: TrVAENet, source_index: int, target_index: int) -> None:
        super().__init__()
        self.vae = vae
        self.register_buffer("source", vae.class_codes[source_index].clone())
        self.register_buffer("target", vae.class_codes[target_index].clone())

    def forward(self, images: Tensor, strength: Tensor) -> Tensor:
        """(B, 3, H, W) in [-1, 1], (B,) -> (B, 3, H, W) in [-1, 1]; see the module docstring."""
        batch = images.shape[0]
        weight = strength.to(images.dtype).reshape(-1, 1)  # (B, 1)
        source = self.source.expand(batch, -1)  # (B, K)
        latent, _ = self.vae.encode_codes(images, source)
        moved, _ = self.vae.decode_codes(latent, torch.lerp(source, self.target, weight))
        own, _ = self.vae.decode_codes(latent, source)
        residual = images - own  # (B, 3, H, W): what the decode of its own class misses
        keep = 1 - strength_column(strength, images).clamp(0, 1)
        return (moved + keep * residual).clamp(-1, 1)


class TrVAE(Translates):
    """The trVAE family: one network `vae`, one optimizer, any number of classes."""

    name = "trvae"
    data_kind = "classes"
    config: TrVAEConfig

    def build_networks(self) -> dict[str, nn.Module]:
        if not isinstance(self.config, TrVAEConfig):
            raise TypeError(f"trvae needs a TrVAEConfig, got {type(self.config).__name__}")
        return {"vae": TrVAENet(self.config, len(self.domains), self.image_size)}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        params = self.nets["vae"].parameters()
        return {"vae": torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))}

    def lr_factor(self, progress: Progress) -> float:
        return schedules.constant_then_linear_decay(
            progress.step, progress.total, self.config.decay_start
        )

    def loss_weights(self, step: int) -> tuple[float, float]:
        """(beta, gamma) at `step`: KL and MMD weights after their linear warm-ups."""
        cfg = self.config
        beta = cfg.beta * schedules.linear_warmup(step, cfg.kl_warmup_steps)
        gamma = cfg.gamma * schedules.linear_warmup(step, cfg.mmd_warmup_steps)
        return beta, gamma

    def train_step(self, batch: dict[str, Tensor], progress: Progress) -> StepLogs:
        images, labels = batch["image"], batch["label"]  # (B, 3, H, W), (B,)
        vae_pass: VAEPass = self.nets["vae"](images, labels)
        recon_fn = losses.l1 if self.config.recon == "l1" else losses.mse
        recon, logs = recon_fn(vae_pass.image, images, "recon")
        kl, kl_logs = losses.gaussian_kl(vae_pass.mean, vae_pass.logvar)
        mmd, mmd_logs = losses.mmd_across_classes(vae_pass.mmd_features, labels, len(self.domains))
        beta, gamma = self.loss_weights(progress.step)
        loss = recon + beta * kl + gamma * mmd

        optimizer = self.opts["vae"]
        optimizer.zero_grad(set_to_none=True)
        self.backward(loss)
        optimizer.step()
        return {**logs, **kl_logs, **mmd_logs, "beta": beta, "gamma": gamma, "loss": loss.detach()}

    def directions(self) -> list[Direction]:
        """Every class to every other class."""
        pairs = itertools.permutations(self.domains, 2)
        return [Direction(source, Target(target)) for source, target in pairs]

    def translator(self, direction: Direction) -> nn.Module:
        """A frozen copy of the VAE with source and target fixed, in eval mode."""
        assert direction.source is not None, "trVAE directions always name their source"
        vae = copy.deepcopy(self.inference_modules()["vae"])
        assert isinstance(vae, TrVAENet)
        source = self.domains.index(direction.source)
        module = TrVAETranslator(vae, source, self.domains.index(direction.target.name)).eval()
        module.requires_grad_(False)
        return module

    @torch.no_grad()
    def sample_grid(self, batch: dict[str, Tensor]) -> Tensor:
        """Up to 4 faces in columns; rows: input, its reconstruction, then its transfer to
        each class in `self.domains` order (its own class again). (3, H', W') in [0, 1]."""
        vae = self.inference_modules()["vae"]  # the EMA copy where kept: what apply runs
        was_training = vae.training
        vae.eval()
        images, labels = batch["image"][:4].to(self.device), batch["label"][:4].to(self.device)
        rows = [images, vae(images, labels, labels)]
        for class_index in range(len(self.domains)):
            rows.append(vae(images, labels, torch.full_like(labels, class_index)))
        vae.train(was_training)
        kinds = ["input", "reconstructed", *(f"as {name}" for name in self.domains)]
        return kinds_grid(rows, kinds, "trvae: each face (column) in every class")
