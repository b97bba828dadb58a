"""Image sizes: a side (`128`, square) or width x height (`80x100`, as deep-makeover trains).

One type everywhere a size travels (flags, config.json, data, alignment, export), so a
non-square size cannot be cut back to a square one on the way. Tensors are (H, W):
`ImageSize(80, 100).hw == (100, 80)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from facefilter.errors import UserError

_PATTERN = re.compile(r"^\s*(\d+)\s*(?:[xX×]\s*(\d+))?\s*$")


@dataclass(frozen=True)
class ImageSize:
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise UserError(f"image size {self} must be positive")

    @classmethod
    def parse(cls, value: SizeLike) -> ImageSize:
        """128, "128", "80x100", [80, 100] or an ImageSize -> ImageSize."""
        if isinstance(value, ImageSize):
            return value
        if isinstance(value, bool):
            raise UserError(f"image size {value!r} is not a size; give e.g. 128 or 80x100")
        if isinstance(value, int):
            return cls(value, value)
        if isinstance(value, (list, tuple)) and len(value) == 2:
            try:
                return cls(int(value[0]), int(value[1]))
            except (TypeError, ValueError):
                raise UserError(f"image size {value!r} is not [width, height]") from None
        match = _PATTERN.match(str(value))
        if not match:
            raise UserError(
                f"image size {value!r} is not a size; give a side (128) or WIDTHxHEIGHT (80x100)"
            )
        width = int(match.group(1))
        return cls(width, int(match.group(2) or width))

    @property
    def square(self) -> bool:
        return self.width == self.height

    @property
    def side(self) -> int:
        """The longer side: the square that holds the image (alignment, synthetic faces)."""
        return max(self.width, self.height)

    @property
    def hw(self) -> tuple[int, int]:
        return self.height, self.width

    def json(self) -> int | str:
        """What config.json stores: a plain side when square (older runs read as before)."""
        return self.width if self.square else str(self)

    def __str__(self) -> str:
        return str(self.width) if self.square else f"{self.width}x{self.height}"


SizeLike = int | str | ImageSize | list[int] | tuple[int, int]
