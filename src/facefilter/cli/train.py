"""`facefilter train FAMILY`: one subcommand per registered family, its flags the
family's config and `TrainConfig`; `--resume` learns which flags were given."""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Annotated, Any

import tyro

from facefilter.models import FAMILIES, config_class, family_class
from facefilter.training.config import TrainConfig


@dataclass
class TwoSetTrainConfig(TrainConfig):
    """Where the two domains come from, how long to train, and where the run goes."""

    data: tyro.conf.Suppress[str | None] = None  # one-set families only


@dataclass
class OneSetTrainConfig(TrainConfig):
    """Where the data comes from, how long to train, and where the run goes."""

    data_a: tyro.conf.Suppress[str | None] = None  # two-domain families only
    data_b: tyro.conf.Suppress[str | None] = None


def train_command(name: str) -> Any:
    """`facefilter train NAME`: the family's TrainConfig and model flags, unprefixed; only
    the data flags the family reads (--data-a/--data-b, or --data)."""
    model = config_class(name)
    two_sets = family_class(name).data_kind == "unpaired"
    train_type = TwoSetTrainConfig if two_sets else OneSetTrainConfig

    def train_defaults() -> TrainConfig:  # the family's own batch size, image size, ...
        return train_type(out=tyro.MISSING, **model.train_defaults)

    command = make_dataclass(
        f"Train_{name.replace('-', '_')}",
        [
            ("train", Annotated[train_type, tyro.conf.OmitArgPrefixes],
             field(default_factory=train_defaults)),
            ("model", Annotated[model, tyro.conf.OmitArgPrefixes], field(default_factory=model)),
        ],
    )  # fmt: skip
    command.family = name  # type: ignore[attr-defined]
    return Annotated[
        command, tyro.conf.subcommand(name, description=FAMILIES[name].summary, prefix_name=False)
    ]


def given_flags(args: list[str]) -> set[str]:
    """The settings named on the command line (`--max-steps 5`, `--lr=1e-3`, `--no-flip`),
    as field names: `--resume` takes every other one from the run's config.json."""
    names = {arg[2:].split("=", 1)[0].replace("-", "_") for arg in args if arg.startswith("--")}
    return names | {name.removeprefix("no_") for name in names if name.startswith("no_")}


def run_train(command: Any, given: set[str] | None = None) -> int:
    from facefilter.training.engine import train

    # prints where the run went
    train(command.train, type(command).family, command.model, given=given)
    return 0
