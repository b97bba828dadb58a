"""Landmarks smoothed over time: a One Euro filter (Casiez, Roussel and Vogel, CHI 2012).

A face's detected landmarks jitter by a fraction of a pixel between near-identical
frames (sensor noise moves the detector's answer), and the aligned crop, the model's
output and the pasted head all jitter with them: the flicker GFPGAN#533 and
facexlib#48 trace to alignment. A fixed moving average trades that jitter for lag. A
One Euro filter does not have to: it is a low-pass filter whose cutoff rises with the
speed, so a still face is smoothed hard and a moving one is followed closely.

Units: time is counted in frames, and positions in the face's own eye distance (so the
same settings hold for a face 60 or 600 pixels wide). One cutoff is taken for all five
points, from the speed of their centre, so the face's shape is never bent by points
filtered apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facefilter.errors import UserError


def smoothing_factor(cutoff: float, frames: float = 1.0) -> float:
    """The exponential smoothing weight of a first-order low-pass at `cutoff` cycles per
    frame, sampled every `frames` frames."""
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / frames)


@dataclass(frozen=True)
class OneEuro:
    """Settings, in cycles per frame and eye distances per frame (see the module)."""

    # Chosen on benchmarks/video_stability.py's clips (dlib landmarks, 0.4-2 px of jitter):
    # against the moving average it replaced (weight 0.6), still faces jitter half as much
    # and a head swaying 4.7 px a frame trails no further (0.4-0.6 frames).
    min_cutoff: float = 0.05  # still face: ~3 frames' time constant, jitter averaged away
    beta: float = 3.0  # cutoff added per eye distance a frame of speed: motion followed
    speed_cutoff: float = 0.1  # the speed itself is smoothed, or jitter reads as motion

    def __post_init__(self) -> None:
        if min(self.min_cutoff, self.speed_cutoff) <= 0 or self.beta < 0:
            raise UserError(f"One Euro settings must be positive, got {self}")


@dataclass
class SmoothedPoints:
    """One face's landmarks through a One Euro filter. `update` takes the detected (5, 2)
    points of the next frame and returns the smoothed ones."""

    settings: OneEuro
    points: np.ndarray  # (5, 2) the last smoothed landmarks, image pixels
    speed: np.ndarray  # (2,) the face's smoothed velocity, eye distances a frame

    @classmethod
    def start(cls, points: np.ndarray, settings: OneEuro) -> SmoothedPoints:
        points = np.asarray(points, np.float64)
        return cls(settings, points.copy(), np.zeros(2))

    def update(self, points: np.ndarray, frames: float = 1.0) -> np.ndarray:
        """The smoothed landmarks for `points`, detected `frames` frames after the last
        (a tracker that detects every other frame passes 2: the time constants stay)."""
        points = np.asarray(points, np.float64)
        # the larger of the two eye distances: one degenerate detection (eyes on top of
        # each other) must not read as an enormous speed
        scale = max(_eyes(points), _eyes(self.points), 1e-6)
        # The face's speed is its centre's: the mean of five points' independent jitter
        # is a little over a third of one point's, so it reads as motion much later.
        velocity = (points - self.points).mean(0) / (scale * frames)
        weight = smoothing_factor(self.settings.speed_cutoff, frames)
        self.speed = self.speed + weight * (velocity - self.speed)
        cutoff = self.settings.min_cutoff + self.settings.beta * float(np.linalg.norm(self.speed))
        self.points = self.points + smoothing_factor(cutoff, frames) * (points - self.points)
        return self.points.copy()


def _eyes(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[1] - points[0]))
