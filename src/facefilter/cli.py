"""`facefilter`: one command line for data, training and applying filters.

Every subcommand is a dataclass; tyro turns its fields into flags and its
same-line comments into help. `main` turns a `UserError` into one line on
stderr and exit status 2.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Annotated, Any, Union

import tyro

from facefilter.errors import UserError
from facefilter.models import FAMILIES, config_class
from facefilter.train import TrainConfig


# --- data -------------------------------------------------------------------------------------
@dataclass
class DataSynth:
    """Render built-in synthetic faces to disk, in CelebA's file layout."""

    out: Path  # folder to write <style>/<id>.png, list_attr_celeba.txt, list_eval_partition.txt
    count: int = 1000  # faces per style
    size: int = 128  # pixels per side, 32 to 256
    seed: int = 0  # same seed, same faces, same bytes
    styles: str = "photo,anime,cartoon"  # comma list of styles to draw each face in


@dataclass
class DataPreview:
    """Write a labelled contact sheet of the synthetic faces: styles and attributes."""

    out: Path = Path("synth_preview.png")  # PNG to write
    size: int = 64  # pixels per face
    seed: int = 0  # which faces


DataCommand = Union[  # noqa: UP007 - tyro reads subcommands from a typing.Union
    Annotated[DataSynth, tyro.conf.subcommand("synth", prefix_name=False)],
    Annotated[DataPreview, tyro.conf.subcommand("preview", prefix_name=False)],
]


# --- train ------------------------------------------------------------------------------------
def _train_command(name: str) -> Any:
    """`facefilter train NAME`: TrainConfig's flags plus the family config's, unprefixed."""
    model = config_class(name)
    command = make_dataclass(
        f"Train_{name.replace('-', '_')}",
        [
            ("train", Annotated[TrainConfig, tyro.conf.OmitArgPrefixes]),
            ("model", Annotated[model, tyro.conf.OmitArgPrefixes], field(default_factory=model)),
        ],
    )
    command.family = name  # type: ignore[attr-defined]
    return Annotated[
        command, tyro.conf.subcommand(name, description=FAMILIES[name].summary, prefix_name=False)
    ]


# --- apply ------------------------------------------------------------------------------------
@dataclass
class Apply:
    """Turn a photo, or every image in a folder, into another domain or class."""

    run: tyro.conf.Positional[Path]  # run directory written by `facefilter train`
    inputs: tyro.conf.Positional[Path]  # an image file or a folder of images
    to: str  # target domain or class, e.g. anime
    output: Annotated[Path, tyro.conf.arg(aliases=("-o",))] = Path("out")  # file or folder
    source: Annotated[str | None, tyro.conf.arg(name="from")] = None  # source class (trVAE)
    compare: bool = False  # write input and output side by side
    sheet: Path | None = None  # also write all before/after pairs into this one PNG
    batch_size: int = 16  # images translated per batch
    device: str | None = None  # cpu, cuda, cuda:1 ... (default: a GPU when present)


def run_apply(command: Apply) -> int:
    from facefilter.pipeline import apply_whole_images, load_filter

    filt = load_filter(command.run, command.to, command.source, command.device)
    written, failures = apply_whole_images(
        filt,
        command.inputs,
        command.output,
        compare=command.compare,
        batch_size=command.batch_size,
        sheet=command.sheet,
    )
    for failure in failures:
        print(f"skipped: {failure}", file=sys.stderr)
    print(f"wrote {written} image(s) to {command.output}")
    return 1 if failures else 0


def run_data(command: DataSynth | DataPreview) -> int:
    if isinstance(command, DataSynth):
        from facefilter.data.synth import write_dataset

        styles = [s.strip() for s in command.styles.split(",") if s.strip()]
        write_dataset(command.out, command.count, command.size, command.seed, styles)
        print(f"wrote {command.count} faces x {len(styles)} style(s) to {command.out}")
    else:
        from facefilter.data.preview import write_preview

        write_preview(command.out, size=command.size, seed=command.seed)
        print(f"wrote {command.out}")
    return 0


def run_train(command: Any) -> int:
    from facefilter.train import train

    out = train(command.train, type(command).family, command.model)
    print(f"run saved in {out}: model.safetensors, samples/, loss.png, metrics.jsonl")
    return 0


def parser_type() -> Any:
    train = Union[tuple(_train_command(name) for name in FAMILIES)]  # noqa: UP007
    train_help = "Train a filter on your data or on built-in synthetic faces."
    data_help = "Make, preview and inspect data sets."
    return Union[  # noqa: UP007
        Annotated[train, tyro.conf.subcommand("train", description=train_help, prefix_name=False)],
        Annotated[Apply, tyro.conf.subcommand("apply", prefix_name=False)],
        Annotated[
            DataCommand, tyro.conf.subcommand("data", description=data_help, prefix_name=False)
        ],
    ]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `facefilter` console script."""
    try:
        command = tyro.cli(
            parser_type(),
            args=argv,
            prog="facefilter",
            description="Trainable face filters: train on your faces, apply to any photo.",
        )
        if hasattr(type(command), "family"):
            return run_train(command)
        if isinstance(command, Apply):
            return run_apply(command)
        return run_data(command)
    except UserError as error:
        print(f"facefilter: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
