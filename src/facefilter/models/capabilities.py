"""What a family can do beyond training: capabilities it declares, typed.

Every family is a `Family` (the trainable core: networks, optimizers, one step). What
it offers once trained is a capability, a subclass of `Family` it also derives from and
that its registry entry declares (`facefilter.models.FAMILIES`):

- `Translates`: turns faces into others (`apply`, `export`, `eval --to`, the demo);
- `EditsCodes`: a `Translates` whose code space holds attribute vectors (`vectors`,
  `grid`, `lerp`'s morph);
- `Predicts`: tells what a face has (`eval --classifier`, `data label`, `--eval-every`).

A caller asks for the capability it uses (`runs.weights.load_filter`, `load_editor`,
`load_classifier`, or `models.capable`), never for a family by name, so a new family
with a capability needs no change outside `models/` and the place that uses it.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from facefilter.models.base import Family, LabelledFaces
from facefilter.models.targets import Direction, Target, resolve, targets_of
from facefilter.models.vectors import VectorFit


class Capability(Family):
    """What the capabilities share: the words a refusal uses (`models.require`)."""

    noun: ClassVar[str]  # what a family with it is: "a filter"
    lacks: ClassVar[str]  # what one without it does not: "translates nothing"
    wanted_by: ClassVar[str]  # who wants it: "apply, export, eval --to and the demo"


class Translates(Capability):
    """Turns faces into other faces: one pure translator module per direction."""

    noun = "a filter"
    lacks = "translates nothing"
    wanted_by = "apply, export, eval --to and the demo"

    @abc.abstractmethod
    def directions(self) -> list[Direction]:
        """Every translation this model offers (empty until an editor has vectors)."""

    @abc.abstractmethod
    def translator(self, direction: Direction) -> nn.Module:
        """A pure module for `direction`: (images (B, 3, H, W), strength (B,)) -> images;
        strength 0 returns the input. The very graph ONNX export writes."""

    def targets(self) -> list[str]:
        return targets_of(self.directions())

    def resolve(self, target: str | Target, source: str | None = None) -> Direction:
        return resolve(self.directions(), target, source)

    @torch.no_grad()
    def translate(
        self, images: Tensor, target: str | Target, source: str | None = None,
        strength: float = 1.0,
    ) -> Tensor:  # fmt: skip
        """Turn `images` (B, 3, H, W) in [-1, 1] into `target` at `strength`."""
        module = self.translator(self.resolve(target, source)).eval()
        strengths = torch.full((images.shape[0],), float(strength), device=images.device)
        out: Tensor = module(images, strengths)
        return out


class EditsCodes(Translates):
    """A translator through a code space: attribute vectors `v`, edits `z + strength * v`."""

    noun = "a feature editor"
    lacks = "has no code space to edit"
    wanted_by = "attribute vectors, grids and morphs"

    @abc.abstractmethod
    def fit_vectors(
        self, faces: LabelledFaces, count: int, chosen: Sequence[str] | None = None
    ) -> VectorFit:
        """Attribute vectors from up to `count` faces with and without each attribute of
        `chosen` (every attribute of the model when None) that `faces`' table has."""

    @abc.abstractmethod
    def edited_attributes(self) -> list[str]:
        """The attributes that have a vector (and so an edit)."""

    @abc.abstractmethod
    def interpolate(self, start: Tensor, end: Tensor, weights: Sequence[float]) -> Tensor:
        """Decodes of the codes between two faces (1, 3, S, S): (len(weights), 1, 3, S, S)."""

    @property
    @abc.abstractmethod
    def vector_count(self) -> int:
        """How many faces with (and without) an attribute its vector averages by default."""


class Verdict(NamedTuple):
    """What a `Predicts` family says of a batch: pooled features (B, D), attribute scores
    (B, A) and style scores (B, C): logits from the network, probabilities from `predict`."""

    features: Tensor  # (B, D) the pooled trunk: what FID and KID compare
    attr_logits: Tensor  # (B, A)
    style_logits: Tensor  # (B, C); C = 0 without a style head


class Predicts(Capability):
    """Tells what a face has: a probability per attribute and per style, and features."""

    noun = "an attribute classifier"
    lacks = "gives no verdicts on faces"
    wanted_by = "--classifier, data label and eval's verdicts"

    attributes: list[str]  # the attribute columns of `Verdict.attr_logits`
    styles: list[str]  # the style columns of `Verdict.style_logits` (empty: no style head)

    @abc.abstractmethod
    def predict(self, images: Tensor) -> Verdict:
        """(B, 3, S, S) in [-1, 1] -> probabilities and pooled features, in eval mode."""

    @property
    @abc.abstractmethod
    def num_features(self) -> int:
        """The width D of `Verdict.features`."""


CAPABILITIES: tuple[type[Capability], ...] = (Translates, EditsCodes, Predicts)
