"""Affine maps between image and crop pixels, and an alias-free shrink.

Coordinates: points are (x, y) in pixels with the centre of pixel (i, j) at (j, i),
as dlib, OpenCV and `cv2.warpAffine` use them. Every matrix is a (2, 3) affine map
in the form `cv2.warpAffine` takes.
"""

from __future__ import annotations

import numpy as np

from facefilter.errors import UserError
from facefilter.face.arrays import import_cv2

# Below this scale (crop pixels per image pixel) bilinear sampling skips pixels and
# aliases, so the source region is first shrunk with INTER_AREA.
AREA_SHRINK_BELOW = 0.5


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (scale, rotation, shift; no reflection) taking src to dst.

    Umeyama (1991): with centred points, the rotation comes from the SVD of the
    cross-covariance, with the sign fixed so the determinant stays +1. Returns (2, 3).
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or len(src) < 2:
        raise UserError(
            f"landmarks must be two matching (N>=2, 2) arrays, got {src.shape} and {dst.shape}"
        )
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var < 1e-12:
        raise UserError(f"landmarks collapse to a single point {src_mean.tolist()}")
    cov = dst_c.T @ src_c / len(src)  # (2, 2)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1  # the best fit is a reflection; take the closest rotation instead
    rotation = u @ np.diag(sign) @ vt
    scale = (sigma * sign).sum() / src_var
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine map, as a (2, 3) map."""
    matrix = np.asarray(matrix, np.float64)
    if matrix.shape != (2, 3):
        raise UserError(f"an affine matrix must have shape (2, 3), got {matrix.shape}")
    linear_inv = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear_inv, -linear_inv @ matrix[:, 2:]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a (2, 3) affine matrix. (N, 2)"""
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The (2, 3) map `outer(inner(p))`."""
    return np.hstack([outer[:, :2] @ inner[:, :2], outer[:, :2] @ inner[:, 2:] + outer[:, 2:]])


def affine_scale(matrix: np.ndarray) -> float:
    """How much a (2, 3) similarity map enlarges lengths."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))))


def shrink(image: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Resize by `factor` < 1 with INTER_AREA. Returns (small, small->image (2, 3)).

    INTER_AREA averages every source pixel, so the result does not alias.
    """
    cv2 = import_cv2()
    height, width = image.shape[:2]
    small_w, small_h = max(1, round(width * factor)), max(1, round(height * factor))
    small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
    fx, fy = small_w / width, small_h / height
    # cv2.resize aligns pixel centres: image = (small + 0.5) / f - 0.5
    return small, np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5]])
