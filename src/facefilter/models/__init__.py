"""The model registry: one name per family, created through `create_family`.

The table names each family's module and class instead of registering on
import, so listing the families imports nothing heavy and nothing registers by
side effect. It also declares what each family can do (`models.capabilities`), so
a run's config.json says whether it can be applied, edited or asked for verdicts
before its module is imported, and messages name the families that can.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from facefilter.errors import UserError
from facefilter.models.base import Family, ModelConfig
from facefilter.models.capabilities import Capability, EditsCodes, Predicts, Translates
from facefilter.sizes import ImageSize

Capable = TypeVar("Capable", bound=Capability)


@dataclass(frozen=True)
class FamilyEntry:
    module: str  # where the family lives
    family_class: str  # its Family subclass
    config_class: str  # its config dataclass (a variant is just other defaults)
    summary: str  # one line for --help
    can: tuple[type[Capability], ...]  # its capabilities (a test checks the class has them)


FAMILIES: dict[str, FamilyEntry] = {
    "cyclegan": FamilyEntry(
        "facefilter.models.cyclegan", "CycleGAN", "CycleGANConfig",
        "CycleGAN: two ResNet generators, PatchGAN discriminators, LSGAN + cycle + identity",
        (Translates,),
    ),
    "cyclegan-lite": FamilyEntry(
        "facefilter.models.cyclegan", "CycleGAN", "CycleGANLiteConfig",
        "CycleGAN with fewer blocks and feature maps: real time on a CPU at 128 px",
        (Translates,),
    ),
    "trvae": FamilyEntry(
        "facefilter.models.trvae", "TrVAE", "TrVAEConfig",
        "transfer VAE: one conditional VAE + MMD moves a face between any classes",
        (Translates,),
    ),
    "dcae": FamilyEntry(
        "facefilter.models.dcae", "DCAE", "DCAEConfig",
        "feature editor: a convolutional autoencoder + attribute vectors (+Smiling, -Eyeglasses)",
        (EditsCodes,),
    ),
    "pgae": FamilyEntry(
        "facefilter.models.pgae", "PGAE", "PGAEConfig",
        "feature editor: an autoencoder grown 8 -> 16 -> 32 -> 64 px + attribute vectors",
        (EditsCodes,),
    ),
    "makeover": FamilyEntry(
        "facefilter.models.makeover", "Makeover", "MakeoverConfig",
        "makeover GAN: a near-identity ResNet from one face set to another (men -> women)",
        (Translates,),
    ),
    "classifier": FamilyEntry(
        "facefilter.models.classifier", "AttributeClassifier", "ClassifierConfig",
        "attribute classifier (not a filter): a small ResNet that scores filters and labels photos",
        (Predicts,),
    ),
}  # fmt: skip


def family_entry(name: str) -> FamilyEntry:
    if name not in FAMILIES:
        raise UserError(f"unknown model family {name!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def family_class(name: str) -> type[Family]:
    entry = family_entry(name)
    cls: type[Family] = getattr(importlib.import_module(entry.module), entry.family_class)
    return cls


def config_class(name: str) -> type[ModelConfig]:
    entry = family_entry(name)
    cls: type[ModelConfig] = getattr(importlib.import_module(entry.module), entry.config_class)
    return cls


def create_family(
    name: str, config: ModelConfig | None, domains: Sequence[str], image_size: int | ImageSize, *,
    training: bool = True,
) -> Family:  # fmt: skip
    """Instantiate family `name` (its default config when `config` is None); with
    `training=False`, only the networks inference needs (no discriminators, no helpers)."""
    config = config if config is not None else config_class(name)()
    family = family_class(name)(config, domains, image_size, training=training)
    family.registry_name = name
    return family


def offers(name: str, capability: type[Capability]) -> bool:
    """Does family `name` have `capability` (an editor also translates)?"""
    return any(issubclass(declared, capability) for declared in family_entry(name).can)


def families_offering(capability: type[Capability]) -> list[str]:
    return [name for name in FAMILIES if offers(name, capability)]


def require(name: str, capability: type[Capability], path: Path | str, flag: str = "") -> None:
    """One line when the run at `path` (of family `name`) lacks `capability`: what it is,
    what wants the capability, and the families that have it."""
    if offers(name, capability):
        return
    what = f"{flag} {path}" if flag else str(path)
    names = families_offering(capability)
    needed = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    hint = ""
    if offers(name, Predicts):  # a classifier given as a filter: where it does go
        hint = (
            f"; give it to `facefilter eval RUN --classifier {path}` or `facefilter data "
            f"label ... --classifier {path}`, or `facefilter eval {path}` for its accuracy"
        )
    elif capability is Predicts:
        hint = (
            f"; train one with `facefilter train {names[0]} --data synth:photo,anime,cartoon "
            f"--out runs/{names[0]}` (or --data celeba:DIR)"
        )
    raise UserError(f"{what} is a {name} model, not {capability.noun}: it {capability.lacks}; "
                    f"{capability.wanted_by} need a {needed} run{hint}")  # fmt: skip


def capable(family: Family, capability: type[Capable], path: Path | str = "") -> Capable:
    """`family` as the capability a caller uses (one line when it lacks it)."""
    if not isinstance(family, capability):
        require(family.registry_name, capability, path or family.registry_name)
        raise AssertionError(f"{family.registry_name} declares {capability.__name__} "
                             "but does not derive from it")  # fmt: skip
    return family
