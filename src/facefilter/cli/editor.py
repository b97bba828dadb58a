"""The feature editors' commands: `vectors`, `grid` and `lerp` (parsed here, run by
`facefilter.tools.editing`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import tyro

from facefilter.cli.flags import Detection, Editing, EditSettings, Running, Runtime
from facefilter.data.spec import spec_folder
from facefilter.errors import UserError
from facefilter.face.detect import DetectorSettings
from facefilter.memory import refuse_over_memory
from facefilter.pictures import check_picture_path
from facefilter.provenance import NO_LABEL, Provenance, unlabelled
from facefilter.safe_io import refuse_output_over_inputs

if TYPE_CHECKING:
    from facefilter.inference import Filter

EDIT_FLAGS = ("--edit", "--to")  # their values may start with "-" (-Eyeglasses)


@dataclass
class Vectors:
    """Compute a feature editor's attribute vectors: for each attribute, the
    mean code of faces that have it minus the mean code of faces that lack it. Training
    computes them on its own data; this recomputes them on any data with an attribute
    table, and saves them in the run (model.safetensors)."""

    run: tyro.conf.Positional[Path]  # run directory of a feature editor
    data: str | None = None  # faces with an attribute table; default: the run's training data
    count: int | None = None  # faces with and without each attribute; default up to 1000 each
    attributes: str | None = None  # comma list, e.g. Smiling,Eyeglasses; default: every one


@dataclass
class Grid:
    """Write a feature grid: faces in rows, each attribute added and removed in columns
    (z + strength * v), labelled."""

    run: tyro.conf.Positional[Path]  # run directory or export of a feature editor
    inputs: tyro.conf.Positional[tuple[Path, ...]] = ()  # face images or folders (optional)
    output: Annotated[Path, tyro.conf.arg(aliases=("-o",))] = Path("feature_grid.png")
    data: str | None = None  # faces to show when no images are given; default: the run's data
    faces: int = 6  # rows
    attributes: str | None = None  # comma list of columns; default: every attribute with a vector
    strength: float = 1.5  # how far along each vector: beyond 1 exaggerates, so edits show
    enlarge: int = 2  # show each pixel this many times wider (32 px faces are small)
    label: bool = True  # say "made by a filter" in the PNG (IPTC, XMP); --no-label: not
    detection: Detection = field(default_factory=DetectorSettings)
    running: Running = field(default_factory=Runtime)
    editing: Editing = field(default_factory=EditSettings)


@dataclass
class Lerp:
    """Write a GIF: one face (or photo) moving along an edit (--edit -Smiling=2: from z to
    z - 2 v, pasted back into the photo), or, given two faces, one morphing into the other
    (the decodes of the codes between them: feature editors only)."""

    run: tyro.conf.Positional[Path]  # run directory or export
    inputs: tyro.conf.Positional[tuple[Path, ...]]  # one photo (with --edit) or two faces
    # the edit to grow, e.g. -Smiling=2 (several add up); for other families a target: anime
    edit: Annotated[
        tuple[str, ...], tyro.conf.arg(metavar="+NAME[=AMOUNT]"), tyro.conf.UseAppendAction
    ] = ()
    source: Annotated[str | None, tyro.conf.arg(name="from")] = None  # input's class (trVAE)
    output: Annotated[Path, tyro.conf.arg(aliases=("-o",))] = Path("lerp.gif")
    frames: int = 16  # frames one way (the GIF plays forth and back)
    seconds: float = 2.0  # one way
    enlarge: int = 1  # show each pixel this many times wider (for small face crops)
    label: bool = True  # say "made by a filter" in the GIF (IPTC, XMP); --no-label: not
    detection: Detection = field(default_factory=DetectorSettings)
    running: Running = field(default_factory=Runtime)  # a morph needs the torch engine
    editing: Editing = field(default_factory=EditSettings)


def glue_edit_values(argv: list[str]) -> list[str]:
    """`--edit -Eyeglasses` -> `--edit=-Eyeglasses`: the parser would take -Eyeglasses for
    a flag. Short flags (-o, -h) are never glued."""
    glued: list[str] = []
    for arg in argv:
        if glued and glued[-1] in EDIT_FLAGS and arg[:1] == "-" and arg[1:2].isalnum() and (
                len(arg) > 2):  # fmt: skip
            glued[-1] = f"{glued[-1]}={arg}"
        else:
            glued.append(arg)
    return glued


def run_vectors(command: Vectors) -> int:
    from facefilter.runs.config import read_run_config, split_snapshot
    from facefilter.runs.lock import run_lock
    from facefilter.tools.editing import compute_vectors

    if split_snapshot(command.run)[1] is not None:
        raise UserError(f"vectors writes into the run's own model.safetensors; give {command.run}"
                        f" without @step (kept weights are read-only)")  # fmt: skip
    read_run_config(command.run)  # a missing run is one line, not a lock in a new folder
    with run_lock(command.run, command="vectors"):  # never beside a train writing the run
        report = compute_vectors(command.run, command.data, command.count, command.attributes)
    fit = report.fit
    print(f"attribute vectors from {report.spec} ({report.faces} faces):")
    for name in report.chosen:
        row = fit.names.index(name)
        with_it, without = fit.counts[row].tolist()
        if with_it and without:
            print(f"  {name:<20} {with_it:>5} with, {without:>5} without, "
                  f"|v| {fit.vectors[row].norm():.3f}")  # fmt: skip
        else:
            print(f"  {name:<20} no vector: {report.have[name]} of the {report.faces} faces have "
                  "it (it is no longer offered)")  # fmt: skip
    print(f"saved in {command.run}; list them with facefilter apply {command.run} --list-targets")
    return 0


MAX_FRAMES = 500  # one way: a GIF of 1,000 frames
MAX_ROWS = 100  # faces in a feature grid
MAX_SIDE = 4096  # pixels a side of a tile or frame, once enlarged


def check_enlarge(enlarge: int, side: int) -> None:
    """One line, before any work, when --enlarge would make pictures no viewer opens."""
    if side * enlarge > MAX_SIDE:
        raise UserError(f"--enlarge {enlarge} makes {side} px pictures {side * enlarge} px "
                        f"wide; give 1 to {max(1, MAX_SIDE // side)}")  # fmt: skip


def output_label(
    wanted: bool, flt: Filter, targets: list[str], output: Path, whole: bool = False
) -> Provenance | None:
    """The label an editing output carries, or None with one line on stderr saying why."""
    note = NO_LABEL if not wanted else unlabelled(output)
    if note is not None:
        print(note, file=sys.stderr)
        return None
    return flt.label(targets, whole)


def run_grid(command: Grid) -> int:
    from facefilter.inference import PhotoFilter
    from facefilter.inference.filter import check_strength
    from facefilter.pictures import save_picture
    from facefilter.tools.editing import (
        edited_attributes,
        feature_grid,
        parse_names,
        read_faces,
        training_spec,
    )

    if not 1 <= command.faces <= MAX_ROWS or command.enlarge < 1:
        raise UserError(f"--faces must be 1 to {MAX_ROWS} and --enlarge at least 1")
    check_picture_path(command.output)
    folder = spec_folder(command.data) if command.data else None
    refuse_output_over_inputs(command.output, [*command.inputs, *([folder] if folder else [])])
    flt = command.running.load(command.run, command.editing.overrides())
    check_enlarge(command.enlarge, max(flt.size.hw))
    check_strength(command.strength)
    edited_attributes(flt)  # before any face is read
    spec = None if command.inputs else training_spec(command.run, command.data)
    photo_filter = PhotoFilter.build(flt, command.detection)
    crops, names = read_faces(photo_filter, command.inputs, spec, command.faces)
    chosen = parse_names(command.attributes)
    picture = feature_grid(flt, crops, names, chosen, command.strength, command.enlarge)
    columns = [f"{sign}{name}" for name in chosen or edited_attributes(flt) for sign in "+-"]
    save_picture(command.output, picture, output_label(command.label, flt, columns, command.output))
    print(f"wrote {command.output}: {len(crops)} face(s)")
    return 0


def run_lerp(command: Lerp) -> int:
    from facefilter.data.images import load_image
    from facefilter.inference import PhotoFilter
    from facefilter.pictures import enlarge, save_gif
    from facefilter.tools.editing import edit_frames, morph_frames

    if not 2 <= command.frames <= MAX_FRAMES or not 0 < command.seconds <= 600:
        raise UserError(f"--frames must be 2 to {MAX_FRAMES}, --seconds more than 0 and at "
                        "most 600")  # fmt: skip
    if command.enlarge < 1:
        raise UserError("--enlarge must be at least 1")
    for path in command.inputs:
        if not path.is_file():
            raise UserError(f"input {path} is not an image file")
    check_picture_path(command.output, suffixes=(".gif",))
    refuse_output_over_inputs(command.output, command.inputs)
    flt = command.running.load(command.run, command.editing.overrides())
    photo_filter = PhotoFilter.build(flt, command.detection)
    images = [np.asarray(load_image(path)) for path in command.inputs]
    largest = max([*flt.size.hw, *(side for image in images for side in image.shape[:2])])
    check_enlarge(command.enlarge, largest)
    # every frame is held until the GIF is written, as an array and as a PIL image
    frame_bytes = 2 * max(image.size for image in images) * command.enlarge**2  # uint8 RGB
    refuse_over_memory(command.frames * frame_bytes, f"--frames {command.frames} of "
                       f"{largest} px pictures", "lower --frames or --enlarge")  # fmt: skip
    if len(images) == 2 and not command.edit:
        if flt.family is None:
            raise UserError(f"{command.run} is an ONNX export; a morph needs the run directory "
                            "(and --engine torch)")  # fmt: skip
        crops = [photo_filter.face_crop(image, str(path))
                 for image, path in zip(images, command.inputs, strict=True)]  # fmt: skip
        frames = morph_frames(flt.family, command.run, crops[0], crops[1], command.frames)
        targets, whole = ["morph of two faces"], True  # decodes between codes: every pixel made
    elif len(images) == 1 and command.edit:
        direction = (flt.combine(command.edit) if len(command.edit) > 1 else
                     flt.resolve(command.edit[0], command.source))  # fmt: skip
        frames = edit_frames(photo_filter, images[0], direction, command.frames)
        targets, whole = [str(target) for target in direction.targets], False  # pasted back
    else:
        raise UserError("give one photo with --edit (a lerp along it) or two faces (a morph)")
    label = output_label(command.label, flt, targets, command.output, whole)
    frames = [enlarge(frame, command.enlarge) for frame in frames]
    save_gif(command.output, frames, command.seconds, label)
    print(f"wrote {command.output}: {command.frames} frames each way")
    return 0
