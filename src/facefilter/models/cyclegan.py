"""CycleGAN (Zhu et al. 2017): unpaired translation between two domains.

Two ResNet generators (`gen_ab`: A -> B, `gen_ba`: B -> A) and two PatchGAN
discriminators (`disc_a` judges domain-A images, `disc_b` domain-B images),
trained with the least-squares GAN loss, an L1 cycle loss (A -> B -> A must give
A back) and an L1 identity loss (a B image fed to `gen_ab` should come out
unchanged), with a pool of past fakes for the discriminators.

`cyclegan-lite` is the same family with tuned defaults: fewer residual blocks
and feature maps, so it runs in real time on a CPU at 128 px.

Strength is an output-space blend, `x + s * (G(x) - x)`: the generator has no
path that returns its input (a feature-space blend at s = 0 would still be a
decode, not the photo), while the blend gives exactly the input at 0, exactly
the model at 1, a partial filter between, and an exaggerated one above 1.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from facefilter.errors import UserError
from facefilter.models import losses, schedules
from facefilter.models.base import ModelConfig, Progress, StepLogs, strength_column
from facefilter.models.blocks import (
    NORM_KINDS,
    ImagePool,
    NormKind,
    PatchDiscriminator,
    ResnetGenerator,
    init_weights,
    set_requires_grad,
)
from facefilter.models.capabilities import Translates
from facefilter.models.diffaugment import parse_policy, shown_to_critic
from facefilter.models.dilated import DilatedDiscriminator
from facefilter.models.targets import Direction, Target
from facefilter.pictures import kinds_grid
from facefilter.sizes import ImageSize

N_DOWN = 2  # stride-2 convs in each generator: images must be divisible by 4
DISCRIMINATORS = ("patch", "dilated")
DiscKind = Literal["patch", "dilated"]


@dataclass
class CycleGANConfig(ModelConfig):
    # The paper trains at batch size 1 (instance norm makes that work); 128 px as the
    # face-to-anime write-ups do.
    train_defaults: ClassVar[dict[str, Any]] = {"batch_size": 1, "size": 128}
    tunable: ClassVar[tuple[str, ...]] = (
        "input_noise", "lambda_cycle", "lambda_identity", "lr", "beta1", "beta2", "decay_start",
        "fused_adam", "diff_augment",
    )  # fmt: skip

    limits: ClassVar[dict[str, int]] = {"ngf": 1024, "ndf": 1024, "n_blocks": 64,
                                        "n_layers_d": 8, "pool_size": 100_000}  # fmt: skip
    ngf: int = 64  # generator feature maps after the stem (CycleGAN paper)
    ndf: int = 64  # discriminator feature maps in the first layer (CycleGAN paper)
    n_blocks: int | None = None  # residual blocks; None: 9 at >= 256 px, 6 below (the paper)
    n_layers_d: int = 3  # stride-2 convs in the PatchGAN: 70x70 patches; 16x16 map at 128 px
    # patch: 70x70 PatchGAN, judges texture (the paper); dilated: GANimorph's dilated D,
    # every score sees the whole face, so it can judge shape (big eyes, small chin)
    disc: DiscKind = "patch"
    input_noise: float = 0.0  # std of Gaussian noise on D's inputs, decaying to 0 by the run's end
    norm: NormKind = "instance"  # per-image statistics: batch size 1 works, as in the paper
    lambda_cycle: float = 10.0  # cycle L1 weight (the paper's lambda)
    lambda_identity: float = 0.5  # identity L1 weight, times lambda_cycle; 0 disables
    pool_size: int = 50  # past fakes shown to D (Shrivastava et al.); 0 disables
    lr: float = 2e-4  # Adam lr for G and D (the paper's; stable on faces too)
    beta1: float = 0.5  # Adam beta1 lowered from 0.9: steadier GAN training (DCGAN)
    beta2: float = 0.999  # Adam default
    decay_start: float = 0.5  # constant lr for this fraction of steps, then linear to 0
    fused_adam: bool = False  # fused Adam kernel: faster on GPU, off for portability
    ema_decay: float = 0.0  # > 0 keeps an EMA of each generator for apply (0.999: StarGAN v2)
    # transforms every image a discriminator sees goes through, real and fake alike
    # (DiffAugment): "color,translation,cutout" for a target set of a few hundred images
    diff_augment: str = ""

    def validate(self, image_size: int) -> None:
        counts = {"ngf": self.ngf, "ndf": self.ndf, "n_layers_d": self.n_layers_d}
        for field, value in counts.items():
            if value < 1:
                raise UserError(f"--{field.replace('_', '-')} {value} must be at least 1")
        if self.n_blocks is not None and self.n_blocks < 0:
            raise UserError(f"--n-blocks {self.n_blocks} must be 0 or more")
        if self.norm not in NORM_KINDS:
            raise UserError(f"--norm {self.norm!r} unknown; choose one of {', '.join(NORM_KINDS)}")
        weights = {"lambda_cycle": self.lambda_cycle, "lambda_identity": self.lambda_identity}
        for field, weight in weights.items():
            if weight < 0:
                raise UserError(f"--{field.replace('_', '-')} {weight} must be >= 0")
        if self.disc not in DISCRIMINATORS:
            raise UserError(f"--disc {self.disc!r} unknown; choose {' or '.join(DISCRIMINATORS)}")
        if not math.isfinite(self.input_noise) or self.input_noise < 0:
            raise UserError(f"--input-noise {self.input_noise} must be >= 0 (0: no noise)")
        if self.pool_size < 0:
            raise UserError(f"--pool-size {self.pool_size} must be >= 0 (0 disables the pool)")
        if self.lr <= 0:
            raise UserError(f"--lr {self.lr} must be > 0")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise UserError(f"--beta1 {self.beta1} / --beta2 {self.beta2} must lie in [0, 1)")
        if not 0 <= self.decay_start <= 1:
            raise UserError(f"--decay-start {self.decay_start} must lie in [0, 1] (1 = no decay)")
        if not 0 <= self.ema_decay < 1:
            raise UserError(f"--ema-decay {self.ema_decay} must lie in [0, 1) (0 = no EMA)")
        parse_policy(self.diff_augment)
        if image_size % 2**N_DOWN:
            raise UserError(f"--size {image_size} must be divisible by {2**N_DOWN} for CycleGAN")
        # Instance norm needs 2x2 maps: the generator halves twice, the PatchGAN
        # n_layers_d + 1 times before its last norm.
        smallest = max(2 ** (N_DOWN + 1), 2 ** (self.n_layers_d + 1))
        if image_size < smallest:
            raise UserError(
                f"--size {image_size} is too small for the discriminator's {self.n_layers_d} "
                f"halvings; use at least {smallest} (or fewer --n-layers-d)"
            )

    def resolved_n_blocks(self, image_size: int) -> int:
        if self.n_blocks is not None:
            return self.n_blocks
        return 9 if image_size >= 256 else 6


@dataclass
class CycleGANLiteConfig(CycleGANConfig):
    ngf: int = 32  # half the maps: ~1/4 of the multiply-adds
    ndf: int = 32  # D shrunk with G so neither side dominates
    n_blocks: int | None = 3  # fewer than the original 6 resblocks: real time on a CPU


class CycleGAN(Translates):
    """Two generators, two discriminators, LSGAN + cycle + identity losses."""

    name = "cyclegan"
    data_kind = "unpaired"
    config: CycleGANConfig

    def __init__(
        self, config: ModelConfig, domains: Sequence[str], image_size: int | ImageSize, *,
        training: bool = True,
    ) -> None:  # fmt: skip
        if not isinstance(config, CycleGANConfig):
            raise TypeError(f"CycleGAN needs a CycleGANConfig, got {type(config).__name__}")
        if len(domains) != 2:
            raise UserError(f"CycleGAN translates between exactly two domains, got {list(domains)}")
        super().__init__(config, domains, image_size, training=training)
        self.pool_a = ImagePool(config.pool_size)  # past fake A images, for disc_a
        self.pool_b = ImagePool(config.pool_size)  # past fake B images, for disc_b

    # --- construction ----------------------------------------------------------------
    def build_networks(self) -> dict[str, nn.Module]:
        cfg = self.config
        n_blocks = cfg.resolved_n_blocks(self.image_size)
        nets: dict[str, nn.Module] = {
            "gen_ab": ResnetGenerator(3, 3, cfg.ngf, n_blocks, N_DOWN, cfg.norm),
            "gen_ba": ResnetGenerator(3, 3, cfg.ngf, n_blocks, N_DOWN, cfg.norm),
        }
        for net in nets.values():
            init_weights(net, "normal", 0.02)
        return nets

    def build_training_networks(self) -> dict[str, nn.Module]:
        nets = {"disc_a": self._discriminator(), "disc_b": self._discriminator()}
        for net in nets.values():
            init_weights(net, "normal", 0.02)
        return nets

    def _discriminator(self) -> nn.Module:
        cfg = self.config
        if cfg.disc == "dilated":
            return DilatedDiscriminator(3, cfg.ndf, self.image_size, cfg.norm)
        return PatchDiscriminator(3, cfg.ndf, cfg.n_layers_d, cfg.norm)

    def ema_networks(self) -> tuple[str, ...]:
        return ("gen_ab", "gen_ba") if self.config.ema_decay > 0 else ()

    def ema_decay(self) -> float:
        return self.config.ema_decay

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        groups = {
            "gen": itertools.chain(
                self.nets["gen_ab"].parameters(), self.nets["gen_ba"].parameters()
            ),
            "disc": itertools.chain(
                self.nets["disc_a"].parameters(), self.nets["disc_b"].parameters()
            ),
        }
        fused = True if cfg.fused_adam else None  # None: torch picks foreach / for-loop
        return {
            name: torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused)
            for name, params in groups.items()
        }

    # --- training ----------------------------------------------------------------------
    def train_step(self, batch: dict[str, Tensor], progress: Progress) -> StepLogs:
        real_a, real_b = batch["real_a"], batch["real_b"]  # (B, 3, H, W) each
        # Under domain randomisation (`train --randomize`) the inputs went through a random
        # camera and the clean images come too: the cycle and identity terms ask for those
        # back and the critics see only them, so the camera is undone rather than encoded.
        clean = (batch.get("clean_a", real_a), batch.get("clean_b", real_b))
        noise = self.config.input_noise * schedules.linear_decay(progress.step, progress.total)
        fake_a, fake_b, logs = self._generator_step(real_a, real_b, noise, clean)
        logs |= self._discriminator_step(*clean, fake_a, fake_b, noise)
        if self.config.input_noise > 0:
            logs["input_noise"] = noise
        return logs

    def _generator_step(
        self, real_a: Tensor, real_b: Tensor, noise: float, clean: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, Tensor, StepLogs]:
        cfg, gen_ab, gen_ba = self.config, self.nets["gen_ab"], self.nets["gen_ba"]
        # D frozen: no parameter grads. Called unwrapped (no DDP) because its
        # parameters get no gradient in this backward, which DDP would wait for.
        set_requires_grad([self.nets["disc_a"], self.nets["disc_b"]], False)
        disc_a, disc_b = self.unwrapped("disc_a"), self.unwrapped("disc_b")
        self.opts["gen"].zero_grad(set_to_none=True)

        fake_b = gen_ab(real_a)  # (B, 3, H, W)
        rec_a = gen_ba(fake_b)
        fake_a = gen_ba(real_b)
        rec_b = gen_ab(fake_a)
        policy = cfg.diff_augment
        gan_ab, logs = losses.lsgan_generator(
            disc_b(shown_to_critic(fake_b, policy, noise)), "g_gan_ab"
        )
        gan_ba, more = losses.lsgan_generator(
            disc_a(shown_to_critic(fake_a, policy, noise)), "g_gan_ba"
        )
        logs |= more
        clean_a, clean_b = clean
        cycle_a, more = losses.l1(rec_a, clean_a, "cycle_a")
        logs |= more
        cycle_b, more = losses.l1(rec_b, clean_b, "cycle_b")
        logs |= more
        total = gan_ab + gan_ba + cfg.lambda_cycle * (cycle_a + cycle_b)

        weight_idt = cfg.lambda_cycle * cfg.lambda_identity
        if weight_idt > 0:
            # A generator fed an image already in its target domain should leave it alone.
            idt_a, more = losses.l1(gen_ba(real_a), clean_a, "idt_a")
            logs |= more
            idt_b, more = losses.l1(gen_ab(real_b), clean_b, "idt_b")
            logs |= more
            total = total + weight_idt * (idt_a + idt_b)

        self.backward(total)
        self.opts["gen"].step()
        logs["g_total"] = total.detach()
        return fake_a.detach(), fake_b.detach(), logs

    def _discriminator_step(
        self, real_a: Tensor, real_b: Tensor, fake_a: Tensor, fake_b: Tensor, noise: float
    ) -> StepLogs:
        set_requires_grad([self.nets["disc_a"], self.nets["disc_b"]], True)
        self.opts["disc"].zero_grad(set_to_none=True)
        pooled_a, pooled_b = self.pool_a.query(fake_a), self.pool_b.query(fake_b)
        loss_a, logs = self._disc_loss("disc_a", real_a, pooled_a, noise, "d_a")
        loss_b, more = self._disc_loss("disc_b", real_b, pooled_b, noise, "d_b")
        logs |= more
        self.backward(loss_a + loss_b)
        self.opts["disc"].step()
        return logs

    def _disc_loss(
        self, name: str, real: Tensor, fake: Tensor, noise: float, log_name: str
    ) -> tuple[Tensor, StepLogs]:
        # One D call on real and fake together: DDP allows one forward per backward.
        shown = shown_to_critic(torch.cat([real, fake]), self.config.diff_augment, noise)
        logits = self.nets[name](shown)  # (2B, 1, h, w)
        real_logits, fake_logits = logits.split([real.shape[0], fake.shape[0]])
        return losses.lsgan_discriminator(real_logits, fake_logits, log_name)

    def lr_factor(self, progress: Progress) -> float:
        return schedules.constant_then_linear_decay(
            progress.step, progress.total, self.config.decay_start
        )

    def extra_state(self) -> dict[str, Tensor]:
        state = {f"pool_a.{k}": v for k, v in self.pool_a.state_dict().items()}
        state |= {f"pool_b.{k}": v for k, v in self.pool_b.state_dict().items()}
        return state

    def load_extra_state(self, state: dict[str, Tensor]) -> None:
        for prefix, pool in (("pool_a.", self.pool_a), ("pool_b.", self.pool_b)):
            if f"{prefix}count" not in state:
                raise UserError(
                    f"the resume state has no {prefix}count (image pool); resume from a "
                    "checkpoint written by a CycleGAN run, or start a new run"
                )
            pool.load_state_dict(
                {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
            )

    # --- inference ---------------------------------------------------------------------
    def directions(self) -> list[Direction]:
        """A -> B with `gen_ab`, B -> A with `gen_ba`: each domain from the other."""
        a, b = self.domains
        return [Direction(a, Target(b)), Direction(b, Target(a))]

    def translator(self, direction: Direction) -> nn.Module:
        """The generator towards `direction.target`, with the output-space strength blend."""
        towards_b = direction.target.name == self.domains[1]
        return StrengthBlend(self.inference_modules()["gen_ab" if towards_b else "gen_ba"]).eval()

    @torch.no_grad()
    def sample_grid(self, batch: dict[str, Tensor]) -> Tensor:
        """Rows: real A, fake B, rec A, real B, fake A, rec B (up to 4 images each)."""
        shown = self.inference_modules()  # the EMA generators where kept: what apply runs
        gen_ab, gen_ba = shown["gen_ab"], shown["gen_ba"]
        was_training = {name: net.training for name, net in self.nets.items()}
        self.eval()
        try:
            real_a, real_b = batch["real_a"][:4], batch["real_b"][:4]  # (n, 3, H, W)
            fake_b, fake_a = gen_ab(real_a), gen_ba(real_b)
            rows = [real_a, fake_b, gen_ba(fake_b), real_b, fake_a, gen_ab(fake_a)]
        finally:
            for name, net in self.nets.items():
                net.train(was_training[name])
        a, b = self.domains
        labels = [a, f"{a} -> {b}", f"back to {a}", b, f"{b} -> {a}", f"back to {b}"]
        return kinds_grid(rows, labels, f"{self.registry_name}: {a} <-> {b}")


class StrengthBlend(nn.Module):
    """`x + s * (G(x) - x)`, clamped to [-1, 1]: the strength of an image-to-image generator."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, images: Tensor, strength: Tensor) -> Tensor:
        """(B, 3, H, W) in [-1, 1], (B,) -> (B, 3, H, W) in [-1, 1]."""
        translated = self.generator(images)
        blended = images + strength_column(strength, images) * (translated - images)
        return blended.clamp(-1, 1)
