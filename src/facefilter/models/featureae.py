"""Feature editing with an autoencoder: move a face's code along attribute vectors.

    z = encode(x)    z' = z + strength * sum(sign * amount * v_attribute)    x' = decode(z')

Two families share this file's training and editing, and differ in the network:
`dcae` (a deep convolutional autoencoder, `models/dcae.py`) and `pgae` (the same
layers grown progressively from 8 px, `models/pgae.py`). Both learn to reconstruct
faces (pixel MSE, plus the deep-feature-consistent VGG19 loss when the user gives
VGG19 weights), optionally as a VAE (`--variational`: the DFC-VAE, whose edits use
the mean code). After training, every attribute of the data's table gets a vector
(`models/vectors.py`), saved beside the weights; `facefilter vectors` recomputes them.

The output keeps the photo's detail (`--edit-detail keep`, the default): the edit is
the difference of two decodes, x + decode(z') - decode(z), so what the autoencoder
cannot draw (skin texture, a sharp background, noise) stays as it was, and strength 0
is the input exactly. `--edit-detail decode` returns decode(z') itself, as the
original feature changer did, blended with the input below strength 1 (0 is still the
input). Both, and `--edit-focus`, only change what inference outputs: `apply`, `grid`
and `lerp` may override the run's choice (`ModelConfig.inference_only`).
"""

from __future__ import annotations

import abc
import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facefilter.errors import UserError
from facefilter.models import losses, schedules
from facefilter.models.base import (
    LabelledFaces,
    ModelConfig,
    Progress,
    StepLogs,
    TrainingSet,
    strength_column,
)
from facefilter.models.capabilities import EditsCodes
from facefilter.models.perceptual import VGGFeatures
from facefilter.models.targets import Direction, Target
from facefilter.models.vectors import VectorFit, fit_vectors
from facefilter.pixels import to_pixels
from facefilter.sizes import ImageSize

SHOWCASE = ("Smiling", "Eyeglasses", "Blond_Hair", "Mustache")  # the write-up's own edits
SAMPLE_STRENGTH = 1.5  # the write-up's feature-grid strength


@dataclass
class FeatureAEConfig(ModelConfig):
    """Settings shared by the feature autoencoders (each one a CLI flag)."""

    # Batch norm needs a batch to normalise over; 64 faces of 32 px are cheap even on a CPU.
    train_defaults: ClassVar[dict[str, Any]] = {"batch_size": 64, "size": 32}
    inference_only: ClassVar[tuple[str, ...]] = ("edit_detail", "edit_focus")
    tunable: ClassVar[tuple[str, ...]] = ("kl_weight", "vgg_weights", "feature_weight",
                                          "pixel_weight", "dfc_min_size", "lr", "beta1",
                                          "beta2", "decay_start", "vector_count")  # fmt: skip

    limits: ClassVar[dict[str, int]] = {"latent_dim": 8192, "channels": 1024,
                                        "max_channels": 2048}  # fmt: skip
    latent_dim: int = 100  # code length: room for identity, pose and every attribute
    channels: int = 32  # feature maps at full resolution, doubled at each halving
    max_channels: int = 256  # cap on the doubling: the deep layers stay affordable
    variational: bool = False  # DFC-VAE: sample the code and add a KL term; edits use the mean
    # --variational: weight of the KL term. It is summed over the code while the pixel loss is a
    # per-pixel mean, so a small weight keeps the prior a regulariser, not the goal.
    kl_weight: float = 1e-3
    vgg_weights: str | None = None  # VGG19 file for the DFC loss (vgg19-dcbb9e9d.pth); none: pixels
    feature_weight: float = 1.0  # DFC loss: MSE of VGG19 relu1_1, relu2_1, relu3_1, summed
    pixel_weight: float = 1.0  # pixel MSE beside the DFC loss (0: DFC alone, as Hou et al.)
    dfc_min_size: int = 32  # images smaller than this (pgae's first phases): pixel MSE only
    lr: float = 1e-3  # Adam; no adversary, so the default betas
    beta1: float = 0.9
    beta2: float = 0.999
    decay_start: float = 0.5  # lr constant for this fraction of the steps, then linearly to 0
    vector_count: int = 1000  # faces with, and faces without, each attribute for its vector
    # keep: the photo plus the edit, x + D(z') - D(z); decode: the decode D(z') alone (blurrier)
    edit_detail: Literal["keep", "decode"] = "keep"
    # Apply the decoded change only where it is at least this share of its peak, so an edit
    # stays where the attribute is (the glasses) and leaves the rest of the face alone; 0
    # applies it everywhere. The README has the measurements behind the default.
    edit_focus: float = 0.35

    def adds_changes(self) -> bool:
        return self.edit_detail == "keep"

    def validate(self, image_size: int) -> None:
        positive = {"latent_dim": self.latent_dim, "channels": self.channels,
                    "max_channels": self.max_channels, "lr": self.lr,
                    "vector_count": self.vector_count}  # fmt: skip
        for field, value in positive.items():
            if not value > 0:
                raise UserError(f"--{field.replace('_', '-')} {value} must be > 0")
        weights = {"kl_weight": self.kl_weight, "feature_weight": self.feature_weight,
                   "pixel_weight": self.pixel_weight}  # fmt: skip
        for field, value in weights.items():
            if not (math.isfinite(value) and value >= 0):
                raise UserError(f"--{field.replace('_', '-')} {value} must be >= 0")
        if self.vgg_weights and self.feature_weight == 0 and self.pixel_weight == 0:
            raise UserError("--feature-weight 0 and --pixel-weight 0 leave no loss; raise one")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise UserError(f"--beta1 {self.beta1} / --beta2 {self.beta2} must lie in [0, 1)")
        if not 0 <= self.decay_start <= 1:
            raise UserError(f"--decay-start {self.decay_start} must lie in [0, 1] (1 = no decay)")
        if self.edit_detail not in ("keep", "decode"):
            raise UserError(f"--edit-detail {self.edit_detail!r}: choose keep or decode")
        if not 0 <= self.edit_focus < 1:
            raise UserError(f"--edit-focus {self.edit_focus} must lie in [0, 1) (0: no focus)")


class AEPass(NamedTuple):
    """What one training pass of an autoencoder returns."""

    image: Tensor  # (B, 3, h, w) reconstruction in [-1, 1], at the working size
    mean: Tensor  # (B, latent_dim) the code (the posterior mean for a VAE)
    logvar: Tensor | None  # (B, latent_dim) for a VAE, else None


class CodeHead(nn.Module):
    """Flat features -> the code (and its log-variance for a VAE), and the code -> features."""

    def __init__(self, features: int, latent_dim: int, variational: bool) -> None:
        super().__init__()
        self.variational = variational
        self.to_code = nn.Linear(features, latent_dim * (2 if variational else 1))
        self.from_code = nn.Sequential(nn.Linear(latent_dim, features), nn.LeakyReLU(0.2))

    def encode(self, features: Tensor) -> tuple[Tensor, Tensor | None]:
        """(B, F) -> mean (B, D) and log-variance (B, D) for a VAE, else None."""
        code = self.to_code(features)
        if not self.variational:
            return code, None
        mean, logvar = code.chunk(2, dim=1)
        return mean, logvar.clamp(-10, 10)  # exp() of a wild log-variance overflows

    def decode(self, codes: Tensor) -> Tensor:
        return self.from_code(codes)  # (B, F)


class Autoencoder(nn.Module, abc.ABC):
    """What both networks provide. `working_size` is the side they currently encode
    (pgae grows it; the family resizes images to it and back)."""

    @property
    @abc.abstractmethod
    def working_size(self) -> int: ...

    @abc.abstractmethod
    def encode(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """(B, 3, s, s) at the working size -> mean (B, D) and log-variance (VAE) or None."""

    @abc.abstractmethod
    def decode(self, codes: Tensor) -> Tensor:
        """(B, D) -> (B, 3, s, s) in [-1, 1] at the working size."""

    def forward(self, images: Tensor) -> AEPass:
        """One training pass: a VAE samples its code with the global RNG (reseeded per step
        by the engine, so resume is exact). Training goes through forward for DDP."""
        mean, logvar = self.encode(images)
        code = mean if logvar is None else mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        return AEPass(self.decode(code), mean, logvar)


def to_size(images: Tensor, size: int) -> Tensor:
    """Resize (B, 3, H, W) to size x size: average-pooled down (an integer factor for the
    powers of two pgae grows through), bilinear up."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    if images.shape[-1] > size and images.shape[-1] % size == 0:
        return F.avg_pool2d(images, images.shape[-1] // size)
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def focus_mask(change: Tensor, focus: float) -> Tensor:
    """(B, 1, H, W) in [0, 1]: 1 where the change (B, 3, H, W) is strong, fading to 0 where
    it is below `focus` times its peak in that image (smoothed over 3x3 pixels first)."""
    strength = F.avg_pool2d(change.abs().mean(1, keepdim=True), 3, stride=1, padding=1)
    peak = strength.amax(dim=(2, 3), keepdim=True) + 1e-6
    return ((strength / peak - focus) / (1 - focus)).clamp(0, 1)


class EditTranslator(nn.Module):
    """Faces in, the same faces with the edit applied out, at a strength (see the module
    docstring): (B, 3, S, S), (B,) -> (B, 3, S, S), all in [-1, 1]."""

    delta: Tensor  # (D,) the code offset at strength 1

    def __init__(self, ae: Autoencoder, delta: Tensor, scale: float, config: FeatureAEConfig):
        super().__init__()
        self.ae, self.scale = ae, scale
        self.keep_detail, self.focus = config.edit_detail == "keep", config.edit_focus
        self.register_buffer("delta", delta.clone())

    def forward(self, images: Tensor, strength: Tensor) -> Tensor:
        size = images.shape[-1]
        weight = strength.to(images).reshape(-1, 1) * self.scale  # (B, 1), images' device
        mean, _ = self.ae.encode(to_size(images, self.ae.working_size))
        decoded = to_size(self.ae.decode(torch.cat([mean + weight * self.delta, mean])), size)
        edited, plain = decoded.chunk(2)  # one decoder call: the same arithmetic for both
        change = edited - plain  # exactly 0 at strength 0
        if self.focus > 0:
            change = change * focus_mask(change, self.focus)
        if self.keep_detail:
            return (images + change).clamp(-1, 1)
        # The input fades into the decode D(z) as the strength rises to 1, and the change is
        # added whole (it is already scaled in the code); at 0 both terms are exactly 0.
        shown = strength_column(weight.flatten(), images).clamp(0, 1)
        return (images + shown * (plain - images) + change).clamp(-1, 1)


class FeatureAutoencoder(EditsCodes):
    """An autoencoder `ae`, one optimizer, and attribute vectors computed after training."""

    data_kind = "attributes"
    config: FeatureAEConfig

    def __init__(self, config: ModelConfig, domains: Any, image_size: int | ImageSize, *,
                 training: bool = True) -> None:  # fmt: skip
        if not isinstance(config, FeatureAEConfig):
            raise TypeError(f"{self.name} needs a FeatureAEConfig, got {type(config).__name__}")
        super().__init__(config, domains, image_size, training=training)
        self.vectors = torch.zeros(len(self.domains), config.latent_dim)  # (A, D)
        self.vector_counts = torch.zeros(len(self.domains), 2, dtype=torch.long)  # 0: none

    @abc.abstractmethod
    def make_autoencoder(self) -> Autoencoder:
        """The family's network, initialised."""

    def build_networks(self) -> dict[str, nn.Module]:
        return {"ae": self.make_autoencoder()}

    def autoencoder(self, live: bool = False) -> Autoencoder:
        """The network apply uses (its EMA copy where kept), or with `live` the one training."""
        net = self.unwrapped("ae") if live else self.inference_modules()["ae"]
        assert isinstance(net, Autoencoder)
        return net

    def build_helpers(self) -> dict[str, nn.Module]:
        if not self.config.vgg_weights:
            return {}
        from facefilter.pretrained import load_vgg19_layers

        vgg = VGGFeatures()
        vgg.layers.load_state_dict(
            {k.removeprefix("layers."): v
             for k, v in load_vgg19_layers(self.config.vgg_weights, vgg.depth).items()}
        )  # fmt: skip
        return {"vgg": vgg}

    def start_notes(self) -> list[str]:
        if self.config.vgg_weights:
            return []
        return [
            "note: no --vgg-weights, so no deep-feature-consistent loss: training on the pixel "
            "MSE alone (blurrier decodes; see the README for the VGG19 file)"
        ]

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.config
        params = self.nets["ae"].parameters()
        return {"ae": torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))}

    def lr_factor(self, progress: Progress) -> float:
        return schedules.constant_then_linear_decay(
            progress.step, progress.total, self.config.decay_start
        )

    # --- training ------------------------------------------------------------------------
    def prepare_step(self, progress: Progress) -> None:
        """Set what depends on the step before it runs (pgae: its resolution and fade)."""
        del progress

    def train_step(self, batch: dict[str, Tensor], progress: Progress) -> StepLogs:
        self.prepare_step(progress)
        target = to_size(batch["image"], self.autoencoder(live=True).working_size)  # (B, 3, s, s)
        result: AEPass = self.nets["ae"](target)
        loss, logs = self.reconstruction_loss(result.image, target)
        if result.logvar is not None:
            kl, kl_logs = losses.gaussian_kl(result.mean, result.logvar)
            loss, logs = loss + self.config.kl_weight * kl, logs | kl_logs
        optimizer = self.opts["ae"]
        optimizer.zero_grad(set_to_none=True)
        self.backward(loss)
        optimizer.step()
        return {**logs, "loss": loss.detach()}

    def reconstruction_loss(self, output: Tensor, target: Tensor) -> tuple[Tensor, dict]:
        """Pixel MSE, plus the DFC loss where there are VGG weights and enough pixels."""
        cfg, vgg = self.config, self.helpers.get("vgg")
        pixel, logs = losses.mse(output, target, "pixel")
        if vgg is None or output.shape[-1] < cfg.dfc_min_size:
            return pixel, logs
        with torch.no_grad():
            wanted = vgg(target)
        dfc, more = losses.feature_mse(vgg(output), wanted, "dfc")
        return cfg.feature_weight * dfc + cfg.pixel_weight * pixel, logs | more

    # --- attribute vectors -----------------------------------------------------------------
    @torch.no_grad()
    def codes(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) faces -> their codes (B, D) (the mean code of a VAE), in eval mode."""
        ae = self.autoencoder()
        was_training = ae.training
        ae.eval()
        mean, _ = ae.encode(to_size(images.to(self.device), ae.working_size))
        ae.train(was_training)
        return mean

    def fit_vectors(
        self, faces: LabelledFaces, count: int, chosen: Sequence[str] | None = None
    ) -> VectorFit:
        """Vectors from `faces` (items {"image"}, `attribute_table()`, `attr_names`) for
        the attributes of this model that the table has; the others keep theirs."""
        dataset = faces
        names = list(dataset.attr_names)
        chosen = [n for n in (chosen or self.domains) if n in names]
        if not chosen:
            raise UserError(f"the data's attributes ({', '.join(names)}) share none with this "
                            f"model's ({', '.join(self.domains)})")  # fmt: skip
        fit = fit_vectors(self.codes, lambda i: dataset[i]["image"],
                          dataset.attribute_table(), names, count, chosen)  # fmt: skip
        for row, name in enumerate(fit.names):
            if name in chosen and name in self.domains:
                self.vectors[self.domains.index(name)] = fit.vectors[row]
                self.vector_counts[self.domains.index(name)] = fit.counts[row]
        return fit

    def after_training(self, data: TrainingSet) -> None:
        self.fit_vectors(data.dataset, self.vector_count)

    @property
    def vector_count(self) -> int:
        return self.config.vector_count

    def inference_state(self) -> dict[str, Tensor]:
        return {"vectors": self.vectors, "vector_counts": self.vector_counts}

    def load_inference_state(self, state: dict[str, Tensor]) -> None:
        if "vectors" in state:
            self.vectors, self.vector_counts = state["vectors"], state["vector_counts"]

    # --- inference ---------------------------------------------------------------------------
    def edited_attributes(self) -> list[str]:
        """The attributes that have a vector, in the table's order."""
        return [n for n, c in zip(self.domains, self.vector_counts.tolist(), strict=True)
                if min(c) > 0]  # fmt: skip

    def directions(self) -> list[Direction]:
        """+A and -A for every attribute A with a vector, from any face."""
        return [Direction(None, Target(name, sign))
                for name in self.edited_attributes() for sign in (1, -1)]  # fmt: skip

    def edit_delta(self, direction: Direction) -> tuple[Tensor, float]:
        """The code offset of `direction` at strength 1, and the factor on the strength.

        A single edit's amount multiplies the strength (so an ONNX graph of +Smiling runs
        +Smiling=1.5 exactly); edits applied together add up their amounts instead."""
        offered = self.edited_attributes()
        for target in direction.targets:
            if target.name not in offered:
                raise UserError(f"no vector for {target.name!r}; this model edits "
                                f"{', '.join(offered) or 'nothing yet'}")  # fmt: skip
        if not direction.also:
            target = direction.target
            return target.sign * self.vectors[self.domains.index(target.name)], target.amount
        delta = sum(t.sign * t.amount * self.vectors[self.domains.index(t.name)]
                    for t in direction.targets)  # fmt: skip
        assert isinstance(delta, Tensor)
        return delta, 1.0

    def translator(self, direction: Direction) -> nn.Module:
        """A frozen copy of the autoencoder (EMA where kept) with the edit fixed, in eval mode."""
        delta, scale = self.edit_delta(direction)
        ae = copy.deepcopy(self.autoencoder())
        module = EditTranslator(ae, delta, scale, self.config).eval()
        return module.requires_grad_(False)

    @torch.no_grad()
    def interpolate(self, start: Tensor, end: Tensor, weights: Sequence[float]) -> Tensor:
        """Decodes of codes between `start` and `end` faces (B, 3, S, S) at each weight
        (0: start's code, 1: end's): (len(weights), B, 3, S, S)."""
        ae = self.autoencoder()
        was_training = ae.training
        ae.eval()
        first, last = self.codes(start), self.codes(end)
        frames = [to_size(ae.decode(torch.lerp(first, last, w)), start.shape[-1]) for w in weights]
        ae.train(was_training)
        return torch.stack(frames)

    @torch.no_grad()
    def sample_grid(self, batch: dict[str, Tensor]) -> Tensor:
        """Rows: input and reconstruction at the working size, then (once there are vectors)
        a few edits at strength 1.5. (3, H, W) in [0, 1], labelled."""
        from facefilter.pictures import enlarge, labelled_grid

        ae = self.autoencoder()
        was_training = ae.training
        ae.eval()
        images = batch["image"][:8].to(self.device)
        size, work = images.shape[-1], ae.working_size
        shown = to_size(images, work)  # what the network sees at this resolution

        def enlarged(images: Tensor) -> Tensor:  # nearest: the working size stays visible
            return F.interpolate(images, size=(size, size), mode="nearest")

        rows = [enlarged(shown), enlarged(ae.decode(ae.encode(shown)[0]))]
        labels = ["input", "decoded"]
        offered = self.edited_attributes()
        for name in [n for n in SHOWCASE if n in offered][:3] or offered[:3]:
            direction = Direction(None, Target(name, 1, SAMPLE_STRENGTH))
            edit = self.translator(direction).to(images.device)
            rows.append(edit(images, torch.ones(len(images), device=images.device)))
            labels.append(str(direction.target))
        ae.train(was_training)
        tiles = to_pixels(torch.stack(rows)).permute(0, 1, 3, 4, 2).cpu().numpy()
        title = f"{self.registry_name} at {work} px{self.growth_note()}"
        picture = labelled_grid(enlarge(tiles, max(1, 64 // size)), rows=labels, title=title)
        return torch.from_numpy(picture.copy()).permute(2, 0, 1).float() / 255

    def growth_note(self) -> str:
        """Words on the sample grid's title about growth (pgae); nothing by default."""
        return ""
