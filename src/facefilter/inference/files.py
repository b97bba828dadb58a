"""Apply a filter to image files: one photo or every image under a folder.

Each file is decoded, filtered by a `PhotoFilter` and written; a file that fails
(unreadable, no face) is reported on its own line and the rest carry on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from facefilter.data.images import IMAGE_EXTENSIONS, ImageError, list_images, load_image
from facefilter.errors import UserError
from facefilter.inference.photo import (
    NoFaceError,
    PhotoFilter,
    Request,
    Translated,
    side_by_side,
)
from facefilter.pictures import labelled_grid, labelled_sheet, save_picture
from facefilter.provenance import Provenance, unlabelled

MIN_SIDE = 16  # pixels; below this there is no face left to translate
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


@dataclass(frozen=True)
class OutputOptions:
    compare: bool = False  # input first, then each result, side by side
    crop_only: bool = False  # write the aligned (translated) faces, not the whole photo
    sheet: Path | None = None  # also gather every before/after crop pair into this PNG
    label: Provenance | None = None  # "made by a filter" in every picture (None: --no-label)


@dataclass
class ApplyReport:
    written: int = 0  # input images that were filtered
    files: list[Path] = field(default_factory=list)  # what was written for them
    sheet: Path | None = None  # the --sheet PNG, when one was written
    failures: list[str] = field(default_factory=list)
    whole: list[Path] = field(default_factory=list)  # images taken whole as face crops


def summary(report: ApplyReport, output: Path) -> str:
    """What was written, named as it is on disk (`--crop-only` writes one file per face)."""
    files, sheet = report.files, f"; sheet {report.sheet}" if report.sheet else ""
    if len(files) == 1:
        return f"wrote {files[0]}{sheet}"
    if not files:
        return f"wrote no file to {output}"
    folder = Path(os.path.commonpath([p.parent for p in files]))  # a folder that exists
    names = [str(p.relative_to(folder)) for p in files[:3]] + (["..."] if len(files) > 3 else [])
    listed = ", ".join(names)
    return f"wrote {len(files)} file(s) for {report.written} image(s) in {folder}: {listed}{sheet}"


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def require_input(path: Path) -> None:
    """One line for a missing input, before anything is loaded or written."""
    if not path.exists():
        raise UserError(f"input {path} does not exist")


def input_files(path: Path) -> list[Path]:
    """The images to process: one file, or every image under a folder."""
    require_input(path)
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise UserError(f"{path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        return files
    return [path]


def output_paths(inputs: list[Path], root: Path, output: Path, suffix: str) -> list[Path]:
    """Where each result goes: `output` itself for one file, else mirrored under `output`."""
    if root.is_file():
        if output.suffix.lower() in IMAGE_EXTENSIONS:
            return [output]
        return [output / f"{root.stem}{suffix}.png"]
    if output.suffix.lower() in IMAGE_EXTENSIONS:
        raise UserError(f"-o {output} looks like a file, but the input {root} is a folder")
    names = [p.relative_to(root).with_name(f"{p.stem}{suffix}.png") for p in inputs]
    clashing = {name for name in names if names.count(name) > 1}
    # a.jpg and a.png would both become a_anime.png: keep their extensions apart
    apart = [
        n.with_name(f"{p.stem}_{p.suffix[1:].lower()}{suffix}.png") if n in clashing else n
        for p, n in zip(inputs, names, strict=True)
    ]
    return [output / name for name in apart]


def load_photo(path: Path) -> np.ndarray:
    """Decode `path` to (H, W, 3) uint8, refusing images too small to hold a face."""
    image = load_image(path)
    if min(image.size) < MIN_SIDE:
        raise ImageError(
            f"{path}: {image.width}x{image.height} is too small; give at least "
            f"{MIN_SIDE}x{MIN_SIDE} px"
        )
    return np.asarray(image)


def pictures(
    result: Translated, options: OutputOptions, labels: Sequence[str] = ()
) -> list[np.ndarray]:
    """What to write for one photo: the photo, or one picture per face with --crop-only.
    Side by side (--compare, or several targets) the input comes first; with `labels`
    (input, then each target) each column is named."""
    beside = options.compare or len(result.photos) > 1  # `--to all` shows the input first

    def row(*images: np.ndarray) -> np.ndarray:
        if not labels:
            return side_by_side(*images)
        return labelled_grid(np.stack(images)[None], columns=labels)

    if options.crop_only and not result.whole:
        per_face = zip(result.crops, *result.outputs, strict=True)
        return [row(*images) if beside else images[1] for images in per_face]
    if beside:
        first = result.crops[0] if result.whole else result.image  # same size as the results
        return [row(first, *result.photos)]
    return [result.photos[0]]


def made_whole(result: Translated, options: OutputOptions) -> bool:
    """Whether `pictures` writes the model's output alone (a crop, or an image taken whole),
    not a photo with faces pasted back or the input beside the result."""
    beside = options.compare or len(result.photos) > 1
    return not beside and (result.whole or options.crop_only)


def kind_labels(request: Request) -> list[str]:
    """Column names of a side-by-side picture: the input (and its class), then each target."""
    sources = {d.source for d in request.directions if d.source}
    source = f"input ({sources.pop()})" if len(sources) == 1 else "input"
    return [source, *(str(d.target) for d in request.directions)]


def numbered(destination: Path, count: int) -> list[Path]:
    """`out.png` for one picture, `out_face1.png`, `out_face2.png`, ... for several."""
    if count == 1:
        return [destination]
    return [destination.with_name(f"{destination.stem}_face{i + 1}{destination.suffix}")
            for i in range(count)]  # fmt: skip


def default_warn(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def save_labelled(
    path: Path, picture: np.ndarray, label: Provenance | None, warn: Callable[[str], None],
    warned: set[str],
) -> None:  # fmt: skip
    """`save_picture` with `label`; a format that cannot carry it (BMP) is warned once."""
    note = unlabelled(path) if label is not None else None
    if note is not None and path.suffix.lower() not in warned:
        warned.add(path.suffix.lower())
        warn(note)
    save_picture(path, picture, label)


def apply_to_files(
    photo_filter: PhotoFilter,
    request: Request,
    inputs: Path,
    output: Path,
    options: OutputOptions = OutputOptions(),
    *,
    suffix: str = "",
    warn: Callable[[str], None] = default_warn,
    progress: bool = True,
) -> ApplyReport:
    """Filter every image `inputs` names into `output`; failures are warned and counted."""
    files = input_files(inputs)
    if inputs.is_dir():  # a second run must not filter the first run's results again
        files = [f for f in files if not f.resolve().is_relative_to(output.resolve())]
    targets = output_paths(files, inputs, output, suffix)
    report = ApplyReport()
    warned: set[str] = set()  # suffixes said once to carry no label
    kinds = kind_labels(request)
    sheet_faces: list[list[np.ndarray]] = []
    bar = tqdm(files, disable=not progress or len(files) < 2, desc="apply", unit="image")
    for path, destination in zip(bar, targets, strict=True):
        try:
            photo = load_photo(path)
            result = photo_filter(photo, request, str(path))
        except (ImageError, NoFaceError) as error:
            report.failures.append(str(error))
            warn(f"skipped: {error}")
            continue
        if result.whole:
            report.whole.append(path)
        made = pictures(result, options, kinds)
        paths = numbered(destination, len(made))
        label = options.label and replace(options.label, whole=made_whole(result, options))
        for picture, where in zip(made, paths, strict=True):
            save_labelled(where, picture, label, warn, warned)
        report.written += 1
        report.files += paths
        if options.sheet is not None:  # every target, not only the first
            sheet_faces += [list(face) for face in zip(result.crops, *result.outputs, strict=True)]
    if options.sheet is not None and sheet_faces:
        title = f"{len(sheet_faces)} face(s) from {inputs.name}"
        sheet = labelled_sheet(sheet_faces, kinds, title)  # before beside after: a composite
        save_labelled(options.sheet, sheet, options.label, warn, warned)
        report.sheet = options.sheet
    return report
