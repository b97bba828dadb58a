"""Makeover GAN (deep-makeover, seed 004): one generator from one face set to another.

A near-identity encoder-decoder ResNet (`makeover_nets`) against a ResNet critic,
trained between two attribute filters of one table (men -> women is `where=Male` ->
`where=-Male`). There is no cycle: the generator learns one direction, so a model
offers one target, and the other way is a second run with the sets swapped.

The loss is annealed, every weight a function of the step (a resumed run continues
exactly). The half-life is a share of the steps the run's schedules span
(`annealing_share`; deep-makeover's 10,000 of 40,000 is a quarter), so a ten-minute
CPU run anneals as far as a GPU run of hours; `annealing_half_life` gives it in steps.
With a = 0.5 ** (step / half-life):
- the generator's loss is w * pixel_scale * L1(G(x), x) + (1 - w) * adversarial, with
  w = pixel_loss_min + (pixel_loss_max - pixel_loss_min) * a (deep-makeover began at
  w = 1, G only keeping its input while the critic knew nothing yet);
- the critic's inputs get Gaussian instance noise of std instance_noise * a;
- the learning rate is max(lr_start * a, lr_end) when lr_end is given, else lr_start;
  the generator's warms up from 0 over warmup_share of the run.
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
    tunable: ClassVar[tuple[str, ...]] = ("gp_weight", "r1_weight", "r1_every",
                                          "disc_weights_threshold",
                                          "critic_steps",
                                          "annealing_share", "annealing_half_life",
                                          "pixel_loss_max", "pixel_loss_min", "pixel_scale",
                                          "instance_noise", "lr_start", "lr_end",
                                          "critic_lr", "warmup_share", "beta1",
                                          "beta2", "diff_augment")  # fmt: skip

    # Runs written before these settings trained without them (an unmasked generator).
    legacy_defaults: ClassVar[dict[str, Any]] = {
        "masked": False, "r1_weight": 0.0, "critic_lr": None, "warmup_share": 0.0
    }  # fmt: skip
    limits: ClassVar[dict[str, int]] = {"encoder": 1024, "decoder": 1024, "width": 1024,
                                        "critic": 1024}  # fmt: skip
    encoder: tuple[int, ...] = (24, 48)  # widths of the encoder's levels, each then halved
    decoder: tuple[int, ...] = (96, 64)  # widths of the decoder's levels, each then doubled
    width: int = 48  # width of the two full-resolution blocks before the RGB projection
    # the critic's block widths: half deep-makeover's (64 96 128 192), so that a CPU run of
    # minutes takes more steps; benchmarks/makeover_quality.py measured these
    critic: tuple[int, ...] = (32, 48, 64, 96)
    norm: NormKind = "batch"  # the generator's normalisation (deep-makeover: batch norm)
    # the generator blends a painted colour into its input through a mask it paints too,
    # so what it leaves alone stays exactly the input, grain and all (--no-masked: it
    # repaints the whole face, deep-makeover's; on synthetic men -> women that lost the
    # grain and missed the L1 bar, 0.99 of doing nothing against 0.84 masked)
    masked: bool = True
    # gan: the original GAN loss (non-saturating), with R1 below: in ten CPU minutes it
    # changed more faces than the Wasserstein losses and a step costs less (no penalty on
    # interpolates). wgan-gp: the Wasserstein loss deep-makeover's code ended on, with a
    # gradient penalty instead of its weight clipping. wgan-clip: that code's exact critic
    # (clipping, RMSProp)
    gan_loss: GanLoss = "gan"
    gp_weight: float = 10.0  # wgan-gp: the penalty's weight (Gulrajani et al.)
    # gan: gamma of an R1 penalty, gamma / 2 * ||grad D(real)||^2 (0: none; StarGAN v2's 1)
    r1_weight: float = 1.0
    # ... taken every r1_every-th critic step, weighed that many times (StyleGAN2's lazy
    # regularisation): a step without it skips the second differentiation
    r1_every: int = 4
    disc_weights_threshold: float = 0.01  # wgan-clip: largest |weight| in the critic
    # critic updates per generator update: the generator skips steps (an EMA still updates
    # every step, so its decay per generator update is ema_decay ** critic_steps). One with
    # the R1 critic and its faster learning rate; wgan-gp wanted 2 (with one the generator
    # outran it), WGAN-GP's paper 5
    critic_steps: int = 1
    # the steps in which the annealing temperature halves, as a share of the steps the run's
    # schedules span (deep-makeover: 10,000 of its 40,000, a quarter): it fades the critic's
    # instance noise and the pixel loss's share, and the learning rate if --lr-end is given
    annealing_share: float = 0.1
    annealing_half_life: int | None = None  # in steps, overriding the share (deep-makeover: 10000)
    pixel_loss_max: float = 1.0  # pixel loss's share of G's loss at step 0: D is ignored
    pixel_loss_min: float = 0.7  # the share it anneals towards (deep-makeover's)
    # L1 multiplier (a per-pixel mean is tiny next to a critic): the threshold the critic's
    # pull must beat to change a pixel. 8 with the masked generator (what it leaves alone
    # is exact, so a weaker hold costs no grain); unmasked, 15 repainted faces with noise
    # and 100 hardly moved them (30 was its default)
    pixel_scale: float = 8.0
    instance_noise: float = 0.1  # std of the critic's input noise at step 0, annealed
    lr_start: float = 3e-4  # the generator's learning rate at step 0 ...
    # ... annealed down to this floor (deep-makeover: 1e-6); unset, it stays at lr_start:
    # an annealed rate left a ten-minute run too little of it once the critic was heard
    lr_end: float | None = None
    # the critic's learning rate at step 0, on the same schedule (None: --lr-start): a
    # critic faster than its generator (Heusel et al.'s two time scales)
    critic_lr: float | None = 6e-4
    # the generator's learning rate rises from 0 over this share of the run: Adam's first
    # steps, with the pixel loss alone, would kick it off its near-identity start
    warmup_share: float = 0.05
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
        nonnegative = {"gp_weight": self.gp_weight, "r1_weight": self.r1_weight,
                       "pixel_scale": self.pixel_scale,
                       "instance_noise": self.instance_noise}  # fmt: skip
        for field, value in nonnegative.items():
            if not (math.isfinite(value) and value >= 0):
                raise UserError(f"--{field.replace('_', '-')} {value} must be >= 0")
        if self.critic_lr is not None and not (
            math.isfinite(self.critic_lr) and self.critic_lr > 0
        ):
            raise UserError(f"--critic-lr {self.critic_lr} must be > 0 (None: --lr-start)")
        if not 0 <= self.warmup_share < 1:
            raise UserError(
                f"--warmup-share {self.warmup_share} must lie in [0, 1): the share of the run "
                "over which the generator's learning rate rises"
            )
        if not (math.isfinite(self.lr_start) and self.lr_start > 0):
            raise UserError(f"--lr-start {self.lr_start} must be > 0 (the generator's rate)")
        if self.lr_end is not None and not 0 < self.lr_end <= self.lr_start:
            raise UserError(f"--lr-start {self.lr_start} and --lr-end {self.lr_end}: need "
                            "0 < end <= start")  # fmt: skip
        if not self.disc_weights_threshold > 0:
            raise UserError(f"--disc-weights-threshold {self.disc_weights_threshold} must be > 0")
        if self.r1_every < 1:
            raise UserError(f"--r1-every {self.r1_every} must be at least 1 (1: every step)")
        if self.critic_steps < 1:
            raise UserError(f"--critic-steps {self.critic_steps} must be at least 1")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise UserError(f"--beta1 {self.beta1} / --beta2 {self.beta2} must lie in [0, 1)")
        if not 0 <= self.ema_decay < 1:
            raise UserError(f"--ema-decay {self.ema_decay} must lie in [0, 1) (0 = no EMA)")

    def check_engine(self, compile: bool, mixed_precision: str) -> None:
        # The gradient penalty differentiates the critic twice: compiled graphs cannot, and
        # under fp16 its inner gradient is not loss-scaled and underflows.
        twice = self.gan_loss == "wgan-gp" or (self.gan_loss == "gan" and self.r1_weight > 0)
        if twice and (compile or mixed_precision == "fp16"):
            flag = "--compile" if compile else "--mixed-precision fp16"
            penalty = "wgan-gp" if self.gan_loss == "wgan-gp" else "gan --r1-weight"
            raise UserError(
                f"{flag} cannot train --gan-loss {penalty} (its gradient penalty differentiates "
                "twice); drop it, use bf16, or choose --gan-loss wgan-clip, or gan without R1"
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
        gen = MakeoverGenerator(cfg.encoder, cfg.decoder, cfg.width, cfg.norm, cfg.masked)
        return {"gen": gen}

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
        critic_lr = cfg.lr_start if cfg.critic_lr is None else cfg.critic_lr
        critic: torch.optim.Optimizer = (
            torch.optim.RMSprop(critic_params, lr=critic_lr)  # momentum hurts WGAN (the code)
            if cfg.gan_loss == "wgan-clip"
            else torch.optim.Adam(critic_params, lr=critic_lr, betas=betas)
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
        cfg = self.config
        return (
            1.0 if cfg.lr_end is None else max(self.annealing(progress), cfg.lr_end / cfg.lr_start)
        )

    def optimizer_lr_factor(self, name: str, progress: Progress) -> float:
        factor = self.lr_factor(progress)
        if name != "gen" or self.config.warmup_share <= 0:
            return factor
        # from 1/steps at step 0 (not 0: no step is wasted) to 1 after the warm-up
        steps = self.config.warmup_share * progress.total
        return factor * schedules.linear_warmup(progress.step + 1, math.ceil(steps))

    # --- training ---------------------------------------------------------------------
    def train_step(self, batch: dict[str, Tensor], progress: Progress) -> StepLogs:
        source, target = batch["real_a"], batch["real_b"]  # (B, 3, H, W) each
        cfg = self.config
        noise = cfg.instance_noise * self.annealing(progress)
        generator_steps = (progress.step + 1) % cfg.critic_steps == 0
        with torch.set_grad_enabled(generator_steps):  # one forward: the critic sees it
            fake = self.nets["gen"](source)  # detached, the generator learns from it
        # lazy R1 on the last step of each r1_every (so a logged step, a multiple, shows it)
        r1_steps = cfg.gan_loss == "gan" and (progress.step + 1) % cfg.r1_every == 0
        r1 = cfg.r1_weight * cfg.r1_every if r1_steps else 0.0
        logs = self._critic_step(target, fake.detach(), noise, r1)
        if generator_steps:
            logs |= self._generator_step(source, fake, noise, self.pixel_share(progress))
        logs |= {"pixel_share": self.pixel_share(progress), "instance_noise": noise}
        return logs

    def _critic_step(self, target: Tensor, fake: Tensor, noise: float, r1: float) -> StepLogs:
        """One critic update; `r1`: the weight of an R1 penalty this step (0 but for gan)."""
        cfg, critic = self.config, self.nets["critic"]
        set_requires_grad([critic], True)
        self.opts["critic"].zero_grad(set_to_none=True)
        policy = cfg.diff_augment
        real, fake = shown_to_critic(target, policy, noise), shown_to_critic(fake, policy, noise)
        count = min(real.shape[0], fake.shape[0])
        if cfg.gan_loss != "wgan-gp":  # one call on both: DDP allows one forward per backward
            real = real.detach().requires_grad_(r1 > 0)
            scores = critic(torch.cat([real, fake]))
            real_s, fake_s = scores.split([real.shape[0], fake.shape[0]])
            if cfg.gan_loss == "gan":
                loss, logs = losses.bce_discriminator(real_s, fake_s)
            else:
                loss, logs = losses.wgan_critic(real_s, fake_s)
            if r1 > 0:
                penalty, more = losses.r1_penalty(real_s, real)
                loss, logs = loss + r1 / 2 * penalty, logs | more
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
        logs["d_error"] = losses.misjudged(real_s.detach(), fake_s.detach(), cfg.gan_loss)
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
