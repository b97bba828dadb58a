"""Makeover GAN (deep-makeover, seed 004): one generator from one face set to another.

A near-identity encoder-decoder ResNet (`makeover_nets`) against a ResNet critic,
trained between two attribute filters of one table (men -> women is `where=Male` ->
`where=-Male`). There is no cycle: the generator learns one direction, so a model
offers one target, and the other way is a second run with the sets swapped.

The loss is annealed, every weight a function of the step (a resumed run continues
exactly). The half-life is a share of the steps the run's schedules span
(`annealing_share`, a quarter: deep-makeover's 10,000 of 40,000), so a ten-minute CPU
run anneals as far as a GPU run of hours; `annealing_half_life` gives it in steps.
With a = 0.5 ** (step / half-life):
- the generator's loss is w * pixel_scale * L1(G(x), x) + (1 - w) * adversarial, with
  w = pixel_loss_min + (pixel_loss_max - pixel_loss_min) * a: at first G only keeps
  its input (the critic knows nothing yet), then the critic's pull grows;
- the critic's inputs get Gaussian instance noise of std instance_noise * a;
- the learning rate is max(lr_start * a, lr_end).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from facefilter.errors import UserError
from facefilter.models import losses, schedules
from facefilter.models.base import ModelConfig, Progress, StepLogs
from facefilter.models.blocks import NORM_KINDS, NormKind, set_requires_grad
from facefilter.models.capabilities import Translates
from facefilter.models.cyclegan import StrengthBlend
from facefilter.models.diffaugment import parse_policy, shown_to_critic
from facefilter.models.makeover_nets import MakeoverCritic, MakeoverGenerator
from facefilter.models.targets import Direction, Target
from facefilter.pictures import kinds_grid
from facefilter.sizes import ImageSize

GanLoss = Literal["wgan-gp", "wgan-clip", "gan"]
GAN_LOSSES = ("wgan-gp", "wgan-clip", "gan")


@dataclass
class MakeoverConfig(ModelConfig):
    # deep-makeover's crop (80 wide, 100 tall: the face without the hair) and batch.
    train_defaults: ClassVar[dict[str, Any]] = {"batch_size": 16, "size": "80x100"}
    non_square: ClassVar[bool] = True
    tunable: ClassVar[tuple[str, ...]] = ("gp_weight", "disc_weights_threshold", "critic_steps",
                                          "annealing_share", "annealing_half_life",
                                          "pixel_loss_max", "pixel_loss_min", "pixel_scale",
                                          "instance_noise", "lr_start", "lr_end", "beta1",
                                          "beta2", "diff_augment")  # fmt: skip

    limits: ClassVar[dict[str, int]] = {"encoder": 1024, "decoder": 1024, "width": 1024,
                                        "critic": 1024}  # fmt: skip
    encoder: tuple[int, ...] = (24, 48)  # widths of the encoder's levels, each then halved
    decoder: tuple[int, ...] = (96, 64)  # widths of the decoder's levels, each then doubled
    width: int = 48  # width of the two full-resolution blocks before the RGB projection
    # the critic's block widths: half deep-makeover's (64 96 128 192), so that a CPU run of
    # minutes takes more steps; benchmarks/makeover_quality.py measured these
    critic: tuple[int, ...] = (32, 48, 64, 96)
    norm: NormKind = "batch"  # the generator's normalisation (deep-makeover: batch norm)
    # wgan-gp: the Wasserstein loss deep-makeover's code ended on, with a gradient penalty
    # instead of its weight clipping: Adam works and no threshold needs tuning. wgan-clip:
    # that code's exact critic (clipping, RMSProp). gan: the original DCGAN loss.
    gan_loss: GanLoss = "wgan-gp"
    gp_weight: float = 10.0  # wgan-gp: the penalty's weight (Gulrajani et al.)
    disc_weights_threshold: float = 0.01  # wgan-clip: largest |weight| in the critic
    # critic updates per generator update: the generator skips steps (an EMA still updates
    # every step, so its decay per generator update is ema_decay ** critic_steps). With one,
    # the generator outran the critic (which then told the sets apart no better than chance)
    # and wandered; WGAN-GP's paper used five
    critic_steps: int = 2
    # the steps in which the annealing temperature halves, as a share of the steps the run's
    # schedules span: deep-makeover's 10,000 of its 40,000, so that a CPU run of minutes
    # anneals as its GPU run of hours did
    annealing_share: float = 0.25
    annealing_half_life: int | None = None  # in steps, overriding the share (deep-makeover: 10000)
    pixel_loss_max: float = 1.0  # pixel loss's share of G's loss at step 0: D is ignored
    pixel_loss_min: float = 0.7  # the share it anneals towards (deep-makeover's)
    # L1 multiplier (a per-pixel mean is tiny next to a critic): the threshold the critic's
    # pull must beat to change a pixel; 15 repainted faces with noise, 100 hardly moved them
    pixel_scale: float = 30.0
    instance_noise: float = 0.1  # std of the critic's input noise at step 0, annealed
    lr_start: float = 1e-4  # learning rate at step 0, annealed ...
    lr_end: float = 1e-6  # ... down to this floor
    beta1: float = 0.5  # Adam, both networks (the critic uses RMSProp with wgan-clip)
    beta2: float = 0.9  # WGAN-GP's
    # > 0 keeps an EMA of the generator for apply (0: none); 0.998 lagged ten minutes behind
    ema_decay: float = 0.99
    # transforms every image the critic sees goes through, real and fake alike
    # (DiffAugment): "color,translation,cutout" for a target set of a few hundred images
    diff_augment: str = ""

    def validate_size(self, size: ImageSize) -> None:
        self.validate(size.side)
        smallest = 2 ** len(self.critic)  # the critic halves once per block
        if min(size.width, size.height) < smallest:
            raise UserError(f"--size {size} is too small for the critic's {len(self.critic)} "
                            f"halvings; use at least {smallest} a side")  # fmt: skip
        step = 2 ** len(self.encoder)
        if size.width % step or size.height % step:
            fixed = ImageSize(_round_up(size.width, step), _round_up(size.height, step))
            raise UserError(
                f"--size {size}: makeover needs a width and height divisible by {step} "
                f"({len(self.encoder)} halvings); use e.g. --size {fixed}"
            )

    def validate(self, image_size: int) -> None:
        del image_size
        self._check_widths()
        if not (math.isfinite(self.annealing_share) and 0 < self.annealing_share <= 10):
            raise UserError(f"--annealing-share {self.annealing_share} must lie in (0, 10]: the "
                            "half-life as a share of the run (deep-makeover: 0.25)")  # fmt: skip
        if self.annealing_half_life is not None and self.annealing_half_life < 1:
            raise UserError(
                f"--annealing-half-life {self.annealing_half_life} must be at least 1 "
                "(steps until the pixel loss's weight halves; deep-makeover used 10000)"
            )
        parse_policy(self.diff_augment)
        if self.gan_loss not in GAN_LOSSES:
            raise UserError(f"--gan-loss {self.gan_loss!r}: choose one of {', '.join(GAN_LOSSES)}")
        if self.norm not in NORM_KINDS:
            raise UserError(f"--norm {self.norm!r} unknown; choose one of {', '.join(NORM_KINDS)}")
        if not 0 <= self.pixel_loss_min <= self.pixel_loss_max <= 1:
            raise UserError(
                f"--pixel-loss-min {self.pixel_loss_min} and --pixel-loss-max "
                f"{self.pixel_loss_max} must satisfy 0 <= min <= max <= 1"
            )
        nonnegative = {"gp_weight": self.gp_weight, "pixel_scale": self.pixel_scale,
                       "instance_noise": self.instance_noise}  # fmt: skip
        for field, value in nonnegative.items():
            if not (math.isfinite(value) and value >= 0):
                raise UserError(f"--{field.replace('_', '-')} {value} must be >= 0")
        if not 0 < self.lr_end <= self.lr_start:
            raise UserError(f"--lr-start {self.lr_start} and --lr-end {self.lr_end}: need "
                            "0 < end <= start")  # fmt: skip
        if not self.disc_weights_threshold > 0:
            raise UserError(f"--disc-weights-threshold {self.disc_weights_threshold} must be > 0")
        if self.critic_steps < 1:
            raise UserError(f"--critic-steps {self.critic_steps} must be at least 1")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise UserError(f"--beta1 {self.beta1} / --beta2 {self.beta2} must lie in [0, 1)")
        if not 0 <= self.ema_decay < 1:
            raise UserError(f"--ema-decay {self.ema_decay} must lie in [0, 1) (0 = no EMA)")

    def check_engine(self, compile: bool, mixed_precision: str) -> None:
        # The gradient penalty differentiates the critic twice: compiled graphs cannot, and
        # under fp16 its inner gradient is not loss-scaled and underflows.
        if self.gan_loss == "wgan-gp" and (compile or mixed_precision == "fp16"):
            flag = "--compile" if compile else "--mixed-precision fp16"
            raise UserError(
                f"{flag} cannot train --gan-loss wgan-gp (its gradient penalty differentiates "
                "twice); drop it, use bf16, or choose --gan-loss wgan-clip or gan"
            )

    def _check_widths(self) -> None:
        """Every level must be wide enough to carry the image's channels through the
        near-identity start (3 per pixel, x4 per halving), else that start is lost."""
        if not self.encoder or len(self.decoder) != len(self.encoder):
            raise UserError(
                f"--encoder {list(self.encoder)} and --decoder {list(self.decoder)} need the "
                "same number of levels (one doubling per halving), at least one"
            )
        carried = 3
        for units in self.encoder:  # a block keeps the image in its first channels ...
            self._check_level("--encoder", units, carried)
            carried *= 4  # ... and each halving moves 4 pixels into channels
        for units in self.decoder:
            self._check_level("--decoder", units, carried)
            if units % 4:
                raise UserError(f"--decoder width {units} must be a multiple of 4 (a doubling "
                                "turns 4 channels into 4 pixels)")  # fmt: skip
            carried //= 4
        self._check_level("--width", self.width, carried)
        if min(self.critic, default=0) < 1:
            raise UserError(f"--critic {list(self.critic)}: give one or more widths >= 1")

    @staticmethod
    def _check_level(flag: str, units: int, carried: int) -> None:
        if units < carried:
            raise UserError(
                f"{flag} width {units} is narrower than the {carried} channels that carry the "
                "image at that level, which the near-identity start needs; widen it"
            )


def misjudged(real_scores: Tensor, fake_scores: Tensor, gan_loss: str) -> Tensor:
    """The share of images the critic puts on the wrong side: a reading of how well it
    tells the sets apart, where a Wasserstein loss has no scale. The line is 0 for the
    GAN loss's logits, halfway between the two mean scores for a critic."""
    line = 0.0 if gan_loss == "gan" else (real_scores.mean() + fake_scores.mean()) / 2
    wrong = (real_scores < line).float().mean() + (fake_scores > line).float().mean()
    return wrong / 2  # a tensor: read when logged, not now


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


class Makeover(Translates):
    """One near-identity generator A -> B and its critic, with annealed losses."""

    name = "makeover"
    data_kind = "unpaired"
    config: MakeoverConfig

    def __init__(
        self, config: ModelConfig, domains: Sequence[str], image_size: int | ImageSize, *,
        training: bool = True,
    ) -> None:  # fmt: skip
        if not isinstance(config, MakeoverConfig):
            raise TypeError(f"Makeover needs a MakeoverConfig, got {type(config).__name__}")
        if len(domains) != 2:
            raise UserError(f"makeover learns one set from another, got {list(domains)}")
        super().__init__(config, domains, image_size, training=training)

    def build_networks(self) -> dict[str, nn.Module]:
        cfg = self.config
        return {"gen": MakeoverGenerator(cfg.encoder, cfg.decoder, cfg.width, cfg.norm)}

    def build_training_networks(self) -> dict[str, nn.Module]:
        return {"critic": MakeoverCritic(self.config.critic)}

    def ema_networks(self) -> tuple[str, ...]:
        return ("gen",) if self.config.ema_decay > 0 else ()

    def ema_decay(self) -> float:
        return self.config.ema_decay

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        betas = (cfg.beta1, cfg.beta2)
        critic_params = self.nets["critic"].parameters()
        critic: torch.optim.Optimizer = (
            torch.optim.RMSprop(critic_params, lr=cfg.lr_start)  # momentum hurts WGAN (the code)
            if cfg.gan_loss == "wgan-clip"
            else torch.optim.Adam(critic_params, lr=cfg.lr_start, betas=betas)
        )
        gen = torch.optim.Adam(self.nets["gen"].parameters(), lr=cfg.lr_start, betas=betas)
        return {"gen": gen, "critic": critic}

    # --- schedules: functions of the step -----------------------------------------------
    def half_life(self, progress: Progress) -> float:
        """Steps in which the annealing temperature halves: given, or a share of the span."""
        cfg = self.config
        if cfg.annealing_half_life is not None:
            return cfg.annealing_half_life
        return max(1.0, cfg.annealing_share * progress.total)

    def annealing(self, progress: Progress) -> float:
        return schedules.half_life(progress.step, self.half_life(progress))

    def pixel_share(self, progress: Progress) -> float:
        cfg, a = self.config, self.annealing(progress)
        return cfg.pixel_loss_min + (cfg.pixel_loss_max - cfg.pixel_loss_min) * a

    def lr_factor(self, progress: Progress) -> float:
        return max(self.annealing(progress), self.config.lr_end / self.config.lr_start)

    # --- training ---------------------------------------------------------------------
    def train_step(self, batch: dict[str, Tensor], progress: Progress) -> StepLogs:
        source, target = batch["real_a"], batch["real_b"]  # (B, 3, H, W) each
        noise = self.config.instance_noise * self.annealing(progress)
        generator_steps = (progress.step + 1) % self.config.critic_steps == 0
        with torch.set_grad_enabled(generator_steps):  # one forward: the critic sees it
            fake = self.nets["gen"](source)  # detached, the generator learns from it
        logs = self._critic_step(target, fake.detach(), noise)
        if generator_steps:
            logs |= self._generator_step(source, fake, noise, self.pixel_share(progress))
        logs |= {"pixel_share": self.pixel_share(progress), "instance_noise": noise}
        return logs

    def _critic_step(self, target: Tensor, fake: Tensor, noise: float) -> StepLogs:
        cfg, critic = self.config, self.nets["critic"]
        set_requires_grad([critic], True)
        self.opts["critic"].zero_grad(set_to_none=True)
        policy = cfg.diff_augment
        real, fake = shown_to_critic(target, policy, noise), shown_to_critic(fake, policy, noise)
        count = min(real.shape[0], fake.shape[0])
        if cfg.gan_loss != "wgan-gp":  # one call on both: DDP allows one forward per backward
            scores = critic(torch.cat([real, fake]))
            real_s, fake_s = scores.split([real.shape[0], fake.shape[0]])
            if cfg.gan_loss == "gan":
                loss, logs = losses.bce_discriminator(real_s, fake_s)
            else:
                loss, logs = losses.wgan_critic(real_s, fake_s)
        else:
            mix = torch.rand(count, 1, 1, 1, device=real.device, dtype=real.dtype)
            between = (mix * real[:count] + (1 - mix) * fake[:count]).requires_grad_(True)
            scores = critic(torch.cat([real, fake, between]))
            real_s, fake_s, between_s = scores.split([real.shape[0], fake.shape[0], count])
            loss, logs = losses.wgan_critic(real_s, fake_s)
            penalty, more = losses.gradient_penalty(between_s, between)
            loss, logs = loss + cfg.gp_weight * penalty, logs | more
        self.backward(loss)
        self.opts["critic"].step()
        logs["d_error"] = misjudged(real_s.detach(), fake_s.detach(), cfg.gan_loss)
        if cfg.gan_loss == "wgan-clip":
            with torch.no_grad():
                for param in self.unwrapped("critic").parameters():
                    # weights, not biases (the code's own TBD); not the layers --freeze-d keeps
                    if param.dim() > 1 and param.requires_grad:
                        param.clamp_(-cfg.disc_weights_threshold, cfg.disc_weights_threshold)
        return logs

    def _generator_step(self, source: Tensor, fake: Tensor, noise: float, share: float) -> StepLogs:
        cfg = self.config
        # The critic frozen and called unwrapped: no DDP wait for its unused gradients.
        set_requires_grad([self.nets["critic"]], False)
        critic = self.unwrapped("critic")
        self.opts["gen"].zero_grad(set_to_none=True)
        scores = critic(shown_to_critic(fake, cfg.diff_augment, noise))
        if cfg.gan_loss == "gan":
            adversarial, logs = losses.bce_generator(scores)
        else:
            adversarial, logs = losses.wgan_generator(scores)
        pixel, more = losses.l1(fake, source, "pixel")
        total = share * cfg.pixel_scale * pixel + (1 - share) * adversarial
        self.backward(total)
        self.opts["gen"].step()
        return logs | more | {"g_total": total.detach()}

    # --- inference ---------------------------------------------------------------------
    def directions(self) -> list[Direction]:
        """One way only: the run's first set to its second."""
        return [Direction(self.domains[0], Target(self.domains[1]))]

    def translator(self, direction: Direction) -> nn.Module:
        return StrengthBlend(self.inference_modules()["gen"]).eval()

    @torch.no_grad()
    def sample_grid(self, batch: dict[str, Tensor]) -> Tensor:
        """Rows: inputs from the first set, their makeovers, faces of the second set."""
        gen = self.inference_modules()["gen"]
        was_training = gen.training
        gen.eval()
        try:
            source = batch["real_a"][:4].to(self.device)
            rows = [source, gen(source).clamp(-1, 1), batch["real_b"][:4].to(self.device)]
        finally:
            gen.train(was_training)
        a, b = self.domains
        labels = [f"input ({a})", f"made over ({b})", f"real {b}, for comparison"]
        return kinds_grid(rows, labels, f"makeover: {a} -> {b}")
