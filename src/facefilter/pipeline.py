"""Applying a trained filter to photos: the apply journey. Knows nothing of training.

    photo -> detect faces -> align each to the training framing -> translator (one batch)
          -> inverse warp -> feathered paste -> photo of the original size

A photo with no face found is either refused (`detect="always"`) or, when it is small
enough to be a ready face crop (at most twice the model's size per side), translated
whole (`detect="auto"`); `detect="never"` always translates the centre square whole.
File and folder handling lives in `facefilter.apply_files`, video in `facefilter.video`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from facefilter.checkpoint import load_model, read_run_config
from facefilter.data.framing import align_config
from facefilter.errors import UserError
from facefilter.face import AlignConfig, Detector, Face, align_face, paste_back
from facefilter.face.images import as_rgb_uint8
from facefilter.models.base import Family

DetectMode = Literal["auto", "always", "never"]
FacesMode = Literal["all", "largest"]
Engine = Literal["torch", "onnx"]
ALL_TARGETS = "all"  # `--to all`: every domain / class, side by side
WHOLE_IMAGE_FACTOR = 2  # `auto`: an image this many times the model size or less may be a crop


class NoFaceError(UserError):
    """A photo in which no face was found (a per-file failure, not a usage error)."""


class Translator(Protocol):
    """Square uint8 RGB crops (S, S, 3) at the model's size in, the same out, one batch."""

    size: int
    target: str

    def __call__(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]: ...


def to_model_batch(crops: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 (S, S, 3) crops -> float32 (B, 3, S, S) in [-1, 1], the project convention."""
    batch = np.stack(crops).astype(np.float32)  # (B, S, S, 3)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2)) / 127.5 - 1


def from_model_batch(images: np.ndarray) -> list[np.ndarray]:
    """float (B, 3, S, S) in [-1, 1] -> uint8 (S, S, 3) pictures."""
    pixels = np.rint((np.clip(images, -1, 1) + 1) * 127.5).astype(np.uint8)
    return list(pixels.transpose(0, 2, 3, 1))


@dataclass
class Filter:
    """A trained PyTorch translator fixed to one direction, ready for uint8 RGB crops."""

    family: Family
    module: nn.Module
    source: str | None
    target: str
    device: torch.device
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = self.family.image_size

    @torch.no_grad()
    def __call__(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        if not crops:
            return []
        batch = torch.from_numpy(np.stack(crops)).to(self.device)  # (B, S, S, 3) uint8
        images = batch.permute(0, 3, 1, 2).float() / 127.5 - 1  # (B, 3, S, S) in [-1, 1]
        out: Tensor = self.module(images).clamp(-1, 1)
        pixels = ((out + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
        return list(pixels.cpu().numpy())


def resolve_targets(domains: Sequence[str], to: str, source: str | None) -> list[str]:
    """`--to all` means every domain but the source; anything else is one domain."""
    if to != ALL_TARGETS:
        return [to]
    return [domain for domain in domains if domain != source]


def load_filters(
    run: Path, to: str, source: str | None = None, device: str | None = None
) -> list[Filter]:
    """One PyTorch translator per target (`to` may be `all`)."""
    family = load_model(run)
    chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if source is not None:
        family.check_domain(source)
    filters = []
    for target in resolve_targets(family.domains, to, source):
        family.check_domain(target)
        module = family.export_module(target, source).to(chosen).eval()
        filters.append(Filter(family, module, source, target, chosen))
    return filters


def load_translators(
    path: Path, to: str, source: str | None = None, *, engine: Engine = "torch",
    device: str | None = None,
) -> tuple[list[Translator], dict[str, Any]]:  # fmt: skip
    """Translators for `to` from a run directory or an exported filter, and its config."""
    if engine == "onnx":
        from facefilter.export import load_onnx_filters

        onnx_filters, config = load_onnx_filters(path, to, source)
        return list[Translator](onnx_filters), config
    if engine != "torch":
        raise UserError(f"unknown engine {engine!r}; choose torch or onnx")
    if path.suffix == ".onnx":
        raise UserError(f"{path} is an ONNX file; run it with --engine onnx")
    return list(load_filters(path, to, source, device)), read_run_config(path)


def run_align_config(config: dict[str, Any], size: int, **override: float | None) -> AlignConfig:
    """The framing the run was trained on, with any `override` (eye_height, ...) applied."""
    framing = dict(config.get("train", {}).get("framing") or {})
    for key in ("eye_height", "eye_distance"):
        if override.get(key) is not None:
            framing[key] = float(override[key])  # type: ignore[arg-type]
    return align_config(framing or None, size, margin=override.get("margin"))


def square_crop(image: Image.Image, size: int) -> np.ndarray:
    """Centre square of `image`, resized to `size` (antialiased): (size, size, 3) uint8."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    crop = image.crop((left, top, left + side, top + side))
    return np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))


def side_by_side(*images: np.ndarray) -> np.ndarray:
    height = max(image.shape[0] for image in images)
    padded = [np.pad(im, ((0, height - im.shape[0]), (0, 0), (0, 0))) for im in images]
    return np.concatenate(padded, axis=1)


@dataclass
class Translated:
    """One photo after the filter(s).

    image: the input. photos: per translator, the whole result ((H, W, 3) pasted photo,
    or the (S, S, 3) translation when the image was taken whole). crops: the aligned input
    crops (S, S, 3). outputs: per translator, per crop, the translated crop.
    """

    image: np.ndarray  # the input photo (H, W, 3)
    photos: list[np.ndarray]
    crops: list[np.ndarray]
    outputs: list[list[np.ndarray]]
    faces: list[Face]
    whole: bool


@dataclass(frozen=True)
class FaceOptions:
    detect: DetectMode = "auto"
    faces: FacesMode = "all"
    feather: float = 0.1  # width of the paste-back blend, fraction of the crop
    color_match: bool = False  # match the crop's colours to the photo's (off: filters recolour)


class PhotoFilter:
    """Detect, align, translate (all faces of a photo in one batch per target), paste back."""

    def __init__(
        self,
        translators: Sequence[Translator],
        align: AlignConfig,
        detector: Detector | None,
        options: FaceOptions = FaceOptions(),
    ) -> None:
        if not translators:
            raise UserError("no target to translate to; check --to and --from")
        if options.detect not in ("auto", "always", "never"):
            raise UserError(f"--detect {options.detect!r}: choose auto, always or never")
        if options.detect != "never" and detector is None:
            raise UserError(f"--detect {options.detect} needs a face detector")
        self.translators = list(translators)
        self.size = self.translators[0].size
        self.align = align
        self.detector = detector
        self.options = options

    def find_faces(self, image: np.ndarray) -> list[Face]:
        """Faces in `image`, the largest first (only it with faces='largest')."""
        assert self.detector is not None
        faces = sorted(self.detector.detect(image), key=lambda face: face.area, reverse=True)
        return faces[:1] if self.options.faces == "largest" else faces

    def __call__(self, image: np.ndarray, name: str = "image") -> Translated:
        """Translate the faces of `image` (H, W, 3) uint8; NoFaceError when there is none."""
        if self.options.detect == "never":
            return self.translate_whole(image)
        faces = self.find_faces(image)
        if faces:
            return self.translate_faces(image, faces)
        height, width = image.shape[:2]
        limit = WHOLE_IMAGE_FACTOR * self.size
        if self.options.detect == "auto" and height <= limit and width <= limit:
            return self.translate_whole(image)
        raise NoFaceError(
            f"{name}: no face found in this {width}x{height} image; if it is a face crop, "
            "use --detect never to translate it whole"
        )

    def translate_faces(self, image: np.ndarray, faces: Sequence[Face]) -> Translated:
        aligned = [align_face(image, face, self.align) for face in faces]
        crops = [crop for crop, _ in aligned]
        outputs = [translator(crops) for translator in self.translators]
        photos = []
        for translated in outputs:
            photo = as_rgb_uint8(image).copy()  # one copy per target; faces blend into it
            for result, (_, matrix) in zip(translated, aligned, strict=True):
                paste_back(
                    photo, result, matrix, feather=self.options.feather,
                    color_match=self.options.color_match, in_place=True,
                )  # fmt: skip
            photos.append(photo)
        return Translated(image, photos, crops, outputs, list(faces), whole=False)

    def translate_whole(self, image: np.ndarray) -> Translated:
        crop = square_crop(Image.fromarray(image), self.size)
        outputs = [translator([crop]) for translator in self.translators]
        return Translated(image, [out[0] for out in outputs], [crop], outputs, [], whole=True)


def contact_sheet(pairs: Sequence[tuple[np.ndarray, np.ndarray]], columns: int = 4) -> np.ndarray:
    """Before/after pairs in a grid, `columns` pairs per row, white gutters."""
    size = pairs[0][0].shape[0]
    gutter = max(2, size // 16)
    cells = [np.pad(side_by_side(a, b), ((gutter, 0), (gutter, 0), (0, 0)), constant_values=255)
             for a, b in pairs]  # fmt: skip
    blank = np.full_like(cells[0], 255)
    cells += [blank] * (-len(cells) % columns)
    rows = [np.concatenate(cells[i : i + columns], axis=1) for i in range(0, len(cells), columns)]
    sheet = np.concatenate(rows, axis=0)
    return np.pad(sheet, ((0, gutter), (0, gutter), (0, 0)), constant_values=255)
