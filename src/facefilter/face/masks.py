"""Where a filtered crop is blended back into the photo: blend masks in crop space.

A translated crop holds more than the person: the model draws its own background
(the pastel backdrops of anime data, say) around the head. Pasting the whole crop
covers the wall, the hair of the person next to them and their shoulders, so the
default mask follows the head instead:

- `head`: an egg over face and hair, placed from the aligned crop's eye line and eye
  distance (the crop is aligned by its landmarks, so this is a landmark hull widened
  for hair): HEAD_TOP eye distances up to the top of the hair, CHIN_DROP down to the
  chin, HEAD_HALF_WIDTH to either side, narrowing towards the chin;
- `ellipse`: the ellipse inscribed in the crop;
- `crop`: the rounded square of the whole crop (what earlier versions pasted).

Every mask falls from 1 to 0 along a smoothstep and is exactly 0 on the crop's outer
ring, so pixels beyond the crop are never written.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

from facefilter.errors import UserError
from facefilter.face.template import AlignConfig, template_landmarks

MaskName = Literal["head", "crop", "ellipse"]
MASKS: tuple[str, ...] = ("head", "crop", "ellipse")
MASK_ROUNDNESS = 4.0  # `crop`: superellipse exponent; 2 is an ellipse, larger is squarer
# The head in eye distances (d) from the eye line's middle. Adult heads: about 1.8 d from
# the eyes to the top of the skull and 1.8 d down to the chin (the mouth is at 1.15 d),
# about 2.3 d wide at the temples; the hair adds a little above and at the sides.
HEAD_TOP = 2.0
CHIN_DROP = 1.85
HEAD_HALF_WIDTH = 1.35
CHIN_NARROWING = 0.35  # the half-width at the chin, lost as a fraction (an egg, not an ellipse)


def smooth_edge(inside: np.ndarray, band: float) -> np.ndarray:
    """Smoothstep from 0 (inside <= 0) to 1 (inside >= band). float32"""
    if band <= 0:
        return (inside > 0).astype(np.float32)
    t = np.clip(inside / band, 0, 1)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def crop_mask(height: int, width: int, feather: float = 0.1, roundness: float = MASK_ROUNDNESS
              ) -> np.ndarray:  # fmt: skip
    """A superellipse inscribed in the crop (4: a rounded square, 2: an ellipse), 1 inside,
    falling to 0 over `feather` of the half-size, 0 on the outer pixels. (H, W) float32"""
    check_feather(feather)
    ys = (np.arange(height) + 0.5) / height * 2 - 1  # pixel centres in (-1, 1)
    xs = (np.arange(width) + 0.5) / width * 2 - 1
    radius = (np.abs(ys[:, None]) ** roundness + np.abs(xs[None, :]) ** roundness) ** (
        1 / roundness
    )  # (H, W): 1 on the inscribed superellipse
    outer = 1 - 2.0 / min(height, width)  # the outermost pixel ring stays 0
    return smooth_edge(outer - radius, feather)


def head_mask(align: AlignConfig, feather: float = 0.1) -> np.ndarray:
    """The head (face and hair) in the crop `align` makes, 1 inside, 0 outside, the edge
    `feather` of the crop's half-size wide and centred on the outline. (H, W) float32"""
    check_feather(feather)
    width, height = align.crop_size
    points = template_landmarks(align)  # (5, 2) crop pixels
    middle = points[:2].mean(0)
    eyes = float(np.linalg.norm(points[1] - points[0]))
    dx = (np.arange(width) - middle[0])[None, :] / (HEAD_HALF_WIDTH * eyes)  # (1, W)
    dy = np.arange(height, dtype=np.float64)[:, None] - middle[1]  # (H, 1) pixels, down
    below = np.clip(dy / (CHIN_DROP * eyes), 0, 1)
    dx = dx / (1 - CHIN_NARROWING * below * below)
    dy = dy / np.where(dy < 0, HEAD_TOP * eyes, CHIN_DROP * eyes)
    outline = (np.sqrt(dx * dx + dy * dy) - 1) * HEAD_HALF_WIDTH * eyes  # ~pixels, + outside
    band = feather * min(width, height) / 2
    head = smooth_edge(band / 2 - outline, band)
    # A framing with little room above the eyes (data crop's default) cuts the hair at
    # the crop's top: fade there too, as the crop mask does, instead of a hard edge.
    return np.minimum(head, crop_mask(height, width, feather, roundness=8.0))


@lru_cache(maxsize=16)
def blend_mask(name: str, align: AlignConfig, feather: float) -> np.ndarray:
    """The named mask for crops made by `align`, built once (video pastes it every frame).
    Read-only. (H, W) float32"""
    if name not in MASKS:
        raise UserError(f"--mask {name!r}: choose {', '.join(MASKS)}")
    width, height = align.crop_size
    if name != "head":
        return cached_crop_mask(height, width, feather, MASK_ROUNDNESS if name == "crop" else 2.0)
    mask = head_mask(align, feather)
    mask.flags.writeable = False
    return mask


@lru_cache(maxsize=16)
def cached_crop_mask(height: int, width: int, feather: float, roundness: float = MASK_ROUNDNESS
                     ) -> np.ndarray:  # fmt: skip
    """`crop_mask`, built once per shape (video pastes it every frame). Read-only."""
    mask = crop_mask(height, width, feather, roundness)
    mask.flags.writeable = False
    return mask


def check_feather(feather: float) -> None:
    if not 0.0 <= feather <= 0.5:
        raise UserError(f"--feather {feather} must lie in [0, 0.5] (fraction of the crop)")
