"""The model registry: one name per family, created through `create_family`.

The table names each family's module and class instead of registering on
import, so listing the families imports nothing heavy and nothing registers by
side effect.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass

from facefilter.errors import UserError
from facefilter.models.base import Family, ModelConfig
from facefilter.sizes import ImageSize


@dataclass(frozen=True)
class FamilyEntry:
    module: str  # where the family lives
    family_class: str  # its Family subclass
    config_class: str  # its config dataclass (a variant is just other defaults)
    summary: str  # one line for --help


FAMILIES: dict[str, FamilyEntry] = {
    "cyclegan": FamilyEntry(
        "facefilter.models.cyclegan", "CycleGAN", "CycleGANConfig",
        "CycleGAN: two ResNet generators, PatchGAN discriminators, LSGAN + cycle + identity",
    ),
    "cyclegan-lite": FamilyEntry(
        "facefilter.models.cyclegan", "CycleGAN", "CycleGANLiteConfig",
        "CycleGAN with fewer blocks and feature maps: real time on a CPU at 128 px",
    ),
    "trvae": FamilyEntry(
        "facefilter.models.trvae", "TrVAE", "TrVAEConfig",
        "transfer VAE: one conditional VAE + MMD moves a face between any classes",
    ),
    "dcae": FamilyEntry(
        "facefilter.models.dcae", "DCAE", "DCAEConfig",
        "feature editor: a convolutional autoencoder + attribute vectors (+Smiling, -Eyeglasses)",
    ),
    "pgae": FamilyEntry(
        "facefilter.models.pgae", "PGAE", "PGAEConfig",
        "feature editor: an autoencoder grown 8 -> 16 -> 32 -> 64 px + attribute vectors",
    ),
    "makeover": FamilyEntry(
        "facefilter.models.makeover", "Makeover", "MakeoverConfig",
        "makeover GAN: a near-identity ResNet from one face set to another (men -> women)",
    ),
    "classifier": FamilyEntry(
        "facefilter.models.classifier", "AttributeClassifier", "ClassifierConfig",
        "attribute classifier (not a filter): a small ResNet that scores filters and labels photos",
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
