"""`facefilter data label`: a CelebA-format attribute table for anyone's photos.

    OUT/faces/<photo>_<k>.png     each face found, aligned as the classifier's data were
    OUT/list_attr_celeba.txt      CelebA's layout: 1 where the classifier's probability is
                                  at least --threshold, else -1, one row per face
    OUT/labels.jsonl              per face: its photo, box, every probability, the style's,
                                  and its confidence (the least certain verdict's)
    OUT/framing.json              how the crops are framed, for training on them

`celeba:OUT?where=Smiling` then selects faces as on CelebA, so attribute filters,
attribute vectors and makeover domains work on a user's own photos. No anchor has this:
AttGAN's author calls the hand-made label file its drawback (AttGAN#17).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from facefilter.data.framing import align_config
from facefilter.data.prepare import FRAMING_FILE, readable_photos
from facefilter.data.sources import FileImageSource, open_source
from facefilter.data.spec import SPLITS, spec_folder
from facefilter.errors import UserError
from facefilter.face import Detector, align_face
from facefilter.inference.photo import DetectMode, NoFaceError, locate, square_crop
from facefilter.inference.predictor import Classifier
from facefilter.pictures import save_picture
from facefilter.pixels import from_pixels, to_pixels
from facefilter.safe_io import refuse_to_replace, replace_folder, write_text
from facefilter.sizes import ImageSize

TABLE_FILE, LABELS_FILE, FACES_FOLDER = "list_attr_celeba.txt", "labels.jsonl", "faces"
CHUNK = 256  # faces classified together
MAX_CROP = 1024  # pixels a side of a face crop


@dataclass
class LabelReport:
    images: int = 0
    faces: int = 0
    no_face: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    whole: int = 0  # small images with no face found, taken whole as crops
    faces_named: int = 0  # synthetic faces named so far (CelebA's files count from 1)

    def summary(self) -> str:
        whole = f" ({self.whole} small image(s) taken whole as crops)" if self.whole else ""
        return (f"{self.images} image(s): {self.faces} face(s) labelled{whole}, "
                f"{len(self.no_face)} with no face, {len(self.unreadable)} unreadable")  # fmt: skip


@dataclass
class Found:
    """One face to label: its crop, where it goes, where it came from."""

    crop: np.ndarray  # (S, S, 3) uint8
    name: str  # its file under OUT/faces
    origin: dict[str, Any]


def found_faces(
    spec: str, classifier: Classifier, size: ImageSize, detector: Detector | None,
    detect: DetectMode, largest: bool, report: LabelReport, warn: Callable[[str], None],
    progress: bool = True,
) -> Iterator[Found]:  # fmt: skip
    """Every face of the photos a spec names (or, for synthetic faces, every face as it is),
    in every split, as `size` crops framed as the classifier's data."""
    sources = {split: open_source(spec, size, split) for split in SPLITS}
    if not all(isinstance(source, FileImageSource) for source in sources.values()):
        yield from synthetic_faces(spec, sources, report, progress)
        return
    paths = list(dict.fromkeys(path for source in sources.values()
                               for path in cast(FileImageSource, source).paths))  # fmt: skip
    align = align_config(classifier.config.framing, size)
    stems = crop_stems(paths, spec_folder(spec) or Path("."))
    report.images = len(paths)
    for path, image in readable_photos(paths, report.unreadable, warn, progress, "label"):
        stem = stems[path]
        try:  # the photo call's own decision: faces, else a small image whole, else none
            where = locate(image, detector, size.side, detect=detect, name=str(path),
                           faces="largest" if largest else "all")  # fmt: skip
        except NoFaceError:
            report.no_face.append(str(path))
            continue
        if where.whole:
            report.whole += detect != "never"
            crop = square_crop(Image.fromarray(image), size)
            yield Found(crop, f"{stem}_0.png", {"source": str(path), "box": None})
        for index, face in enumerate(where.faces):
            crop, _ = align_face(image, face, align)
            box = [round(float(v), 1) for v in face.box]
            yield Found(crop, f"{stem}_{index}.png", {"source": str(path), "box": box})


def crop_stems(paths: list[Path], root: Path) -> dict[Path, str]:
    """Each photo's crop name, its sub-folders kept: `a.jpg` and `a.png` in one folder
    become `a_jpg` and `a_png`, so neither crop overwrites the other."""
    stems = {path: path.relative_to(root).with_suffix("").as_posix() for path in paths}
    counts = Counter(stems.values())
    return {path: f"{stem}_{path.suffix[1:].lower()}" if counts[stem] > 1 else stem
            for path, stem in stems.items()}  # fmt: skip


def synthetic_faces(
    spec: str, sources: dict[str, Any], report: LabelReport, progress: bool
) -> Iterator[Found]:
    """Synthetic faces as they are: ready crops, framed as the classifier's data, numbered
    like CelebA's files (000001.png ...) in the order of the splits."""
    report.images = sum(len(source) for source in sources.values())
    bar = tqdm(total=report.images, disable=not progress, desc="label", unit="face")
    for split, source in sources.items():
        for index in range(len(source)):
            pixels = to_pixels(source[index]["image"]).permute(1, 2, 0).numpy()
            report.faces_named += 1
            yield Found(pixels, f"{report.faces_named:06d}.png",
                        {"source": spec, "split": split, "index": index})  # fmt: skip
            bar.update(1)


def label_faces(
    spec: str, classifier: Classifier, out: Path, detector: Detector | None, *,
    detect: DetectMode = "auto", threshold: float = 0.5, largest: bool = False,
    size: int | None = None, warn: Callable[[str], None] = print, progress: bool = True,
) -> LabelReport:  # fmt: skip
    """Detect, align, classify and write every face (see the module docstring); crops are
    `size` a side (the classifier's own size when None), classified at its size."""
    if not 0 < threshold < 1:
        raise UserError(f"--threshold {threshold} must lie strictly between 0 and 1, e.g. 0.5")
    if not classifier.attributes:
        raise UserError(f"{classifier.path} tells styles only ({', '.join(classifier.styles)}); "
                        "an attribute table needs a classifier trained on attributes")  # fmt: skip
    if size is not None and not 16 <= size <= MAX_CROP:
        raise UserError(f"--size {size}: give a face crop side of 16 to {MAX_CROP}, e.g. 128")
    refuse_to_replace(out, "-o", "an earlier labelling", lambda f: (f / LABELS_FILE).is_file())
    crop_size = ImageSize.parse(size or classifier.size)
    report = LabelReport()

    def build(folder: Path) -> None:
        rows: list[str] = []
        labels: list[str] = []
        faces = found_faces(spec, classifier, crop_size, detector, detect, largest, report, warn,
                            progress)  # fmt: skip
        while chunk := list(itertools.islice(faces, CHUNK)):  # a chunk in memory at a time
            table, lines = _classify(chunk, classifier, folder, threshold)
            rows += table
            labels += lines
            report.faces += len(chunk)
        if not rows:
            raise UserError(f"no face found in {spec} ({report.summary()}); nothing to label "
                            "(for ready face crops: --detect never)")  # fmt: skip
        header = [str(len(rows)), " ".join(classifier.attributes)]
        write_text(folder / TABLE_FILE, "\n".join(header + rows) + "\n")
        write_text(folder / LABELS_FILE, "".join(labels))
        align = align_config(classifier.config.framing, crop_size)
        framing = {**asdict(align), "labelled_by": str(classifier.path)}
        write_text(folder / FRAMING_FILE, json.dumps(framing, indent=2) + "\n")

    replace_folder(out, build)  # swapped in whole: no stale faces from an earlier labelling
    return report


def _classify(chunk: list[Found], classifier: Classifier, out: Path, threshold: float):
    """Save and classify one chunk of faces: (table rows, labels.jsonl lines)."""
    images = from_pixels(torch.from_numpy(np.stack([f.crop for f in chunk])).permute(0, 3, 1, 2))
    verdict = classifier.predict(images)
    rows, lines = [], []
    for found, attrs, styles in zip(chunk, verdict.attr_logits, verdict.style_logits,
                                    strict=True):  # fmt: skip
        save_picture(out / FACES_FOLDER / found.name, found.crop)
        signs = "".join(" 1" if p >= threshold else " -1" for p in attrs.tolist())
        rows.append(found.name + signs)
        certainty = torch.maximum(attrs, 1 - attrs)
        entry = {
            "file": found.name, **found.origin,
            "attributes": {n: round(p, 4) for n, p in zip(classifier.attributes, attrs.tolist(),
                                                          strict=True)},
            "confidence": round(float(certainty.min()), 4),
            "least_certain": classifier.attributes[int(certainty.argmin())],
        }  # fmt: skip
        if classifier.styles:
            entry["style"] = {n: round(p, 4) for n, p in zip(classifier.styles, styles.tolist(),
                                                             strict=True)}  # fmt: skip
        lines.append(json.dumps(entry) + "\n")
    return rows, lines
