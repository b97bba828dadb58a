"""Decoding image files into RGB pictures and tensors, whatever the file throws at us.

Every image that enters facefilter (training data, photos to filter) goes through
`load_image`, so the corner cases live in one place: EXIF orientation from phone
cameras, grayscale / palette / 16-bit / CMYK / transparent files, and broken files,
which raise `ImageError` (a `UserError`) naming the file instead of a decoder trace.

Tensors follow the project convention: float32, (3, H, W), values in [-1, 1].
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from facefilter.errors import UserError
from facefilter.pixels import from_pixels, to_pixels
from facefilter.sizes import ImageSize

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

# 200 megapixels: a 12000x9000 (108 MP) camera or panorama image still loads, while a
# decompression bomb (a tiny file that claims 50000x50000) is refused from its header,
# before any pixel memory is allocated. PIL's own guard (89 MP warning, 179 MP error)
# would refuse legal photos, so it is raised to our limit; ours fires first.
MAX_IMAGE_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

# What a broken file can make a PIL decoder raise (beyond UnidentifiedImageError).
_DECODE_ERRORS = (OSError, ValueError, EOFError, SyntaxError, struct.error, IndexError)

_TRANSPARENT_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
_HIGH_BIT_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class ImageError(UserError):
    """An image file that cannot be decoded: missing, empty, truncated, not an image, too big."""


class SkippedImageWarning(UserWarning):
    """Unreadable images were left out of a source (filter on it with `warnings`)."""


class BrokenImages:
    """The items of a source that failed to decode, in this process (each DataLoader
    worker keeps its own): a read moves on to the next good item (index + 1, + 2, ...
    modulo the length), the same in every run and worker, and the first failure is
    warned about once, by name."""

    def __init__(self) -> None:
        self.indices: set[int] = set()  # bounded by the source's length

    def first_good(
        self, index: int, count: int, decode: Callable[[int], Image.Image], name: str
    ) -> tuple[int, Image.Image]:
        """(the item read, its image): `index`'s, or the next good one's."""
        for offset in range(count):
            candidate = (index + offset) % count
            if candidate in self.indices:
                continue
            try:
                return candidate, decode(candidate)
            except ImageError as error:
                self.remember(candidate, error, name)
        raise UserError(f"{name}: none of its {count} images can be decoded")

    def remember(self, index: int, error: ImageError, name: str) -> None:
        if not self.indices:
            warnings.warn(
                f"{name}: skipping unreadable image ({error}); any others are skipped "
                "too: `facefilter data report` lists them",
                SkippedImageWarning,
                stacklevel=4,
            )
        self.indices.add(index)


def load_image(path: Path | str, *, min_side: int | None = None) -> Image.Image:
    """Decode `path` into an upright 8-bit RGB image.

    EXIF orientation is applied, transparency is composited over white, and every
    PIL mode (1, L, P, I;16, I, F, CMYK, YCbCr, ...) is converted to RGB; 16-bit data
    is rescaled to 8 bits rather than clipped. `min_side` lets JPEG files decode at a
    reduced scale (DCT scaling, up to 8x faster) as long as both sides stay >= min_side:
    pass the training size when the picture is only going to be shrunk anyway.

    Raises `ImageError` naming the file for a missing, empty, truncated, non-image or
    over-sized (> MAX_IMAGE_PIXELS) file.
    """
    path = Path(path)
    _check_file(path)
    return _decode(path, path, min_side)


def decode_image(data: bytes, origin: str, *, min_side: int | None = None) -> Image.Image:
    """`load_image` for an encoded image held in memory (a dataset's bytes column);
    `origin` names it in errors, as a path does."""
    if not data:
        raise ImageError(f"{origin}: image is empty (0 bytes); remove or replace it")
    return _decode(io.BytesIO(data), origin, min_side)


def _decode(source: Path | io.BytesIO, path: Path | str, min_side: int | None) -> Image.Image:
    """Open, check and decode `source`; errors name `path` (a file, or a row of a dataset)."""
    try:
        with Image.open(source) as opened:
            _check_pixel_count(path, opened.size)
            if min_side is not None:
                opened.draft(None, (min_side, min_side))  # no-op for non-JPEG files
            opened.load()
            ImageOps.exif_transpose(opened, in_place=True)
            return _to_rgb(opened)
    except PermissionError:
        raise ImageError(f"{path}: no permission to read this image file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file PIL can read; remove or replace it") from None
    except Image.DecompressionBombError as error:
        message = f"{path}: image too large to decode safely ({error}); shrink it before use"
        raise ImageError(message) from None
    except _DECODE_ERRORS as error:
        raise ImageError(f"{path}: truncated or corrupt image ({error}); re-export it") from None


def _check_file(path: Path) -> None:
    try:
        size_bytes = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(f"{path}: image file not found") from None
    except OSError as error:
        raise ImageError(f"{path}: cannot read image file ({error})") from None
    if not path.is_file():
        raise ImageError(f"{path}: not a file")
    if size_bytes == 0:
        raise ImageError(f"{path}: image file is empty (0 bytes); remove or re-download it")


def _check_pixel_count(path: Path | str, size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError(
            f"{path}: image is {width}x{height} ({width * height / 1e6:.0f} megapixels), over "
            f"the {MAX_IMAGE_PIXELS / 1e6:.0f} MP safety limit; shrink it before use"
        )


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB; transparent pixels become white (how viewers show them)."""
    if image.mode in _HIGH_BIT_DEPTH_MODES:
        return _high_bit_depth_to_8bit(image).convert("RGB")
    if image.mode in _TRANSPARENT_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")  # palette or colour-key transparency becomes alpha
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode == "RGB":
        return image
    return image.convert("RGB")


def _high_bit_depth_to_8bit(image: Image.Image) -> Image.Image:
    """16-bit (I;16*), 32-bit integer (I) or float (F) grayscale -> mode L, scaled not clipped.

    Integer data inside 0..65535 is taken as 16-bit (PNG/TIFF 16-bit opens as I;16 or I),
    so 65535 maps to 255; float data in 0..1 is scaled by 255; anything else is
    stretched from its own min..max, the only honest choice without a known range.
    """
    values = np.asarray(image).astype(np.float64)  # (H, W)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if image.mode != "F" and low >= 0 and high <= 65535:
        scaled = values / 257.0  # 65535 / 257 == 255 exactly
    elif image.mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255.0
    else:
        scaled = (values - low) * (255.0 / max(high - low, 1e-12))
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def list_images(root: Path | str, recursive: bool = True) -> list[Path]:
    """Image files under `root` (by extension, case-insensitive), sorted, hidden ones skipped.

    Hidden means the file or any folder between it and `root` starts with "." (so
    `.ipynb_checkpoints/` and `.git/` are ignored). Symlinked folders are followed,
    each real folder once, so a link cycle cannot loop forever.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: not a folder; give a folder of images")
    found: list[Path] = []
    seen_folders: set[str] = set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen_folders:
            subfolders[:] = []
            continue
        seen_folders.add(real)
        subfolders[:] = [name for name in subfolders if recursive and not name.startswith(".")]
        found.extend(
            Path(folder) / name
            for name in files
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
        )
    return sorted(found, key=lambda path: path.relative_to(root).parts)


def to_tensor(image: Image.Image, size: int | ImageSize) -> torch.Tensor:
    """RGB picture -> (3, H, W) float32 in [-1, 1]: short side resized to the size's longer
    side, centre square, and for a non-square size the middle of that square (so the face
    sits where the square framing, and `apply`'s alignment, put it).

    Bicubic with antialiasing on the PIL image: sharper than bilinear when shrinking
    photos, and PIL clamps to 0..255 so there is no overshoot.
    """
    size = ImageSize.parse(size)
    if image.mode != "RGB":
        image = image.convert("RGB")
    side = size.side
    resized = TF.resize(image, [side], interpolation=InterpolationMode.BICUBIC, antialias=True)
    cropped = TF.center_crop(resized, [side, side])
    square = from_pixels(TF.pil_to_tensor(cropped))  # (3, side, side) in [-1, 1]
    return square if size.square else center_crop(square, size)


def center_crop(images: torch.Tensor, size: ImageSize) -> torch.Tensor:
    """(..., S, S) -> (..., H, W): the middle of square images, for a non-square size."""
    height, width = images.shape[-2:]
    top, left = (height - size.height) // 2, (width - size.width) // 2
    return images[..., top : top + size.height, left : left + size.width]


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """(3, H, W) tensor in [-1, 1] (any device, may require grad) -> 8-bit RGB picture."""
    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise ValueError(f"to_pil expects a (3, H, W) tensor, got shape {tuple(tensor.shape)}")
    pixels = to_pixels(tensor.float().cpu())  # (3, H, W) uint8
    return Image.fromarray(pixels.permute(1, 2, 0).numpy())  # (H, W, 3)
