"""A template family: the smallest complete filter, to copy when adding a family.

It is not in the registry (so `facefilter train` does not offer it); tests register it
for a moment and put it through the same contract as every family
(`tests/test_contract.py`, where `template_registered` adds it). To add a
family of your own:

1. copy this file to `models/<name>.py` and rename `Template` and `TemplateConfig`;
2. write its networks, its `train_step` and, for each capability it declares, what that
   capability asks for (`models/capabilities.py`): a filter (`Translates`) gives its
   `directions()` and a pure `translator(direction)`;
3. add one row to `FAMILIES` in `models/__init__.py`: module, class, config class, a
   line of help, and its capabilities. Nothing outside `models/` changes: the trainer,
   the run directory, apply, export, eval and the demo reach it through the contract,
   and the contract tests pick it up from the registry.

This one learns a one-way translation A -> B from unpaired faces: a residual generator
(the output starts as the input) against a PatchGAN discriminator, least-squares GAN
loss plus an L1 pull towards the input whose weight fades over the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from facefilter.errors import UserError
from facefilter.models import losses, schedules
from facefilter.models.base import ModelConfig, Progress, StepLogs
from facefilter.models.blocks import PatchDiscriminator, init_weights
from facefilter.models.capabilities import Translates
from facefilter.models.cyclegan import StrengthBlend
from facefilter.models.targets import Direction, Target
from facefilter.pictures import kinds_grid


@dataclass
class TemplateConfig(ModelConfig):
    """Every field is a flag of `facefilter train <name>` and is saved in config.json;
    the same-line comment is its --help."""

    # `facefilter train` defaults that suit this family (a TrainConfig field -> value)
    train_defaults: ClassVar[dict[str, object]] = {"batch_size": 4, "size": 64}
    # settings a `--resume` may change (they steer training, not the networks' shapes)
    tunable: ClassVar[tuple[str, ...]] = ("lr", "identity_weight")

    limits: ClassVar[dict[str, int]] = {"width": 1024, "ndf": 1024}
    width: int = 32  # generator feature maps
    ndf: int = 32  # discriminator feature maps
    lr: float = 2e-4  # Adam, both networks (the pix2pix / CycleGAN default)
    identity_weight: float = 5.0  # L1 to the input at the start; fades to 0 by the end

    def validate(self, image_size: int) -> None:
        """One line, naming the value and the fix, for a setting that cannot work."""
        if self.width < 1 or self.ndf < 1:
            raise UserError(f"--width {self.width} and --ndf {self.ndf} must be at least 1")
        if image_size < 16:
            raise UserError(f"--size {image_size} is too small for the discriminator; use 16+")


class ResidualGenerator(nn.Module):
    """(B, 3, H, W) -> (B, 3, H, W): the input plus a change, so training starts near it."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.change = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 3, 3, padding=1),
        )  # fmt: skip

    def forward(self, images: Tensor) -> Tensor:
        return (images + self.change(images)).clamp(-1, 1)  # (B, 3, H, W) in [-1, 1]


class Template(Translates):
    """A one-way GAN filter: the family contract, and the `Translates` capability."""

    name = "template"  # the registry name
    data_kind = "unpaired"  # batches are {"real_a", "real_b"}; domains = [A, B]
    config: TemplateConfig

    # --- networks and optimizers ----------------------------------------------------------
    def build_networks(self) -> dict[str, nn.Module]:
        """What `apply` needs, all that model.safetensors holds (torch's default init)."""
        return {"gen": ResidualGenerator(self.config.width)}

    def build_training_networks(self) -> dict[str, nn.Module]:
        """Trained beside the generator, never applied: only `train` builds it."""
        disc = PatchDiscriminator(3, self.config.ndf, 2, "instance")
        init_weights(disc, "normal", 0.02)
        return {"disc": disc}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (0.5, 0.999)
        return {name: torch.optim.Adam(self.nets[name].parameters(), self.config.lr, betas=betas)
                for name in ("gen", "disc")}  # fmt: skip

    # --- one training step ------------------------------------------------------------------
    def train_step(self, batch: dict[str, Tensor], progress: Progress) -> StepLogs:
        """Generator, then discriminator. Weights that change are functions of `progress`
        (so a resumed run goes on exactly); logs stay tensors (no `.item()`)."""
        real_a, real_b = batch["real_a"], batch["real_b"]  # (B, 3, H, W) each
        weight = self.config.identity_weight * schedules.linear_decay(progress.step, progress.total)
        fake_b = self.nets["gen"](real_a)
        gan, logs = losses.lsgan_generator(self.nets["disc"](fake_b))
        identity, more = losses.l1(fake_b, real_a, "identity")
        self.opts["gen"].zero_grad(set_to_none=True)
        self.backward(gan + weight * identity)  # through Accelerate: DDP, fp16 scaling
        self.opts["gen"].step()
        # one discriminator call on real and fake together: DDP allows one per backward
        scores = self.nets["disc"](torch.cat([real_b, fake_b.detach()]))
        real_scores, fake_scores = scores.split([real_b.shape[0], fake_b.shape[0]])
        disc, disc_logs = losses.lsgan_discriminator(real_scores, fake_scores, "d")
        self.opts["disc"].zero_grad(set_to_none=True)
        self.backward(disc)
        self.opts["disc"].step()
        return logs | more | disc_logs | {"identity_weight": weight}

    # --- the Translates capability ----------------------------------------------------------
    def directions(self) -> list[Direction]:
        a, b = self.domains
        return [Direction(a, Target(b))]  # one way: `apply` needs no --to

    def translator(self, direction: Direction) -> nn.Module:
        """A pure module (images, strength) -> images: what apply runs and export writes."""
        return StrengthBlend(self.inference_modules()["gen"]).eval()

    # --- what training shows ----------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, batch: dict[str, Tensor]) -> Tensor:
        """Rows: the faces of A, then as B. (3, H', W') in [0, 1]; train mode kept."""
        generator = self.inference_modules()["gen"]
        was_training = generator.training
        generator.eval()
        try:
            real_a = batch["real_a"][:4]
            rows = [real_a, generator(real_a)]
        finally:
            generator.train(was_training)
        a, b = self.domains
        return kinds_grid(rows, [a, f"{a} -> {b}"], f"{self.registry_name}: {a} -> {b}")
