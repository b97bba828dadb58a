"""`facefilter data crop`: raw photos -> aligned face crops, ready to train on.

    OUT/<same sub-folders as RAW>/<stem>_<k>.png   one crop per face (k = 0, 1, ...)
    OUT/manifest.jsonl   one line per crop: crop, source file, box, landmarks, score
    OUT/framing.json     size and framing of the crops; training on OUT records it, so
                         `apply` frames photos exactly as these crops are framed

Sub-folders are kept, so a `classes:` or `unpaired:` layout stays one after cropping.
Images with no face are skipped and counted, unreadable ones too; nothing stops the run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from facefilter.data.images import ImageError, list_images, load_image
from facefilter.errors import UserError
from facefilter.face import AlignConfig, Detector, Face, align_face
from facefilter.pictures import save_picture
from facefilter.safe_io import refuse_to_replace, replace_folder, write_text

MANIFEST_FILE = "manifest.jsonl"
FRAMING_FILE = "framing.json"


@dataclass
class CropReport:
    images: int = 0  # image files found
    crops: int = 0  # face crops written
    no_face: list[str] = field(default_factory=list)  # files where no face was found
    unreadable: list[str] = field(default_factory=list)  # files that failed to decode

    def summary(self) -> str:
        return (
            f"{self.images} image(s): {self.crops} face crop(s) written, "
            f"{len(self.no_face)} with no face, {len(self.unreadable)} unreadable"
        )


def manifest_row(crop: Path, source: Path, face: Face) -> dict[str, object]:
    return {
        "crop": crop.as_posix(),
        "source": str(source),
        "box": [round(float(v), 2) for v in face.box],
        "landmarks": np.round(np.asarray(face.landmarks, float), 2).tolist(),
        "score": round(float(face.score), 4),
    }


def crop_faces(
    raw: Path,
    out: Path,
    detector: Detector,
    align: AlignConfig,
    *,
    largest_only: bool = False,
    warn: Callable[[str], None] = print,
    progress: bool = True,
) -> CropReport:
    """Detect, align and save every face under `raw` into `out` (see the module docstring)."""
    if not raw.is_dir():
        raise UserError(f"{raw} is not a folder of photos; give the folder to crop")
    if out.resolve() == raw.resolve() or raw.resolve() in out.resolve().parents:
        raise UserError(f"OUT_DIR {out} lies inside RAW_DIR {raw}; choose a folder outside it")
    files = list_images(raw)
    if not files:
        raise UserError(f"{raw} holds no images to crop")
    refuse_to_replace(out, "OUT_DIR", "an earlier crop", lambda f: (f / MANIFEST_FILE).is_file())
    report = CropReport(images=len(files))

    def build(folder: Path) -> None:
        rows: list[str] = []  # the manifest, written whole at the end like every file here
        for path, image in readable_photos(files, report.unreadable, warn, progress, "crop"):
            faces = faces_by_size(detector, image, largest_only)
            if not faces:
                report.no_face.append(str(path))
                continue
            for index, face in enumerate(faces):
                relative = path.relative_to(raw).with_name(f"{path.stem}_{index}.png")
                crop, _ = align_face(image, face, align)
                save_picture(folder / relative, crop)
                rows.append(json.dumps(manifest_row(relative, path, face)) + "\n")
                report.crops += 1
        if not report.crops:
            raise UserError(f"no face crop from {raw}: {report.summary()}; check the photos "
                            "(or the --detector settings)")  # fmt: skip
        framing = {**asdict(align), "detector": type(detector).__name__}
        write_text(folder / MANIFEST_FILE, "".join(rows))
        write_text(folder / FRAMING_FILE, json.dumps(framing, indent=2) + "\n")

    replace_folder(out, build)  # built beside OUT and swapped in whole: no stale crops
    return report


def readable_photos(
    files: list[Path], unreadable: list[str], warn: Callable[[str], None], progress: bool,
    desc: str,
) -> Iterator[tuple[Path, np.ndarray]]:  # fmt: skip
    """Each photo that decodes, as (path, (H, W, 3) uint8); the others are warned about and
    listed in `unreadable`, and the rest carry on."""
    for path in tqdm(files, disable=not progress, desc=desc, unit="image"):
        try:
            image = np.asarray(load_image(path))
        except ImageError as error:
            unreadable.append(str(path))
            warn(f"skipped: {error}")
            continue
        yield path, image


def faces_by_size(detector: Detector, image: np.ndarray, largest_only: bool) -> list[Face]:
    """The faces of `image`, the largest first (only it with `largest_only`)."""
    faces = sorted(detector.detect(image), key=lambda face: face.area, reverse=True)
    return faces[:1] if largest_only else faces


def read_manifest(folder: Path) -> list[dict[str, object]]:
    """The rows of `folder/manifest.jsonl` (empty when the folder has none)."""
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def recorded_framing(folder: Path) -> dict[str, float] | None:
    """The framing `data crop` recorded in `folder`, if it made the folder."""
    path = folder / FRAMING_FILE
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        return {"eye_height": float(saved["eye_height"]),
                "eye_distance": float(saved["eye_distance"]),
                "margin": float(saved.get("margin", 0.0))}  # fmt: skip
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
