"""What a detector returns and the contract every backend meets; no OpenCV, no dlib."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(eq=False)  # compared by identity: `==` on the landmark arrays is ambiguous
class Face:
    """One face. Landmarks are ordered as seen with the face upright in the image.

    box: x0, y0, x1, y1 in image pixels. landmarks: (5, 2) x, y of the left eye centre,
    right eye centre (left/right as seen in the image), nose tip, left and right mouth
    corners. score: the backend's confidence (dlib: SVM margin; YuNet: 0..1).
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def area(self) -> float:
        """Box area in square pixels: "largest face" means largest box."""
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB (H, W, 3) or gray (H, W) uint8 image, in its pixel coordinates."""
        ...


# One backend pass: upright RGB uint8 (H, W, 3) -> faces in that image's pixels.
FacePass = Callable[[np.ndarray], list[Face]]
