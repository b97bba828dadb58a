"""Applying a trained filter: images in, images out. Knows nothing of training.

    photo -> decode (EXIF-aware, any mode) -> square crop at the model's size
          -> translator(crop, target) -> image out (optionally beside the input)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from facefilter.checkpoint import load_model
from facefilter.data.images import IMAGE_EXTENSIONS, ImageError, list_images, load_image
from facefilter.errors import UserError
from facefilter.models.base import Family

MIN_SIDE = 16  # pixels; below this there is no face left to translate


@dataclass
class Filter:
    """A trained translator fixed to one direction, ready for uint8 RGB images."""

    family: Family
    module: nn.Module
    source: str | None
    target: str
    device: torch.device

    @property
    def size(self) -> int:
        return self.family.image_size

    @torch.no_grad()
    def __call__(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Translate square uint8 RGB crops (S, S, 3) at the model's size, in one batch."""
        if not crops:
            return []
        batch = torch.from_numpy(np.stack(crops)).to(self.device)  # (B, S, S, 3) uint8
        images = batch.permute(0, 3, 1, 2).float() / 127.5 - 1  # (B, 3, S, S) in [-1, 1]
        out: Tensor = self.module(images).clamp(-1, 1)
        pixels = ((out + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
        return list(pixels.cpu().numpy())


def load_filter(
    run: Path, target: str, source: str | None = None, device: str | None = None
) -> Filter:
    """The translator in `run` towards `target` (from `source` where the family needs it)."""
    family = load_model(run)
    chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    family.check_domain(target)
    if source is not None:
        family.check_domain(source)
    module = family.export_module(target, source).to(chosen).eval()
    return Filter(family, module, source, target, chosen)


def square_crop(image: Image.Image, size: int) -> np.ndarray:
    """Centre square of `image`, resized to `size` (antialiased): (size, size, 3) uint8."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    crop = image.crop((left, top, left + side, top + side))
    return np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))


def load_checked(path: Path, size: int) -> Image.Image:
    """Decode `path`, refusing images too small to hold a face."""
    image = load_image(path, min_side=size)
    if min(image.size) < MIN_SIDE:
        raise ImageError(
            f"{path}: {image.width}x{image.height} is too small; give at least "
            f"{MIN_SIDE}x{MIN_SIDE} px (the model works at {size}x{size})"
        )
    return image


def side_by_side(*images: np.ndarray) -> np.ndarray:
    height = max(image.shape[0] for image in images)
    padded = [np.pad(im, ((0, height - im.shape[0]), (0, 0), (0, 0))) for im in images]
    return np.concatenate(padded, axis=1)


def input_files(path: Path) -> list[Path]:
    """The images to process: one file, or every image under a folder."""
    if not path.exists():
        raise UserError(f"input {path} does not exist")
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
    return [output / p.relative_to(root).with_name(f"{p.stem}{suffix}.png") for p in inputs]


def batched(items: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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


def apply_whole_images(
    filt: Filter,
    inputs: Path,
    output: Path,
    *,
    compare: bool = False,
    batch_size: int = 16,
    sheet: Path | None = None,
) -> tuple[int, list[str]]:
    """Translate each image's centre square; returns (written, failures).

    With `sheet`, also writes every before/after pair into one contact sheet.
    """
    files = input_files(inputs)
    targets = output_paths(files, inputs, output, f"_{filt.target}")
    destinations = dict(zip(files, targets, strict=True))
    written, failures = 0, []
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    for group in batched(files, batch_size):
        crops, kept = [], []
        for path in group:
            try:
                crops.append(square_crop(load_checked(path, filt.size), filt.size))
                kept.append(path)
            except ImageError as error:
                failures.append(str(error))
        for path, crop, result in zip(kept, crops, filt(crops), strict=True):
            picture = side_by_side(crop, result) if compare else result
            destination = destinations[path]
            destination.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(picture).save(destination)
            written += 1
            if sheet is not None:
                pairs.append((crop, result))
    if sheet is not None and pairs:
        sheet.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(contact_sheet(pairs)).save(sheet)
    return written, failures
