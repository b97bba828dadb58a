"""Paste a (transformed) face crop back into the photo it came from, without a seam.

The crop is warped back with the inverse of the alignment matrix and blended through
a soft mask drawn in crop space (`face.masks`: the head, or the whole crop), so the
blend follows the face however it was rotated. Pixels where the warped mask is 0 are
never written: outside the mask's support the photo stays bit-identical, and several
faces paste one after another.
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
    invert_affine,
    shrink,
)
from facefilter.face.masks import cached_crop_mask

FLOAT_CROP_RANGE = 1.01  # float crops follow the project's [-1, 1] convention


def crop_to_pixels(crop: np.ndarray) -> np.ndarray:
    """uint8 crops as they are; float crops in [-1, 1] (project convention) -> 0..255. float32"""
    crop = np.asarray(crop)
    if crop.ndim != 3 or crop.shape[2] != 3 or min(crop.shape[:2]) < 4:
        raise UserError(f"the crop must be (H, W, 3) RGB, got shape {crop.shape}")
    if crop.dtype == np.uint8:
        return crop.astype(np.float32)
    if not np.issubdtype(crop.dtype, np.floating):
        raise UserError(f"the crop must be uint8 or float in [-1, 1], got dtype {crop.dtype}")
    low, high = float(crop.min()), float(crop.max())
    if low < -FLOAT_CROP_RANGE or high > FLOAT_CROP_RANGE:
        raise UserError(
            f"float crops must hold values in [-1, 1] (x = 2*pixel/255 - 1), got [{low:.3g}, "
            f"{high:.3g}]; pass uint8 for 0..255 pixels"
        )
    return ((crop.astype(np.float32) + 1) * 127.5).clip(0, 255)


def paste_back(
    image: np.ndarray,
    crop: np.ndarray,
    matrix: np.ndarray,
    *,
    feather: float = 0.1,
    color_match: bool = False,
    in_place: bool = False,
    base: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    poisson: bool = False,
) -> np.ndarray:
    """Blend `crop` into a copy of `image` where `align_face` took it from. (H, W, 3) uint8

    image: (H, W, 3) uint8 (gray comes back as RGB). crop: (S, S, 3) uint8, or float in
    [-1, 1], at the size `align_face` made it (resize a model's output back to S first).
    matrix: the (2, 3) image->crop map `align_face` returned. color_match: shift the crop's colour
    mean and spread to the photo's under the mask (off by default: it can undo a filter
    that is meant to change colours). in_place: blend into `image` itself (it must then
    be (H, W, 3) uint8), so pasting many faces copies the photo once, not once a face.
    base: the aligned crop the model was given; with it, only the change (crop - base) is
    warped back and added, so the photo keeps its own resolution and detail wherever the
    model changed nothing (for filters whose output is their input plus a change).
    mask: (S, S) float in [0, 1], where the crop is blended in (`face.masks`: the head);
    None: the whole crop's rounded square, its edge `feather` wide. poisson: blend in the
    gradient domain (OpenCV's seamlessClone) inside the mask, so colour and brightness
    meet the photo's at the seam; the face keeps its own shading and detail.
    """
    cv2 = import_cv2()
    if in_place and not (image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8):
        raise ValueError("in_place needs an (H, W, 3) uint8 image to write into")
    result = image if in_place else as_rgb_uint8(image).copy()
    crop_pixels = crop_to_pixels(crop)  # (S, S, 3) float32 0..255
    if base is not None:  # the change alone, -255..255
        crop_pixels = crop_pixels - crop_to_pixels(base)
    if mask is None:
        mask = cached_crop_mask(crop_pixels.shape[0], crop_pixels.shape[1], feather)
    elif mask.shape != crop_pixels.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not fit the crop {crop_pixels.shape[:2]}")
    to_image = invert_affine(matrix)
    bounds = footprint(to_image, support(mask), result.shape[:2])
    if bounds is None:
        return result  # the mask is empty or lies wholly outside the photo
    x0, y0, x1, y1 = bounds
    to_region = compose_affine(np.array([[1.0, 0, -x0], [0, 1.0, -y0]]), to_image)
    scale = affine_scale(to_region)
    if scale < AREA_SHRINK_BELOW:  # a big crop onto a small face: average, do not alias
        crop_pixels, from_shrunk = shrink(crop_pixels, scale)
        mask, _ = shrink(mask, scale)
        to_region = compose_affine(to_region, from_shrunk)
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(
        crop_pixels, to_region, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )  # (h, w, 3)
    alpha = cv2.warpAffine(
        mask, to_region, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )  # (h, w)
    region = result[y0:y1, x0:x1]  # a view: writes land in `result`
    inside = alpha > 0
    if color_match and base is None:
        warped = _match_colors(warped, region, alpha > 0.5)
    alpha3 = alpha[:, :, None]  # (h, w, 1)
    change = warped if base is not None else warped - region
    if poisson:
        change = _poisson(region, region + change, alpha > 0.5) - region
    blended = region + alpha3 * change  # float32; equals region where alpha or the change is 0
    np.copyto(region, np.rint(blended).clip(0, 255).astype(np.uint8), where=inside[:, :, None])
    return result


def support(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The box x0, y0, x1, y1 (end exclusive) of the mask's nonzero pixels in crop space:
    all that is pasted (a head mask leaves out much of the crop, and its blend work)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return 0, 0, 0, 0
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def footprint(
    crop_to_image: np.ndarray, support: tuple[int, int, int, int], image_shape: tuple[int, ...]
) -> tuple[int, int, int, int] | None:
    """Integer box x0, y0, x1, y1 in the image covering the warped `support` (a box in
    crop pixels), or None if it is empty or off the image."""
    left, top, right, bottom = support
    if right <= left or bottom <= top:
        return None
    corners = np.array(
        [[left - 0.5, top - 0.5], [right - 0.5, top - 0.5], [left - 0.5, bottom - 0.5],
         [right - 0.5, bottom - 0.5]]
    )  # fmt: skip
    points = apply_affine(crop_to_image, corners)  # (4, 2)
    x0, y0 = np.maximum(np.floor(points.min(0)).astype(int) - 1, 0)
    x1 = min(int(np.ceil(points[:, 0].max())) + 2, image_shape[1])
    y1 = min(int(np.ceil(points[:, 1].max())) + 2, image_shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    return int(x0), int(y0), x1, y1


def _poisson(photo: np.ndarray, pasted: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """`pasted` where `inside`, re-solved so its edge meets `photo` (Poisson image
    editing: the gradients of `pasted`, the boundary values of `photo`). (h, w, 3) float32"""
    cv2 = import_cv2()
    if inside.sum() < 16:
        return pasted
    pad = 2  # seamlessClone needs the mask clear of the image edge
    border = [pad] * 4 + [cv2.BORDER_REPLICATE]
    source = cv2.copyMakeBorder(np.rint(pasted).clip(0, 255).astype(np.uint8), *border)
    target = cv2.copyMakeBorder(np.ascontiguousarray(photo), *border)
    binary = cv2.copyMakeBorder(inside.astype(np.uint8) * 255, pad, pad, pad, pad,
                                cv2.BORDER_CONSTANT, value=0)  # fmt: skip
    x, y, width, height = cv2.boundingRect(binary)
    centre = (x + width // 2, y + height // 2)  # where OpenCV puts the mask's box back
    solved = cv2.seamlessClone(source, target, binary, centre, cv2.NORMAL_CLONE)
    return solved[pad:-pad, pad:-pad].astype(np.float32)


def _match_colors(warped: np.ndarray, region: np.ndarray, core: np.ndarray) -> np.ndarray:
    """Give the crop the photo's per-channel mean and spread over `core`. (h, w, 3) float32"""
    if core.sum() < 16:
        return warped  # too few pixels for stable statistics
    crop_values, photo_values = warped[core], region[core].astype(np.float32)  # (N, 3)
    crop_std = crop_values.std(0) + 1e-3
    gain = photo_values.std(0) / crop_std
    matched = (warped - crop_values.mean(0)) * gain + photo_values.mean(0)
    return matched.clip(0, 255).astype(np.float32)
