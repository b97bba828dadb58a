"""Where a filtered crop is blended back into the photo: blend masks in crop space.

A translated crop holds more than the person: the model draws its own background
(the pastel backdrops of anime data, say) around the head. Pasting the whole crop
covers the wall, the hair of the person next to them and their shoulders, so the
default mask follows the head instead:

- `head`: an egg over face and hair, HEAD_TOP eye distances up from the eye line to the
  top of the hair, CHIN_DROP down to the chin, HEAD_HALF_WIDTH to either side, narrowing
  towards the chin. `blend_mask` places it from the template's eyes, the same for every
  face. `placed_head_mask` (what `apply` pastes through) places it from each face's own
  landmarks mapped into the crop, because a turned head does not fit the template: the
  eyes close up by cos(turn), so the similarity fit zooms in and a fixed egg covers too
  little of the head, centred on the features while the skull lies behind them. The
  nose's drop below the eye line does not change with the turn (dlib measures the eyes
  and the point under the nose; its mouth corners are estimates), so drop / eye distance
  gives cos(turn): the egg grows by 1 / cos(turn) and moves, away from the side the nose
  points to, HEAD_SHIFT true eye distances times sin(turn). Upright and frontal, it is
  the template's egg;
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
# Turned heads, from the landmarks a detector measures (dlib's: the eyes and the point
# under the nose; its mouth corners are estimated from those). Upright and frontal, that
# point lies about 0.72 eye distances below the eye line (astronaut 0.74, Grace Hopper
# 0.71; lower than the template's nose tip, 0.57); turned, the eyes close up and the
# drop stays, so their ratio gives cos(turn).
UPRIGHT_NOSE_DROP = 0.72
# Below this cos(turn) the face counts as turned: a frontal face reads a few degrees off
# (the astronaut 0.97, a little pitch more), and the egg must not move with jitter there.
FRONTAL = 0.95
MAX_TURN_GROWTH = 1.5  # the mask grows at most this much (a 48 degree turn)
# The side of the turn ramps from 0 to full as the nose moves this far (eye distances)
# off the eye midline: wide enough that jitter of a pixel or two moves it little.
NOSE_SIDE_FULL = 0.25
# A turned head turns about an axis about 1.4 eye distances behind the eyes, so the skull
# lies that times sin(turn) to the side of the eyes, away from the nose; the face stands
# out in front of it. The egg goes halfway: over the skull and the face both.
HEAD_SHIFT = 0.7


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
    """The head (face and hair) of a frontal face in the crop `align` makes, placed from
    the template's eyes: 1 inside, 0 outside, the edge `feather` of the crop's half-size
    wide and centred on the outline. (H, W) float32"""
    points = template_landmarks(align)  # (5, 2) crop pixels
    eyes = float(np.linalg.norm(points[1] - points[0]))
    middle = points[:2].mean(0)
    return egg_mask(align, feather, float(middle[0]), float(middle[1]), eyes)


def egg_mask(align: AlignConfig, feather: float, centre_x: float, centre_y: float, eyes: float
             ) -> np.ndarray:  # fmt: skip
    """The egg of HEAD_TOP, CHIN_DROP and HEAD_HALF_WIDTH times `eyes` pixels round the
    crop point (centre_x, centre_y), faded to 0 at the crop's rim. (H, W) float32"""
    check_feather(feather)
    width, height = align.crop_size
    dx = (np.arange(width) - centre_x)[None, :] / (HEAD_HALF_WIDTH * eyes)  # (1, W)
    dy = np.arange(height, dtype=np.float64)[:, None] - centre_y  # (H, 1) pixels, down
    below = np.clip(dy / (CHIN_DROP * eyes), 0, 1)
    dx = dx / (1 - CHIN_NARROWING * below * below)
    dy = dy / np.where(dy < 0, HEAD_TOP * eyes, CHIN_DROP * eyes)
    outline = (np.sqrt(dx * dx + dy * dy) - 1) * HEAD_HALF_WIDTH * eyes  # ~pixels, + outside
    band = feather * min(width, height) / 2
    head = smooth_edge(band / 2 - outline, band)
    # A framing with little room above the eyes (data crop's default) cuts the hair at
    # the crop's top: fade there too, as the crop mask does, instead of a hard edge.
    return np.minimum(head, cached_crop_mask(height, width, feather, 8.0))


def placed_head_mask(align: AlignConfig, landmarks: np.ndarray, feather: float = 0.1
                     ) -> np.ndarray:  # fmt: skip
    """The head mask of one face, placed from its own `landmarks` (5, 2), given in crop
    pixels (`apply_affine(matrix, face.landmarks)`): larger and moved towards the back of
    the head when the face is turned. Read-only, shared. (H, W) float32"""
    centre_x, centre_y, eyes = head_placement(align, landmarks)
    # Quantised so that a face held still in a video reuses one mask, frame after frame.
    return cached_egg(align, feather, round(centre_x * 4) / 4, round(centre_y * 4) / 4,
                      round(eyes * 8) / 8)  # fmt: skip


def head_placement(align: AlignConfig, landmarks: np.ndarray) -> tuple[float, float, float]:
    """(centre x, centre y, eyes) in crop pixels: where `egg_mask` goes for the face whose
    5 landmarks lie at `landmarks` in the crop, and the eye distance it would show seen
    from the front (the head's size)."""
    points = np.asarray(landmarks, np.float64)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise UserError(f"landmarks must be a finite (5, 2) array, got {points.shape}")
    middle = points[:2].mean(0)
    eye_vector = points[1] - points[0]
    eyes = max(float(np.linalg.norm(eye_vector)), 1e-6)
    across = eye_vector / eyes
    down = np.array([-across[1], across[0]])
    nose = points[2] - middle
    drop, offset = float(nose @ down), float(nose @ across)
    # Yaw shortens the eye distance by cos(turn) and leaves the nose's drop below the eye
    # line as it is. Pitch changes the drop a little either way: the FRONTAL margin takes
    # a few degrees of it, and the mask never shrinks below the template's.
    measured = eyes * UPRIGHT_NOSE_DROP / max(drop, 1e-6) / FRONTAL
    cos_turn = float(np.clip(measured, 1 / MAX_TURN_GROWTH, 1))
    # the eye distance the face would show seen from the front: never less than the
    # template's (the mask never shrinks), never more than MAX_TURN_GROWTH times it
    template = template_landmarks(align)
    frontal = float(np.linalg.norm(template[1] - template[0]))
    unit = float(np.clip(eyes / cos_turn, frontal, MAX_TURN_GROWTH * frontal))
    # The turn's side is where the nose points; a nose near the midline says little.
    side = float(np.clip(offset / (NOSE_SIDE_FULL * eyes), -1, 1))
    shift = -HEAD_SHIFT * unit * np.sqrt(1 - cos_turn * cos_turn) * side
    centre = middle + shift * across
    return float(centre[0]), float(centre[1]), unit


@lru_cache(maxsize=32)  # a still face reuses one; a moving one is 0.3 ms to place anew
def cached_egg(align: AlignConfig, feather: float, centre_x: float, centre_y: float, eyes: float
               ) -> np.ndarray:  # fmt: skip
    mask = egg_mask(align, feather, centre_x, centre_y, eyes)
    mask.flags.writeable = False
    return mask


def face_mask(name: str, align: AlignConfig, feather: float, landmarks: np.ndarray | None
              ) -> np.ndarray:  # fmt: skip
    """The mask one face is pasted through: `head` placed from the face's `landmarks` (crop
    pixels, (5, 2)) when given, else the fixed mask `blend_mask` names. Read-only."""
    if name == "head" and landmarks is not None:
        return placed_head_mask(align, landmarks, feather)
    return blend_mask(name, align, feather)


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
