"""The canonical crop: where the 5 landmarks of a mean face land, and how it is framed.

Pure numbers and numpy: detection (landmark estimates), alignment and data framing
all read it, so it imports nothing else from `facefilter.face`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facefilter.errors import UserError

# Landmark geometry in units of the eye distance, from the widely used 5-point mean
# face (InsightFace's 112x112 ArcFace reference: eyes 35.2 px apart, nose tip 20.1 px
# and mouth corners 40.7 px below the eye line, mouth 29.2 px wide).
NOSE_DROP = 0.57
MOUTH_DROP = 1.155
MOUTH_WIDTH = 0.83


@dataclass(frozen=True)
class AlignConfig:
    """Framing of the canonical crop. Defaults show hair and chin, as face data sets do."""

    size: int = 128  # output side in pixels
    margin: float = 0.0  # extra border per side, as a fraction of the template square
    eye_height: float = 0.40  # eye line from the top (fraction): room for hair above
    eye_distance: float = 0.24  # eye centres apart (fraction): chin lands near 0.86
    # (width, height) cut from the middle of the size x size square, for a model trained
    # at a non-square size (deep-makeover's 80x100); None: the square itself
    crop: tuple[int, int] | None = None

    @property
    def crop_size(self) -> tuple[int, int]:
        """(width, height) of the crop `align_face` returns."""
        return self.crop or (self.size, self.size)

    def __post_init__(self) -> None:
        if self.size < 8:
            raise UserError(f"AlignConfig.size={self.size} is too small; use 8 pixels or more")
        if not -0.25 < self.margin <= 2.0:
            raise UserError(f"AlignConfig.margin={self.margin} must lie in (-0.25, 2.0]")
        if not 0.1 <= self.eye_height <= 0.6:
            raise UserError(f"AlignConfig.eye_height={self.eye_height} must lie in [0.1, 0.6]")
        if not 0.05 <= self.eye_distance <= 0.6:
            raise UserError(f"AlignConfig.eye_distance={self.eye_distance} must lie in [0.05, 0.6]")
        if self.crop is not None and not all(8 <= side <= self.size for side in self.crop):
            raise UserError(f"AlignConfig.crop={self.crop} must lie within 8..{self.size} a side")


def unit_template(eye_height: float = 0.40, eye_distance: float = 0.24) -> np.ndarray:
    """The 5 landmarks in the unit square, in the order `Face.landmarks` uses. (5, 2)"""
    half_eyes, half_mouth = eye_distance / 2, MOUTH_WIDTH * eye_distance / 2
    nose_y = eye_height + NOSE_DROP * eye_distance
    mouth_y = eye_height + MOUTH_DROP * eye_distance
    return np.array(
        [
            [0.5 - half_eyes, eye_height],  # left eye (as seen in the image)
            [0.5 + half_eyes, eye_height],  # right eye
            [0.5, nose_y],  # nose tip
            [0.5 - half_mouth, mouth_y],  # left mouth corner
            [0.5 + half_mouth, mouth_y],  # right mouth corner
        ],
        dtype=np.float64,
    )


def template_landmarks(cfg: AlignConfig | None = None) -> np.ndarray:
    """Where `align_face` puts the 5 landmarks, in crop pixels. (5, 2)"""
    cfg = cfg or AlignConfig()
    unit = unit_template(cfg.eye_height, cfg.eye_distance)
    framed = (unit + cfg.margin) / (1 + 2 * cfg.margin)  # margin shrinks the face inside
    width, height = cfg.crop_size
    offset = np.array([(cfg.size - width) // 2, (cfg.size - height) // 2])  # as data are cut
    return framed * cfg.size - 0.5 - offset
