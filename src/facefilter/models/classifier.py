"""An attribute classifier: a small ResNet that says what a face has and which style it is.

It is not a filter. `facefilter eval` scores filters with it (does this output look
anime? did +Smiling make a smile, and did the rest stay?) and computes FID and KID on
its features when no InceptionV3 weights are given; `facefilter data label` writes a
CelebA-format attribute table for a user's own photos with it.

Two heads share one trunk: a logit per attribute of the data's table (multi-label,
binary cross-entropy) and, where the data has several classes (`synth:photo,anime,
cartoon`, `classes:DIR`), a style head (cross-entropy over them). A run's domains are
the attribute names, then `style:NAME` per class (a domain name never holds ':').
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facefilter.degrade import Camera, camera, grey, scramble, shrink_blur
from facefilter.errors import UserError
from facefilter.models import losses, schedules
from facefilter.models.base import STYLE_PREFIX, ModelConfig, Progress, StepLogs
from facefilter.models.capabilities import Predicts, Verdict
from facefilter.pictures import labelled_grid, shown_large
from facefilter.pixels import to_pixels

BLUR_MIN, BLUR_MAX = 1.25, 2.5  # how much a training face is shrunk by the blur augmentation
SCRAMBLED = "scrambled"  # the style of a face cut into shuffled tiles: no face at all


@dataclass
class ClassifierConfig(ModelConfig):
    """The classifier's widths and training (each one a CLI flag)."""

    # Batch norm and a multi-label loss want batches well above 1; 64 px holds glasses,
    # lipstick and a smile while a few CPU minutes reach high accuracy.
    train_defaults: ClassVar[dict[str, Any]] = {"batch_size": 64, "size": 64, "max_steps": 600}
    tunable: ClassVar[tuple[str, ...]] = ("lr", "weight_decay", "style_weight", "decay_start",
                                          "blur_augment", "camera")  # fmt: skip
    # Runs written before the camera and the scrambled class were trained without them.
    legacy_defaults: ClassVar[dict[str, Any]] = {"camera": 0.0, "scrambled": 0.0}

    channels: tuple[int, ...] = (32, 64, 128, 256)  # one stride-2 stage each: 64 px -> 4x4
    limits: ClassVar[dict[str, int]] = {"channels": 1024, "blocks": 64}
    blocks: int = 1  # residual blocks per stage (ResNet's basic block)
    lr: float = 2e-3  # AdamW; batch norm keeps a high rate stable
    weight_decay: float = 1e-4  # AdamW's decoupled decay
    style_weight: float = 1.0  # the style head's cross-entropy beside the attributes' BCE
    decay_start: float = 0.5  # lr constant for the first half, then linearly to 0
    # Filters' outputs are often blurrier than real faces, or smaller (a 32 px filter read
    # by a 64 px classifier): this share of training faces is shrunk by up to 2.5x and
    # enlarged back, so verdicts hold on such images.
    blur_augment: float = 0.5
    # A judge of real photographs must not care how a camera took them: this share of
    # training faces goes through a random camera (colour cast, exposure, grey, blur,
    # sensor noise, JPEG: facefilter.degrade.camera) and keeps its labels.
    camera: float = 0.5
    # ... and must not call a broken face a style: with a style head, this share of each
    # batch is scrambled (the face cut into shuffled tiles, some with noise; the colours
    # and outline stay) and labelled with one more style, `scrambled`. A filter whose
    # outputs are mosaics in anime colours is then not called anime.
    scrambled: float = 0.2

    def validate(self, image_size: int) -> None:
        if not self.channels or min(self.channels) < 1:
            raise UserError(f"--channels {self.channels} needs at least one width, all > 0")
        if self.blocks < 1:
            raise UserError(f"--blocks {self.blocks} must be at least 1")
        if not (self.lr > 0 and self.weight_decay >= 0 and self.style_weight >= 0):
            raise UserError(f"--lr {self.lr} must be > 0, --weight-decay {self.weight_decay} "
                            f"and --style-weight {self.style_weight} >= 0")  # fmt: skip
        if not 0 <= self.decay_start <= 1:
            raise UserError(f"--decay-start {self.decay_start} must lie in [0, 1] (1: no decay)")
        for flag, share in (("blur-augment", self.blur_augment), ("camera", self.camera),
                            ("scrambled", self.scrambled)):  # fmt: skip
            if not 0 <= share <= 1:
                raise UserError(f"--{flag} {share} must lie in [0, 1]")
        smallest = 2 ** len(self.channels)
        if image_size < smallest:
            raise UserError(f"--size {image_size} is too small for {len(self.channels)} "
                            f"stride-2 stages; use at least {smallest}")  # fmt: skip


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions and a bypass (projected when it must)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False), nn.BatchNorm2d(out_ch),
        )  # fmt: skip
        self.bypass: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.bypass = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.branch(x) + self.bypass(x))


class ClassifierNet(nn.Module):
    """A stem, one stride-2 stage per width, global average pooling and two linear heads."""

    def __init__(self, config: ClassifierConfig, attributes: int, styles: int) -> None:
        super().__init__()
        widths = config.channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(True)
        )
        stages: list[nn.Module] = []
        for before, width in zip((widths[0], *widths), widths, strict=False):
            stages.append(BasicBlock(before, width, stride=2))
            stages += [BasicBlock(width, width, stride=1) for _ in range(config.blocks - 1)]
        self.trunk = nn.Sequential(*stages)
        # a head only where there is something to tell (an empty Linear warns and does nothing)
        self.attr_head = nn.Linear(widths[-1], attributes) if attributes else None
        self.style_head = nn.Linear(widths[-1], styles) if styles else None
        self.num_features = widths[-1]

    def forward(self, images: Tensor) -> Verdict:
        features = self.trunk(self.stem(images)).mean((2, 3))  # (B, D)
        none = features[:, :0]  # (B, 0)
        return Verdict(features, self.attr_head(features) if self.attr_head else none,
                       self.style_head(features) if self.style_head else none)  # fmt: skip


def split_domains(domains: list[str]) -> tuple[list[str], list[str]]:
    """A classifier's domains -> (attribute names, style names)."""
    styles = [d.removeprefix(STYLE_PREFIX) for d in domains if d.startswith(STYLE_PREFIX)]
    return [d for d in domains if not d.startswith(STYLE_PREFIX)], styles


def blur_some(images: Tensor, share: float) -> Tensor:
    """`share` of the images (on average) shrunk by one random factor in [1.25, 2.5] and
    enlarged back (antialiased both ways); the rest as they were. Draws from the global
    RNG, which the engine seeds from (seed, step): resume stays exact."""
    if share <= 0:
        return images
    factor = BLUR_MIN + (BLUR_MAX - BLUR_MIN) * float(torch.rand(()))
    chosen = (torch.rand(images.shape[0]) < share).to(images.device).view(-1, 1, 1, 1)
    return torch.where(chosen, shrink_blur(images, factor), images)


def _host_generator() -> torch.Generator:
    """A generator seeded from the global RNG (which the engine seeds from the step)."""
    return torch.Generator().manual_seed(int(torch.randint(2**62, ())))


class AttributeClassifier(Predicts):
    """The classifier family: one network `classifier`, one optimizer, no translations."""

    name = "classifier"
    data_kind = "labels"
    config: ClassifierConfig

    def build_networks(self) -> dict[str, nn.Module]:
        self.attributes, self.styles = split_domains(self.domains)
        if len(self.styles) == 1:
            raise UserError(f"a style head needs two styles or more, got {self.styles}")
        if self.styles and self.config.scrambled > 0 and SCRAMBLED not in self.styles:
            self.styles.append(SCRAMBLED)  # a class of its own, saved with the domains
            self.domains.append(STYLE_PREFIX + SCRAMBLED)
        return {"classifier": ClassifierNet(self.config, len(self.attributes), len(self.styles))}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = self.nets["classifier"].parameters()
        cfg = self.config
        return {"classifier": torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)}

    def lr_factor(self, progress: Progress) -> float:
        return schedules.constant_then_linear_decay(
            progress.step, progress.total, self.config.decay_start
        )

    def robust_batch(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None, Tensor]:
        """The batch's faces blurred, through a camera and scrambled as configured: (images,
        style labels with the scrambled ones relabelled, 1 where the attributes can still
        be told: neither scrambled nor grey)."""
        cfg, images = self.config, blur_some(batch["image"], self.config.blur_augment)
        generator, n, device = _host_generator(), images.shape[0], images.device
        if cfg.camera > 0:
            chosen = torch.rand(n, generator=generator) < cfg.camera
            coloured = camera(images, generator, Camera(grey=0.0))
            images = torch.where(chosen.to(device)[:, None, None, None], coloured, images)
            # some in black and white, for the style head only: hair colour, pale skin and
            # lipstick cannot be told there, and a label would teach the head to guess
            greyed = chosen & (torch.rand(n, generator=generator) < Camera().grey)
            images = torch.where(greyed.to(device)[:, None, None, None], grey(images), images)
        else:
            greyed = torch.zeros(n, dtype=torch.bool)
        labels, broken = batch.get("label"), torch.zeros(n, dtype=torch.bool)
        if SCRAMBLED in self.styles and labels is not None:
            broken = torch.rand(n, generator=generator) < cfg.scrambled
            images = torch.where(broken.to(device)[:, None, None, None],
                                 scramble(images, generator), images)  # fmt: skip
            labels = torch.where(broken.to(device), self.styles.index(SCRAMBLED), labels)
        return images, labels, (~(greyed | broken)).float().to(device)

    def train_step(self, batch: dict[str, Tensor], progress: Progress) -> StepLogs:
        images, labels, intact = self.robust_batch(batch)
        verdict: Verdict = self.nets["classifier"](images)
        loss, logs = torch.zeros((), device=images.device), StepLogs()
        if self.attributes:  # a scrambled face has no attributes to tell
            attr_loss, logs = losses.multilabel_bce(verdict.attr_logits, batch["attrs"],
                                                    rows=intact)  # fmt: skip
            loss = loss + attr_loss
        if self.styles:
            assert labels is not None  # data with classes always has them
            style_loss, style_logs = losses.cross_entropy(verdict.style_logits, labels)
            loss, logs = loss + self.config.style_weight * style_loss, logs | style_logs
        optimizer = self.opts["classifier"]
        optimizer.zero_grad(set_to_none=True)
        self.backward(loss)
        optimizer.step()
        return {**logs, "loss": loss.detach()}

    @property
    def num_features(self) -> int:
        return int(self.unwrapped("classifier").num_features)  # type: ignore[arg-type]

    @torch.no_grad()
    def predict(self, images: Tensor) -> Verdict:
        """Probabilities for (B, 3, H, W) images in [-1, 1]: attributes (sigmoid) and
        styles (softmax), with the pooled features."""
        net = self.inference_modules()["classifier"]
        was_training = net.training
        net.eval()
        try:
            verdict: Verdict = net(images)
        finally:
            net.train(was_training)
        styles = verdict.style_logits.softmax(1) if self.styles else verdict.style_logits
        return Verdict(verdict.features, verdict.attr_logits.sigmoid(), styles)

    def sample_grid(self, batch: dict[str, Tensor]) -> Tensor:
        """The sample faces, each captioned with its predicted style and how many of its
        attributes the classifier gets right. (3, H', W') in [0, 1]"""
        images = batch["image"][:8].to(self.device)
        verdict = self.predict(images)
        captions = []
        for i in range(len(images)):
            style = self.styles[int(verdict.style_logits[i].argmax())] if self.styles else ""
            right = ""
            if self.attributes:
                hits = ((verdict.attr_logits[i] > 0.5).float() == batch["attrs"][i].to(
                    self.device)).sum()  # fmt: skip
                right = f"{int(hits)}/{len(self.attributes)}"
            captions.append(" ".join(filter(None, (style, right))))
        tiles = to_pixels(images).permute(0, 2, 3, 1).cpu().numpy()[None]  # (1, N, H, W, 3)
        title = "classifier: predicted style, attributes right"
        picture = labelled_grid(shown_large(tiles), columns=captions, title=title)
        return torch.from_numpy(picture.copy()).permute(2, 0, 1).float() / 255
