"""A labelled contact sheet of the synthetic faces, to check them at a glance.

Top block: a few identities (columns) in every style (rows). Below it, one row per
attribute: for each style, two faces with the attribute off and then on.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from facefilter.errors import UserError
from facefilter.safe_io import atomic_write
from facefilter.synth.dataset import to_uint8
from facefilter.synth.params import SYNTH_ATTRIBUTES, FaceParams, sample_params
from facefilter.synth.render import check_style_and_size, render
from facefilter.synth.styles import STYLES

_LABEL_WIDTH = 118  # room for the longest attribute name in PIL's default font
_HEADER = 16
_GAP = 6  # between the style groups of an attribute row
_INK, _PAPER, _MUTED = (20, 20, 20), (250, 250, 247), (110, 110, 110)
_PAIRS = 2  # faces per style in an attribute row, each shown off then on


def _paste(sheet: Image.Image, images: torch.Tensor, x: int, y: int) -> None:
    """Paste (K, 3, S, S) images in [0, 1] side by side starting at (x, y)."""
    for image in to_uint8(images):
        sheet.paste(Image.fromarray(image.permute(1, 2, 0).numpy()), (x, y))
        x += image.shape[-1]


def _plain_pair(people: FaceParams) -> FaceParams:
    """A woman and a man (where the identities have both), bare-headed and without
    glasses, so each attribute row shows its own change and nothing hides it."""
    male = people.attr("Male")
    first_woman = int(torch.argmin(male))
    first_man = int(torch.argmax(male))
    chosen = [first_woman, first_man] if first_woman != first_man else [0, 1]
    pair = people.rows(chosen)
    return pair.with_attribute("Wearing_Hat", False).with_attribute("Eyeglasses", False)


def write_preview(out: Path, size: int = 64, seed: int = 0, identities: int = 6) -> None:
    """Write the contact sheet PNG to `out`."""
    check_style_and_size(STYLES[0], size)
    if identities < _PAIRS:
        raise UserError(f"preview identities {identities} must be at least {_PAIRS}")
    people = sample_params(identities, seed)
    group = 2 * _PAIRS * size + _GAP
    width = _LABEL_WIDTH + max(identities * size, len(STYLES) * group)
    height = _HEADER + len(STYLES) * size + _HEADER + len(SYNTH_ATTRIBUTES) * size
    sheet = Image.new("RGB", (width, height), _PAPER)
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 2), f"synthetic faces, seed {seed}: same person in every style", fill=_INK)
    y = _HEADER
    for style in STYLES:
        draw.text((4, y + size // 2 - 6), style, fill=_INK)
        _paste(sheet, render(people, style, size), _LABEL_WIDTH, y)
        y += size
    for index, style in enumerate(STYLES):
        x = _LABEL_WIDTH + index * group
        draw.text((x + 2, y + 2), f"{style}: off / on, off / on", fill=_MUTED)
    y += _HEADER
    pair = _plain_pair(people)
    edits = [
        pair.with_attribute(name, value) for name in SYNTH_ATTRIBUTES for value in (False, True)
    ]
    edited = FaceParams.cat(edits)  # rows: attribute, off/on, face
    for index, style in enumerate(STYLES):
        images = render(edited, style, size).reshape(
            len(SYNTH_ATTRIBUTES), 2, _PAIRS, 3, size, size
        )
        for row in range(len(SYNTH_ATTRIBUTES)):  # shown face by face: off, on, off, on
            x = _LABEL_WIDTH + index * group
            _paste(sheet, images[row].transpose(0, 1).flatten(0, 1), x, y + row * size)
    for row, name in enumerate(SYNTH_ATTRIBUTES):
        draw.text((4, y + row * size + size // 2 - 6), name, fill=_INK)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(Path(out), lambda tmp: sheet.save(tmp, format="PNG"))
