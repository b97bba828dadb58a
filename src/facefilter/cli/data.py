"""`facefilter data ...`: make, preview, crop and inspect data sets (parsed by `cli`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import tyro

from facefilter.cli.flags import Detection
from facefilter.data.spec import spec_folder
from facefilter.errors import UserError
from facefilter.face.detect import DetectorSettings
from facefilter.pictures import check_picture_path
from facefilter.safe_io import refuse_output_over_inputs


# --- data -------------------------------------------------------------------------------------
@dataclass
class DataSynth:
    """Render built-in synthetic faces to disk, in CelebA's file layout."""

    out: Path  # folder to write <style>/<id>.png, list_attr_celeba.txt, list_eval_partition.txt
    count: int = 1000  # faces per style
    size: int = 128  # pixels per side, 32 to 256
    seed: int = 0  # same seed, same faces, same bytes
    styles: str = "photo,anime,cartoon"  # comma list of styles to draw each face in
    # force an attribute, e.g. --set Eyeglasses=1 --set Male=-1 (1 present, -1 absent): the
    # same faces, pose and backdrop as without it, and list_attr_celeba.txt to match
    forced: Annotated[
        tuple[str, ...], tyro.conf.arg(name="set", metavar="NAME=1|-1"), tyro.conf.UseAppendAction
    ] = ()


@dataclass
class DataPreview:
    """Write a labelled contact sheet of the synthetic faces: styles and attributes."""

    out: Path = Path("synth_preview.png")  # PNG to write
    size: int = 64  # pixels per face
    seed: int = 0  # which faces


@dataclass
class DataCrop:
    """Detect, align and save the faces in a folder of raw photos, with a manifest."""

    raw: tyro.conf.Positional[Path]  # folder of photos (sub-folders are kept in OUT)
    out: tyro.conf.Positional[Path]  # where crops, manifest.jsonl and framing.json go
    size: int = 128  # crop side in pixels
    margin: float = 0.0  # extra border around the face, fraction of the crop
    largest: bool = False  # only the largest face of each photo
    # frame the faces as this run's source domain was framed (its first domain), so `eval
    # RUN --data folder:OUT` feeds it faces framed as it learned them; unset: the crop framing
    like: Path | None = None
    detection: Detection = field(default_factory=DetectorSettings)


@dataclass
class DataReport:
    """Print a coverage report of a data set (classes, attributes, brightness, face size and
    pose for `data crop` folders) and draw it as a PNG chart."""

    spec: tyro.conf.Positional[str]  # data spec, e.g. synth:photo, celeba:DIR, folder:DIR
    out: Path = Path("data_report.png")  # chart to write
    limit: int = 2000  # images read at most (evenly spread over the set)


@dataclass
class DataLabel:
    """Label your own photos with an attribute classifier: each face found is aligned and
    saved, with a CelebA-format attribute table (use it as celeba:OUT?where=Smiling) and
    every probability and its confidence in labels.jsonl."""

    spec: tyro.conf.Positional[str]  # photos: folder:PHOTOS (or any data spec)
    classifier: Path  # an attribute classifier run (facefilter train classifier)
    output: Annotated[Path, tyro.conf.arg(aliases=("-o",))] = Path("labelled")  # folder
    threshold: float = 0.5  # an attribute is 1 in the table where its probability >= this
    size: int | None = None  # crop side in pixels (e.g. 128 to train on); unset: the classifier's
    detect: Literal["auto", "always", "never"] = "auto"  # auto: small images with no face are crops
    largest: bool = False  # only the largest face of each photo
    detection: Detection = field(default_factory=DetectorSettings)
    device: str | None = None  # cpu, cuda ...; the GPU when there is one


@dataclass
class DataSamplePhoto:
    """Write real photographs of faces that installed packages ship, to try filters on and
    to measure them with (none is ever trained on): one photo, or a folder of them."""

    # the PNG to write; a folder for `lfw` and `people`
    output: Annotated[Path, tyro.conf.arg(aliases=("-o",))] = Path("astronaut.png")
    # astronaut, grace-hopper, group (six people), lfw (100 people from Labeled Faces in the
    # Wild, grey, enlarged) or people (the astronaut, Grace Hopper and the 100: 102 people)
    which: Literal["astronaut", "grace-hopper", "group", "lfw", "people"] = "astronaut"


DataCommand = Union[  # noqa: UP007 - tyro reads subcommands from a typing.Union
    Annotated[DataSynth, tyro.conf.subcommand("synth", prefix_name=False)],
    Annotated[DataPreview, tyro.conf.subcommand("preview", prefix_name=False)],
    Annotated[DataCrop, tyro.conf.subcommand("crop", prefix_name=False)],
    Annotated[DataReport, tyro.conf.subcommand("report", prefix_name=False)],
    Annotated[DataLabel, tyro.conf.subcommand("label", prefix_name=False)],
    Annotated[DataSamplePhoto, tyro.conf.subcommand("sample-photo", prefix_name=False)],
]


def run_data_crop(command: DataCrop) -> int:
    from facefilter.data.prepare import crop_faces
    from facefilter.face import AlignConfig

    if not 16 <= command.size <= 1024:
        raise UserError(f"--size {command.size}: give a crop side of 16 to 1024 pixels, e.g. 128")
    align = AlignConfig(size=command.size, margin=command.margin)
    if command.like is not None:
        from facefilter.data.framing import align_config
        from facefilter.runs.config import read_run_config

        run = read_run_config(command.like)
        align = align_config(run.framing_of(run.domains[0]), command.size, command.margin)
    detector = command.detection.create()
    warn = lambda message: print(message, file=sys.stderr)  # noqa: E731
    report = crop_faces(command.raw, command.out, detector, align,
                        largest_only=command.largest, warn=warn)  # fmt: skip
    for path in report.no_face:
        print(f"no face: {path}", file=sys.stderr)
    print(report.summary())
    print(f"crops, manifest.jsonl and framing.json in {command.out}")
    return 0


def run_data_report(command: DataReport) -> int:
    from facefilter.data.overview import build_report, draw_report

    if command.limit < 1:
        raise UserError(f"--limit must be at least 1, got {command.limit}")
    folder = spec_folder(command.spec)  # the chart must not join the images it describes
    if command.out.suffix and not command.out.is_dir():  # else a folder for data_report.png
        check_picture_path(command.out, "--out", (".png",))
    refuse_output_over_inputs(command.out, [folder] if folder else [], "--out")
    report = build_report(command.spec, command.limit)
    print("\n".join(report.lines()))
    print(f"chart written to {draw_report(report, command.out)}")
    return 0


def run_data_label(command: DataLabel) -> int:
    from facefilter.inference.predictor import Classifier
    from facefilter.tools.label import label_faces

    folder = spec_folder(command.spec)
    refuse_output_over_inputs(command.output, [folder] if folder else [], "-o")
    classifier = Classifier.load(command.classifier, command.device)
    detector = None
    if command.detect != "never" and not command.spec.startswith("synth:"):
        detector = command.detection.create()
    warn = lambda message: print(message, file=sys.stderr)  # noqa: E731
    report = label_faces(command.spec, classifier, command.output, detector,
                         detect=command.detect, threshold=command.threshold,
                         largest=command.largest, size=command.size, warn=warn,
                         progress=sys.stderr.isatty())  # fmt: skip
    for path in report.no_face[:5]:
        print(f"no face: {path}", file=sys.stderr)
    print(report.summary())
    print(f"table, faces/ and labels.jsonl in {command.output}: train on them as "
          f"celeba:{command.output} (e.g. ?where=Smiling)")  # fmt: skip
    return 0


def run_sample_photo(command: DataSamplePhoto) -> int:
    from facefilter.data.real_photos import REAL_PHOTOS, lfw_faces
    from facefilter.pictures import save_picture

    if command.which in REAL_PHOTOS:
        check_picture_path(command.output)
        make, credit = REAL_PHOTOS[command.which]
        picture = make()
        save_picture(command.output, picture)
        print(f"wrote {command.output} ({credit}, {picture.shape[1]}x{picture.shape[0]})")
        return 0
    if command.output.suffix or (command.output.exists() and not command.output.is_dir()):
        raise UserError(f"-o {command.output}: --which {command.which} writes a folder of "
                        "photos; give a folder name, e.g. -o real")  # fmt: skip
    if command.which == "people":
        for name in ("astronaut", "grace-hopper"):
            save_picture(command.output / f"{name}.png", REAL_PHOTOS[name][0]())
    faces = lfw_faces()
    for index, face in enumerate(faces):
        save_picture(command.output / f"lfw-{index:03d}.png", face)
    people = len(faces) + (2 if command.which == "people" else 0)
    print(
        f"wrote {people} photos of {people} different people to {command.output} (LFW: "
        "Labeled Faces in the Wild, via scikit-image's lfw_subset, grey, enlarged 4x)"
    )
    return 0


def run_data(command: Any) -> int:
    handlers: dict[type, Callable[[Any], int]] = {
        DataCrop: run_data_crop,
        DataReport: run_data_report,
        DataLabel: run_data_label,
        DataSamplePhoto: run_sample_photo,
    }
    if type(command) in handlers:
        return handlers[type(command)](command)
    if isinstance(command, DataSynth):
        from facefilter.synth import write_dataset
        from facefilter.synth.edits import parse_set_flags

        styles = [s.strip() for s in command.styles.split(",") if s.strip()]
        forced = parse_set_flags(command.forced)
        write_dataset(command.out, command.count, command.size, command.seed, styles, forced)
        print(f"wrote {command.count} faces x {len(styles)} style(s) to {command.out}")
    else:
        from facefilter.synth import write_preview

        check_picture_path(command.out, "--out")
        write_preview(command.out, size=command.size, seed=command.seed)
        print(f"wrote {command.out}")
    return 0
