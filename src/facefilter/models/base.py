"""The one contract every model family implements: the trainable core.

A family owns its networks and optimizers (in dicts, by name) and knows how to take
one training step. The training engine (`facefilter.training`), the run directory
(`facefilter.runs`) and the tests talk to families only through this class, so adding a
family never changes them. What a trained family offers (translating, editing codes,
predicting attributes) is a capability it also derives from: `models.capabilities`.

Networks come in three kinds:
- inference networks (`build_networks`): trained, saved to model.safetensors, all
  that `apply` builds (their EMA copies are what is saved, where the family keeps one);
- training-only networks (`build_training_networks`, e.g. discriminators): trained
  and kept in the resume state, never built for inference;
- frozen helpers (`build_helpers`, e.g. a VGG feature net): on the device, in eval
  mode, no gradients, never saved and never handed to DDP.

Batches are dicts of tensors. Which keys a family receives depends on its `data_kind`:
- ``"unpaired"``: ``{"real_a": (B, 3, H, W), "real_b": (B, 3, H, W)}``; the two
  domains are named by ``domains[0]`` and ``domains[1]``.
- ``"classes"``: ``{"image": (B, 3, H, W), "label": (B,) long}``; ``label`` indexes
  ``domains`` (the class names).
- ``"attributes"``: ``{"image": (B, 3, H, W), "attrs": (B, A) float in {0, 1}}``; the
  columns are ``domains`` (the attribute table's names), for attribute editors.
- ``"labels"``: ``{"image", "attrs": (B, A), "label": (B,) long}``, both at once, for the
  attribute classifier: ``domains`` are the A attribute names, then ``style:NAME`` for
  each class the label indexes (none when the data has one class; A may be 0).

Images are float32 in [-1, 1] everywhere. A training step returns its losses as
tensors (0-d), read by the engine only when it logs, so the device never waits on them.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import torch
from torch import Tensor, nn

from facefilter.errors import UserError
from facefilter.models.blocks import freeze_first_layers
from facefilter.sizes import ImageSize

if TYPE_CHECKING:
    from accelerate import Accelerator

DataKind = Literal["unpaired", "classes", "attributes", "labels"]
# What a training step logs: losses as detached 0-d tensors (read only at the log
# interval), schedule values that are host numbers already as floats.
StepLogs = dict[str, Tensor | float]
STYLE_PREFIX = "style:"  # a classifier's domains: attribute names, then style:NAME per class


@dataclass
class ModelConfig:
    """Base of every family's config; its fields are CLI flags and go to config.json."""

    # `facefilter train <family>` defaults that suit this family (TrainConfig field -> value).
    train_defaults: ClassVar[dict[str, Any]] = {}
    # Fields that change only what inference outputs, not what training learns: `apply`
    # may override them, and a resume may change them.
    inference_only: ClassVar[tuple[str, ...]] = ()
    # Fields that change how training goes on, not the networks (learning rates, loss
    # weights, schedules): `train --resume` takes a new value, uses it from the saved step
    # on and records the change in config.json. Any other field is fixed once trained.
    tunable: ClassVar[tuple[str, ...]] = ()
    # Values for fields a config.json written before them lacks (else the field's default):
    # a new field whose default changes the networks keeps old runs loading as they were.
    legacy_defaults: ClassVar[dict[str, Any]] = {}
    # Whether the family trains at a non-square size (WIDTHxHEIGHT, e.g. 80x100).
    non_square: ClassVar[bool] = False
    # The most each size setting may be (widths, depths, code lengths; every entry of a
    # tuple): far beyond them the networks would not fit any machine, and allocating them
    # would fail (or swap) long after the run started.
    limits: ClassVar[dict[str, int]] = {}

    def validate(self, image_size: int) -> None:
        """Raise UserError for a value that cannot work, naming the value and the fix."""
        del image_size

    def check_limits(self) -> None:
        """One line for a size setting above its limit (see `limits`)."""
        for name, most in self.limits.items():
            value = getattr(self, name)
            if value is not None and any(v > most for v in (value if isinstance(value, tuple)
                                                             else (value,))):  # fmt: skip
                raise UserError(f"--{name.replace('_', '-')} {value}: at most {most} (a network "
                                "that size would not fit in memory)")  # fmt: skip

    def validate_size(self, size: ImageSize) -> None:
        """`validate` at a full size: one line for a non-square size a family cannot take."""
        self.check_limits()
        if not size.square and not self.non_square:
            raise UserError(
                f"--size {size}: this model family trains on square images only; give one "
                f"side, e.g. --size {size.side} (makeover takes WIDTHxHEIGHT)"
            )
        self.validate(size.side)

    def check_engine(self, compile: bool, mixed_precision: str) -> None:
        """Raise UserError for an engine setting this model cannot train with."""
        del compile, mixed_precision

    def adds_changes(self) -> bool:
        """True when a translation is its input plus a change (an edit that keeps the
        photo's detail): the photo pipeline then pastes back the change alone, at the
        photo's own resolution, instead of the model-sized crop."""
        return False


class LabelledFaces(Protocol):
    """Faces with an attribute table, as a data source gives them: item i is
    {"image": (3, H, W), ...}; the table is (N, A) in {0, 1}, columns `attr_names`."""

    attr_names: list[str]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...

    def attribute_table(self) -> Any: ...


class TrainingSet(Protocol):
    """What `after_training` is given: the training data (`data.loading.TrainingData`)."""

    @property
    def dataset(self) -> Any:  # a family of data kind "attributes" gets `LabelledFaces`
        ...


@dataclass(frozen=True)
class Progress:
    """Where training stands: schedules are functions of these, so resume is exact."""

    step: int  # steps already taken before this one (0 for the first)
    # steps the schedules span: --max-steps, --epochs converted, --schedule-steps, or the
    # steps a --train-time budget will reach (training.span)
    total: int
    # False while a --train-time budget's span is still being estimated (its first steps):
    # a schedule that fixes itself once for the run (a growth phase) waits until it is True
    settled: bool = True

    @property
    def fraction(self) -> float:
        return self.step / max(1, self.total)


class Family(abc.ABC):
    """The trainable core: networks + optimizers + one step + a picture of what it does."""

    name: ClassVar[str]  # registry name, e.g. "cyclegan"
    data_kind: ClassVar[DataKind]
    # Some parameters get no gradient in some steps (the blocks a progressive autoencoder
    # has not grown yet): DDP must then look for them after every backward.
    unused_parameters: ClassVar[bool] = False

    def __init__(
        self, config: ModelConfig, domains: Sequence[str], image_size: int | ImageSize, *,
        training: bool = True,
    ) -> None:  # fmt: skip
        if len(set(domains)) != len(domains) or len(domains) < 2:
            raise UserError(
                f"a model needs at least two distinct domains or classes, got {list(domains)}"
            )
        self.registry_name = self.name  # "cyclegan-lite" shares CycleGAN's class
        self.config = config
        self.domains = list(domains)
        self.size = ImageSize.parse(image_size)  # width x height
        self.image_size = self.size.side  # the side, for the families that train square
        config.validate_size(self.size)
        self.nets: dict[str, nn.Module] = self.build_networks()
        self.inference_names = tuple(self.nets)
        self.helpers: dict[str, nn.Module] = {}
        if training:
            self.nets |= self.build_training_networks()
            self.helpers = {k: freeze(v) for k, v in self.build_helpers().items()}
        self.ema: dict[str, nn.Module] = {}
        self.opts: dict[str, torch.optim.Optimizer] = {}
        self.accelerator: Accelerator | None = None

    # --- what a family must provide -------------------------------------------------
    @abc.abstractmethod
    def build_networks(self) -> dict[str, nn.Module]:
        """The inference networks, by name (initialised): what model.safetensors holds."""

    @abc.abstractmethod
    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per network group, over `self.nets`, each at its base lr."""

    @abc.abstractmethod
    def train_step(self, batch: dict[str, Tensor], progress: Progress) -> StepLogs:
        """One optimisation step on `batch`; returns what to log, losses as detached 0-d
        tensors (no `.item()`: the engine reads them at its log interval only).

        Weights that change during training are functions of `progress` (step and
        total), so a resumed run continues exactly.
        """

    @abc.abstractmethod
    def sample_grid(self, batch: dict[str, Tensor]) -> Tensor:
        """A picture of what the model does on `batch`: (3, H, W) in [0, 1]."""

    # --- defaults a family may override ----------------------------------------------
    def build_training_networks(self) -> dict[str, nn.Module]:
        """Networks trained beside the inference ones but never applied (discriminators)."""
        return {}

    def build_helpers(self) -> dict[str, nn.Module]:
        """Frozen networks the losses use (a VGG feature net): not trained, not saved."""
        return {}

    def start_notes(self) -> list[str]:
        """Lines the engine prints when training starts (e.g. a loss left out, and why)."""
        return []

    def ema_networks(self) -> tuple[str, ...]:
        """Inference networks with an EMA copy, which the engine updates and apply uses."""
        return ()

    def ema_decay(self) -> float:
        return 0.999  # StarGAN v2's generator EMA

    def lr_factor(self, progress: Progress) -> float:
        """Multiplier of every optimizer's base learning rate at `progress`."""
        del progress
        return 1.0

    def optimizer_lr_factor(self, name: str, progress: Progress) -> float:
        """Multiplier of optimizer `name`'s base learning rate: `lr_factor`, unless a family
        schedules its networks apart (a generator warming up while its critic does not)."""
        del name
        return self.lr_factor(progress)

    def set_learning_rates(self, progress: Progress) -> None:
        """Each optimizer's rate for the step at `progress`: its base rate (`initial_lr`)
        times its factor. What the engine does before every step."""
        for name, optimizer in self.opts.items():
            factor = self.optimizer_lr_factor(name, progress)
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor

    def extra_state(self) -> dict[str, Tensor]:
        """Training state beyond networks and optimizers (e.g. an image pool)."""
        return {}

    def load_extra_state(self, state: dict[str, Tensor]) -> None:
        """Restore what `extra_state` returned (nothing by default)."""
        del state

    def after_training(self, data: TrainingSet) -> None:
        """Compute state from the trained model and its data (e.g. attribute vectors)."""
        del data

    def inference_state(self) -> dict[str, Tensor]:
        """Tensors beside the weights in model.safetensors (what `after_training` made)."""
        return {}

    def load_inference_state(self, state: dict[str, Tensor]) -> None:
        del state

    # --- shared machinery --------------------------------------------------------------
    def setup(self, accelerator: Accelerator) -> None:
        """Build optimizers, record each group's base lr, hand everything to Accelerate."""
        self.accelerator = accelerator
        self.opts = self.build_optimizers()
        for optimizer in self.opts.values():
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])  # the engine scales this per step
        names, opt_names = list(self.nets), list(self.opts)
        prepared = accelerator.prepare(*self.nets.values(), *self.opts.values())
        prepared = prepared if isinstance(prepared, tuple) else (prepared,)
        self.nets = dict(zip(names, prepared[: len(names)], strict=True))
        self.opts = dict(zip(opt_names, prepared[len(names) :], strict=True))
        self.helpers = {k: v.to(accelerator.device) for k, v in self.helpers.items()}
        self.ema = {name: freeze(copy.deepcopy(self.unwrapped(name)))
                    for name in self.ema_networks()}  # fmt: skip

    @torch.no_grad()
    def update_ema(self) -> None:
        """ema <- decay * ema + (1 - decay) * weights; buffers (norm statistics) copied."""
        decay = self.ema_decay()
        for name, average in self.ema.items():
            live = self.unwrapped(name)
            for mean, param in zip(average.parameters(), live.parameters(), strict=True):
                mean.lerp_(param.detach(), 1.0 - decay)
            for mine, theirs in zip(average.buffers(), live.buffers(), strict=True):
                mine.copy_(theirs)

    def inference_modules(self) -> dict[str, nn.Module]:
        """What model.safetensors holds: each inference network, its EMA copy if kept."""
        return {
            n: self.ema[n] if n in self.ema else self.unwrapped(n) for n in self.inference_names
        }

    def backward(self, loss: Tensor) -> None:
        """Backward through Accelerate (loss scaling for fp16, DDP hooks)."""
        if self.accelerator is None:
            loss.backward()
        else:
            self.accelerator.backward(loss)

    def unwrapped(self, name: str) -> nn.Module:
        """The plain module behind `self.nets[name]` (no DDP / compile wrapper)."""
        net = self.nets[name]
        if self.accelerator is not None:
            net = self.accelerator.unwrap_model(net)
        return getattr(net, "_orig_mod", net)  # torch.compile keeps the module here

    def freeze_critics(self, count: int) -> None:
        """Freeze the first `count` layers of every training-only network (FreezeD)."""
        critics = [name for name in self.nets if name not in self.inference_names]
        if not critics:
            raise UserError(f"--freeze-d {count}: a {self.registry_name} run has no "
                            "discriminator to freeze; drop --freeze-d")  # fmt: skip
        for name in critics:
            layers = freeze_first_layers(self.nets[name], count)
            if count >= layers:
                raise UserError(
                    f"--freeze-d {count}: {name} has {layers} layers, and one at least must "
                    "learn; freeze fewer (FreezeD: the first few)"
                )

    def to(self, device: torch.device) -> None:
        """Move the inference networks (all that a loaded, untrained family has) to `device`."""
        for name in self.inference_names:
            self.nets[name].to(device)

    @property
    def device(self) -> torch.device:
        return next(iter(self.nets.values())).parameters().__next__().device

    def train(self, mode: bool = True) -> None:
        for net in self.nets.values():
            net.train(mode)

    def eval(self) -> None:
        self.train(False)


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode, no gradients: for helper networks and EMA copies."""
    module.eval()
    module.requires_grad_(False)
    return module


def strength_column(strength: Tensor, images: Tensor) -> Tensor:
    """(B,) strengths -> (B, 1, 1, 1) in the images' dtype, to broadcast over pixels."""
    return strength.to(images.dtype).reshape(-1, 1, 1, 1)
