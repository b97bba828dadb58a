"""What the pipeline saw, drawn on its output (`--debug-overlay`): each face's box, its
five landmarks and the outline of the mask it was blended through."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facefilter.face.arrays import import_cv2
from facefilter.face.geometry import compose_affine, invert_affine
from facefilter.face.paste import footprint, support
from facefilter.face.types import Face

BOX = (0, 255, 0)  # RGB
LANDMARKS = (255, 0, 0)
MASK_OUTLINE = (255, 255, 0)


def draw_overlay(
    photo: np.ndarray, faces: Sequence[Face], matrices: Sequence[np.ndarray],
    masks: Sequence[np.ndarray] | np.ndarray | None,
) -> np.ndarray:  # fmt: skip
    """A copy of `photo` (H, W, 3) uint8 with every face's box and landmarks, and where
    its mask (crop space, as pasted through each face's image->crop `matrices`) is half on.
    masks: one per face, or one (H, W) array for all, or None."""
    cv2 = import_cv2()
    shown = np.ascontiguousarray(photo).copy()
    height, width = shown.shape[:2]
    thickness = max(1, round(max(height, width) / 400))
    if masks is None or isinstance(masks, np.ndarray):
        masks = [masks] * len(faces)  # type: ignore[list-item]
    for face, matrix, mask in zip(faces, matrices, masks, strict=True):
        region = None if mask is None else footprint(invert_affine(matrix), support(mask),
                                                     shown.shape)  # fmt: skip
        if mask is not None and region is not None:  # warped into the face's area only
            x0, y0, x1, y1 = region
            to_region = compose_affine(np.array([[1.0, 0, -x0], [0, 1.0, -y0]]),
                                       invert_affine(matrix))  # fmt: skip
            warped = cv2.warpAffine(mask, to_region, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                    borderValue=0)  # fmt: skip
            outline, _ = cv2.findContours((warped > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL,
                                          cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0))  # fmt: skip
            cv2.drawContours(shown, outline, -1, MASK_OUTLINE, thickness)
        x0, y0, x1, y1 = (round(v) for v in face.box)
        cv2.rectangle(shown, (x0, y0), (x1, y1), BOX, thickness)
        for x, y in face.landmarks:
            cv2.circle(shown, (round(x), round(y)), 2 * thickness, LANDMARKS, -1)
    return shown
