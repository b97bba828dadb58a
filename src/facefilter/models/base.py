"""The one contract every model family implements.

A family owns its networks and optimizers (in dicts, by name), knows how to take
one training step, and how to translate images. The training engine
(`facefilter.train`), the run directory (`facefilter.checkpoint`), `apply`,
`export` and the tests talk to families only through this class, so adding a
family never changes them.

Batches are dicts of tensors. Which keys a family receives depends on its
`data_kind`:

- ``"unpaired"``: ``{"real_a": (B, 3, H, W), "real_b": (B, 3, H, W)}``; the two
  domains are named by ``domains[0]`` and ``domains[1]``.
- ``"classes"``: ``{"image": (B, 3, H, W), "label": (B,) long}``; ``label``
  indexes ``domains`` (the class names).

Images are float32 in [-1, 1] everywhere.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from torch import Tensor, nn

from facefilter.errors import UserError

if TYPE_CHECKING:
    from accelerate import Accelerator

DataKind = Literal["unpaired", "classes"]


@dataclass
class ModelConfig:
    """Base of every family's config; its fields are CLI flags and go to config.json."""


class Family(abc.ABC):
    """A trainable translator: networks + optimizers + one step + inference."""

    name: ClassVar[str]  # registry name, e.g. "cyclegan"
    data_kind: ClassVar[DataKind]

    def __init__(self, config: ModelConfig, domains: Sequence[str], image_size: int) -> None:
        if len(set(domains)) != len(domains) or len(domains) < 2:
            raise UserError(
                f"a model needs at least two distinct domains or classes, got {list(domains)}"
            )
        self.registry_name = self.name  # "cyclegan-lite" shares CycleGAN's class
        self.config = config
        self.domains = list(domains)
        self.image_size = image_size
        self.nets: dict[str, nn.Module] = self.build_networks()
        self.opts: dict[str, torch.optim.Optimizer] = {}
        self.accelerator: Accelerator | None = None

    # --- what a family must provide -------------------------------------------------
    @abc.abstractmethod
    def build_networks(self) -> dict[str, nn.Module]:
        """Create every network the family trains, by name (initialised)."""

    @abc.abstractmethod
    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per network group, over `self.nets` (called by `setup`)."""

    @abc.abstractmethod
    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, float]:
        """One optimisation step on `batch`; returns the losses to log.

        Weights that change during training come from `facefilter.schedules` at
        `step`, so a resumed run continues exactly.
        """

    @abc.abstractmethod
    def export_module(self, target: str, source: str | None = None) -> nn.Module:
        """A pure tensor-in tensor-out module: (B, 3, H, W) in [-1, 1] -> same."""

    @abc.abstractmethod
    def sample_grid(self, batch: dict[str, Tensor]) -> Tensor:
        """A picture of what the model does on `batch`: (3, H, W) in [0, 1]."""

    # --- defaults a family may override ----------------------------------------------
    inference_networks: ClassVar[tuple[str, ...]] = ()  # saved to model.safetensors

    def lr_factor(self, step: int, total_steps: int) -> float:
        """Multiplier of every optimizer's base learning rate at `step`."""
        return 1.0

    def extra_state(self) -> dict[str, Tensor]:
        """Training state beyond networks and optimizers (e.g. an image pool)."""
        return {}

    def load_extra_state(self, state: dict[str, Tensor]) -> None:
        """Restore what `extra_state` returned (nothing by default)."""
        del state

    @torch.no_grad()
    def translate(self, images: Tensor, target: str, source: str | None = None) -> Tensor:
        """Turn `images` (B, 3, H, W) in [-1, 1] into domain `target`."""
        module = self.export_module(self.check_domain(target), source)
        module.eval()
        return module(images)

    # --- shared machinery --------------------------------------------------------------
    def setup(self, accelerator: Accelerator) -> None:
        """Build optimizers and hand networks and optimizers to Accelerate."""
        self.accelerator = accelerator
        self.opts = self.build_optimizers()
        names, opt_names = list(self.nets), list(self.opts)
        prepared = accelerator.prepare(*self.nets.values(), *self.opts.values())
        prepared = prepared if isinstance(prepared, tuple) else (prepared,)
        self.nets = dict(zip(names, prepared[: len(names)], strict=True))
        self.opts = dict(zip(opt_names, prepared[len(names) :], strict=True))

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
            return self.accelerator.unwrap_model(net)
        return net

    @property
    def device(self) -> torch.device:
        return next(iter(self.nets.values())).parameters().__next__().device

    def check_domain(self, name: str) -> str:
        if name not in self.domains:
            raise UserError(f"unknown domain {name!r}; this model knows {', '.join(self.domains)}")
        return name

    def train(self, mode: bool = True) -> None:
        for net in self.nets.values():
            net.train(mode)

    def eval(self) -> None:
        self.train(False)


def to_unit(images: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], for pictures."""
    return (images.clamp(-1, 1) + 1) / 2
