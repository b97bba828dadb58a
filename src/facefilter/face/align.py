"""Align a detected face to a canonical crop with a 5-point similarity transform.

Coordinates: points are (x, y) in pixels with the centre of pixel (i, j) at (j, i),
as dlib, OpenCV and `cv2.warpAffine` use them. A template point u in the unit square
lands at pixel u * size - 0.5, so the unit square covers the crop edge to edge.

Every matrix here is a (2, 3) affine map from *image* pixels to *crop* pixels, the
form `cv2.warpAffine` takes; `invert_affine` gives the way back for paste-back.
"""

from __future__ import annotations

import numpy as np

from facefilter.errors import UserError
from facefilter.face.arrays import as_rgb_uint8, import_cv2
from facefilter.face.geometry import (
    AREA_SHRINK_BELOW,
    affine_scale,
    apply_affine,
    compose_affine,
    estimate_similarity,
    invert_affine,
    shrink,
)
from facefilter.face.template import AlignConfig, template_landmarks
from facefilter.face.types import Face


def align_face(
    image: np.ndarray, face: Face, cfg: AlignConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Crop `face` to the template framing. Returns (crop (H, W, 3) uint8, matrix (2, 3)).

    `matrix` maps image pixels to crop pixels; pass it to `paste_back` unchanged.
    """
    cfg = cfg or AlignConfig()
    image = as_rgb_uint8(image)
    landmarks = np.asarray(face.landmarks, np.float64)
    if landmarks.shape != (5, 2) or not np.isfinite(landmarks).all():
        raise UserError(f"Face.landmarks must be a finite (5, 2) array, got {landmarks.shape}")
    matrix = estimate_similarity(landmarks, template_landmarks(cfg))
    return warp_to_crop(image, matrix, cfg.crop_size), matrix


def warp_to_crop(image: np.ndarray, matrix: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Sample the crop that `matrix` (image -> crop) frames, `size` a side or (width,
    height). (H, W, 3) uint8

    Only the crop's footprint in the image is touched, so a 100-megapixel photo costs
    no more than a small one; outside the image the border is mirrored (no black corners).
    """
    cv2 = import_cv2()
    height, width = image.shape[:2]
    if isinstance(size, tuple):
        crop_w, crop_h = size
    else:  # a side: int, or a numpy integer
        crop_w = crop_h = int(size)
    corners = np.array(
        [[-0.5, -0.5], [crop_w - 0.5, -0.5], [-0.5, crop_h - 0.5], [crop_w - 0.5, crop_h - 0.5]]
    )
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
        (crop_w, crop_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101,
    )
