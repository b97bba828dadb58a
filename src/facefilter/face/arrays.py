"""Image input checks and the lazy OpenCV import every face module shares."""

from __future__ import annotations

from typing import Any

import numpy as np

from facefilter.errors import UserError


def import_cv2() -> Any:
    """OpenCV is part of the optional `face` extra; import it only when used."""
    try:
        import cv2
    except ImportError as error:
        raise UserError(
            'face detection and alignment need OpenCV: pip install "facefilter[face]"'
        ) from error
    return cv2


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
