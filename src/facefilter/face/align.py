"""Align a detected face to a canonical crop with a 5-point similarity transform.

Coordinates: points are (x, y) in pixels with the centre of pixel (i, j) at (j, i),
as dlib, OpenCV and `cv2.warpAffine` use them. A template point u in the unit square
lands at pixel u * size - 0.5, so the unit square covers the crop edge to edge.

Every matrix here is a (2, 3) affine map from *image* pixels to *crop* pixels, the
form `cv2.warpAffine` takes; `invert_affine` gives the way back for paste-back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from facefilter.errors import UserError

if TYPE_CHECKING:
    from facefilter.face.detect import Face

# Landmark geometry in units of the eye distance, from the widely used 5-point mean
# face (InsightFace's 112x112 ArcFace reference: eyes 35.2 px apart, nose tip 20.1 px
# and mouth corners 40.7 px below the eye line, mouth 29.2 px wide).
NOSE_DROP = 0.57
MOUTH_DROP = 1.155
MOUTH_WIDTH = 0.83

# Below this scale (crop pixels per image pixel) bilinear sampling skips pixels and
# aliases, so the source region is first shrunk with INTER_AREA.
AREA_SHRINK_BELOW = 0.5


def import_cv2() -> Any:
    """OpenCV is part of the optional `face` extra; import it only when used."""
    try:
        import cv2
    except ImportError as error:
        raise UserError(
            'face detection and alignment need OpenCV: pip install "facefilter[face]"'
        ) from error
    return cv2


@dataclass(frozen=True)
class AlignConfig:
    """Framing of the canonical crop. Defaults show hair and chin, as face data sets do."""

    size: int = 128  # output side in pixels
    margin: float = 0.0  # extra border per side, as a fraction of the template square
    eye_height: float = 0.40  # eye line from the top (fraction): room for hair above
    eye_distance: float = 0.24  # eye centres apart (fraction): chin lands near 0.86

    def __post_init__(self) -> None:
        if self.size < 8:
            raise UserError(f"AlignConfig.size={self.size} is too small; use 8 pixels or more")
        if not -0.25 < self.margin <= 2.0:
            raise UserError(f"AlignConfig.margin={self.margin} must lie in (-0.25, 2.0]")
        if not 0.1 <= self.eye_height <= 0.6:
            raise UserError(f"AlignConfig.eye_height={self.eye_height} must lie in [0.1, 0.6]")
        if not 0.05 <= self.eye_distance <= 0.6:
            raise UserError(f"AlignConfig.eye_distance={self.eye_distance} must lie in [0.05, 0.6]")


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
    return framed * cfg.size - 0.5


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


def check_image(image: np.ndarray) -> None:
    """UserError unless `image` is uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)."""
    if image.dtype != np.uint8:
        raise UserError(f"images must be uint8 RGB, got dtype {image.dtype}; convert with PIL")
    shape_ok = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))
    if not shape_ok or min(image.shape[:2]) < 1:
        raise UserError(f"images must be (H, W, 3) RGB or (H, W) gray, got shape {image.shape}")


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Accept (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8; return (H, W, 3) uint8."""
    image = np.asarray(image)
    check_image(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    # RGBA: alpha plays no part in faces. Contiguous, as dlib and OpenCV want it.
    return np.ascontiguousarray(image[:, :, :3])


def align_face(
    image: np.ndarray, face: Face, cfg: AlignConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Crop `face` to the template framing. Returns (crop (S, S, 3) uint8, matrix (2, 3)).

    `matrix` maps image pixels to crop pixels; pass it to `paste_back` unchanged.
    """
    cfg = cfg or AlignConfig()
    image = as_rgb_uint8(image)
    landmarks = np.asarray(face.landmarks, np.float64)
    if landmarks.shape != (5, 2) or not np.isfinite(landmarks).all():
        raise UserError(f"Face.landmarks must be a finite (5, 2) array, got {landmarks.shape}")
    matrix = estimate_similarity(landmarks, template_landmarks(cfg))
    return warp_to_crop(image, matrix, cfg.size), matrix


def warp_to_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Sample the (size, size) crop that `matrix` (image -> crop) frames. (S, S, 3) uint8

    Only the crop's footprint in the image is touched, so a 100-megapixel photo costs
    no more than a small one; outside the image the border is mirrored (no black corners).
    """
    cv2 = import_cv2()
    height, width = image.shape[:2]
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5] * 2])
    footprint = apply_affine(invert_affine(matrix), corners)  # (4, 2) in image pixels
    scale = affine_scale(matrix)
    pad = 2 + int(np.ceil(2 / scale))  # a few samples of context for the filters
    x0, y0 = np.clip(np.floor(footprint.min(0)).astype(int) - pad, 0, [width - 1, height - 1])
    x1, y1 = np.clip(np.ceil(footprint.max(0)).astype(int) + pad, [x0 + 1, y0 + 1], [width, height])
    region = image[y0:y1, x0:x1]
    # (region pixel) = (image pixel) - (x0, y0)
    to_crop = compose_affine(matrix, np.array([[1.0, 0, x0], [0, 1.0, y0]]))
    if scale < AREA_SHRINK_BELOW:
        region, from_shrunk = shrink(region, scale)
        to_crop = compose_affine(to_crop, from_shrunk)
    return cv2.warpAffine(
        np.ascontiguousarray(region),
        to_crop,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101,
    )


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
