"""Labelled pictures: grids of faces with a title, row and column labels, and GIFs.

Every picture a command writes goes through `save_picture` / `save_gif`, which write
beside the target and rename it into place, so a failure never leaves half a file, and
write a filter's "made by a filter" label (`facefilter.provenance`) when given one.
"""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from facefilter.errors import UserError
from facefilter.provenance import Provenance, labelled_gif, pillow_options
from facefilter.safe_io import atomic_write

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
INK, PAPER = (20, 20, 20), (250, 250, 247)
JPEG_QUALITY = 95
_LINE = 12  # pixels per line of PIL's default font
_PAD = 4


def _text_width(text: str) -> int:
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    return int(draw.textlength(text)) + 2 * _PAD


def _vertical_label(text: str, height: int, width: int) -> Image.Image:
    """`text` written bottom to top in a (height, width) box, for narrow columns."""
    strip = Image.new("RGB", (height, width), PAPER)
    ImageDraw.Draw(strip).text((_PAD, (width - _LINE) // 2), text, fill=INK)
    return strip.rotate(90, expand=True)


def labelled_grid(
    tiles: np.ndarray,
    *,
    rows: Sequence[str] = (),
    columns: Sequence[str] = (),
    title: str = "",
    gap: int = 2,
) -> np.ndarray:
    """(R, C, H, W, 3) uint8 tiles -> one (H', W', 3) picture with a title line, a label
    left of each row and one above each column (written upwards when wider than a tile)."""
    n_rows, n_cols, height, width = tiles.shape[:4]
    left = max((_text_width(t) for t in rows), default=0)
    vertical = any(_text_width(t) > width + gap for t in columns)
    head = max((_text_width(t) for t in columns), default=0) if vertical else _LINE + _PAD
    head = head if columns else 0
    top = (_LINE + 2 * _PAD if title else 0) + head
    sheet = Image.new("RGB", (left + n_cols * (width + gap) + gap,
                              top + n_rows * (height + gap) + gap), PAPER)  # fmt: skip
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((_PAD, _PAD), title, fill=INK)
    for col, label in enumerate(columns):
        x = left + gap + col * (width + gap)
        if vertical:
            sheet.paste(_vertical_label(label, head, width), (x, top - head))
        else:
            draw.text((x + (width - _text_width(label)) // 2 + _PAD, top - _LINE - 2), label,
                      fill=INK)  # fmt: skip
    for row in range(n_rows):
        y = top + gap + row * (height + gap)
        if row < len(rows):
            draw.text((_PAD, y + (height - _LINE) // 2), rows[row], fill=INK)
        for col in range(n_cols):
            sheet.paste(Image.fromarray(tiles[row, col]), (left + gap + col * (width + gap), y))
    return np.asarray(sheet)


def enlarge(images: np.ndarray, factor: int) -> np.ndarray:
    """(..., H, W, 3) -> (..., H * factor, W * factor, 3), nearest: pixels stay visible."""
    if factor <= 1:
        return images
    return images.repeat(factor, axis=-3).repeat(factor, axis=-2)


def check_picture_path(
    path: Path, flag: str = "-o", suffixes: Sequence[str] = PICTURE_SUFFIXES
) -> None:
    """One line, before any work, unless `path` can be written as a picture: a file name
    ending in a picture format (a GIF for animations), not a folder."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file name, e.g. {path / 'out'}"
                        f"{suffixes[0]}")  # fmt: skip
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{flag} {path}: name a {' or '.join(s[1:] for s in suffixes)} file "
                        f"(e.g. {path.with_suffix(suffixes[0]).name})")  # fmt: skip


def save_picture(path: Path, picture: np.ndarray, provenance: Provenance | None = None) -> None:
    """Write an (H, W, 3) uint8 picture in the format its suffix names, beside `path` and
    renamed into place: a failure leaves the old file whole. With `provenance`, the picture
    says it was made by a filter (XMP) where its format can (PNG, JPEG, WebP; not BMP:
    callers warn with `provenance.unlabelled`)."""
    path = Path(path)
    check_picture_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(picture)
    kind = Image.registered_extensions()[path.suffix.lower()]
    options: dict[str, Any] = {"quality": JPEG_QUALITY} if kind == "JPEG" else {}
    if provenance is not None:
        options |= pillow_options(provenance, kind)
    atomic_write(path, lambda tmp: image.save(tmp, format=kind, **options))


def save_gif(
    path: Path, frames: Sequence[np.ndarray], seconds: float = 2.0,
    provenance: Provenance | None = None,
) -> None:  # fmt: skip
    """Write (H, W, 3) uint8 frames as a looping GIF that plays forth and back in
    `seconds` each way, atomically; with `provenance`, labelled (XMP)."""
    path = Path(path)
    check_picture_path(path, suffixes=(".gif",))
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(frame) for frame in frames]
    images = images + images[-2:0:-1]  # forth and back: the loop has no jump
    duration = max(20, int(1000 * seconds / max(1, len(frames))))

    def write(tmp: Path) -> None:
        buffer = BytesIO()  # a GIF of a few MB: labelled in memory, then written once
        images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                       duration=duration, loop=0)  # fmt: skip
        gif = buffer.getvalue()
        tmp.write_bytes(gif if provenance is None else labelled_gif(gif, provenance))

    atomic_write(path, write)


SAMPLE_TILE = 96  # pixels: small training sizes are enlarged (nearest) to at least this


def kinds_grid(rows: Sequence[Any], labels: Sequence[str], title: str) -> Any:
    """Training samples, one labelled row per image kind (input, output, ...), the same
    faces in each column: rows of (N, 3, H, W) tensors in [-1, 1] -> (3, H', W') in [0, 1]."""
    import torch

    from facefilter.pixels import to_pixels

    count = min(row.shape[0] for row in rows)
    stacked = torch.stack([row[:count].detach().float().cpu() for row in rows])
    tiles = to_pixels(stacked).permute(0, 1, 3, 4, 2).numpy()  # (R, C, H, W, 3)
    picture = labelled_grid(shown_large(tiles), rows=labels, title=title)
    return torch.from_numpy(picture.copy()).permute(2, 0, 1).float() / 255


def shown_large(tiles: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) tiles enlarged (nearest) to at least SAMPLE_TILE pixels a side."""
    return enlarge(tiles, max(1, -(-SAMPLE_TILE // max(tiles.shape[-3:-1]))))


def labelled_sheet(
    faces: Sequence[Sequence[np.ndarray]], kinds: Sequence[str], title: str = "", per_band: int = 8
) -> np.ndarray:
    """Before/after faces as in the training grids: one labelled row per kind (input, then
    each target), the faces in columns, wrapped into bands of `per_band` faces."""
    bands = []
    for start in range(0, len(faces), per_band):
        chunk = faces[start : start + per_band]
        tiles = np.stack([np.stack([face[k] for face in chunk]) for k in range(len(kinds))])
        bands.append(labelled_grid(shown_large(tiles), rows=kinds,
                                   title=title if start == 0 else ""))  # fmt: skip
    width = max(band.shape[1] for band in bands)
    padded = [np.pad(b, ((0, 0), (0, width - b.shape[1]), (0, 0)), constant_values=PAPER[0])
              for b in bands]  # fmt: skip
    return np.concatenate(padded, axis=0)
