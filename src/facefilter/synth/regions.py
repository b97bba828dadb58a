"""Region masks of synthetic faces in image pixels, for metrics of the *shape* change.

A photo->anime translator must move and resize features (anime eyes are bigger and sit
lower); a whole-image L1 hides that under the backdrop and hair. These masks say where
each region is in a face drawn in a given style, so a benchmark can score it alone:

- ``"eyes"``: both eyes as the style sizes and places them (`geometry`'s eye_x, eye_y,
  eye_rx, eye_ry), grown by `FEATURE_MARGIN` so the lash line and lids are inside;
- ``"chin"``: a band `CHIN_BAND` either side of the face outline, from the mouth line
  down round the chin (the jaw edge against the neck or backdrop);
- ``"face"``: the face shape (the skin egg, without ears; hair and hats drawn over it
  are not cut out);
- ``"mouth"``: the lips and an open smile, grown by `FEATURE_MARGIN`;
- ``"head"``: the face and the hair behind it (cap and fall, as drawn, without the
  fall's wave): what a filter's output should replace in a photo, and no more.

Alignment comes from reusing the renderer rather than redrawing it: `geometry` for the
per-style lengths, `head.face_sdf` for the outline, and `render._pose_grid` (private, but
it *is* the pose `render` applies; importing it keeps one copy of that maths) for the
face-plane point under every image pixel. The shapes are then evaluated analytically at
the pixel centres, so nothing is resampled and masks do not depend on the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from facefilter.errors import UserError
from facefilter.synth.dataset import SynthFaces
from facefilter.synth.head import face_sdf, hair_back_sdf
from facefilter.synth.params import FaceParams, sample_params_at
from facefilter.synth.render import _pose_grid, check_style_and_size
from facefilter.synth.shapes import Region, box, col, ellipse, intersect, union
from facefilter.synth.styles import LOOKS, Geometry, Look, geometry

MASK_REGIONS: tuple[str, ...] = ("eyes", "chin", "face", "mouth", "head")
# Canonical units (the face is ~0.67 wide; one image pixel is ~0.011 at 128 px).
FEATURE_MARGIN = 0.025  # > half the heaviest lash line (anime, women: 0.018), plus a pixel
CHIN_BAND = 0.05  # half-width of the jaw band: ~4 px either side of the outline at 128 px
_MASK_PIXELS = 32 * 128 * 128  # pixels evaluated at once, as render does: bounded temporaries


def region_masks(params: FaceParams, style: str, size: int,
                 regions: Sequence[str] = ("eyes", "chin")) -> dict[str, Tensor]:  # fmt: skip
    """Masks of `regions` for every face of `params` drawn by `render(params, style, size)`:
    name -> float32 (N, 1, size, size) in [0, 1], the pixel's coverage (a one-pixel
    anti-aliased edge; `mask > 0.5` is a binary mask). Deterministic, per face."""
    check_style_and_size(style, size)
    unknown = [name for name in regions if name not in MASK_REGIONS]
    if unknown or not regions:
        raise UserError(f"unknown mask regions {unknown or list(regions)}; choose from "
                        f"{', '.join(MASK_REGIONS)}")  # fmt: skip
    chunk = max(1, _MASK_PIXELS // (size * size))
    parts = [
        _masks_chunk(params.rows(slice(start, start + chunk)), LOOKS[style], size, regions)
        for start in range(0, len(params), chunk)
    ]
    if not parts:
        return {name: torch.zeros(0, 1, size, size) for name in regions}
    return {name: torch.cat([part[name] for part in parts]) for name in regions}


def _masks_chunk(params: FaceParams, look: Look, size: int,
                 regions: Sequence[str]) -> dict[str, Tensor]:  # fmt: skip
    g = geometry(params, look)
    grid = _pose_grid(params, size)  # (N, S, S, 2): the face-plane point of each pixel
    # face_sdf reads only a region's coordinates; here they are full (N, S, S) grids.
    plane = Region(x=grid[..., 0], y=grid[..., 1], rgba=torch.empty(0), soft=0.0)
    pixel = col(2.0 / (size * params.scale))  # (N, 1, 1) one image pixel in canonical units
    masks = {}
    for name in regions:
        sdf = _SHAPES[name](plane, g, pixel)  # (N, S, S), negative inside, canonical units
        masks[name] = (0.5 - sdf / pixel).clamp_(0.0, 1.0).unsqueeze(1)
    return masks


def _eyes(plane: Region, g: Geometry, pixel: Tensor) -> Tensor:
    qx = plane.x.abs() - g.eye_x  # mirrored: one evaluation covers both eyes
    qy = plane.y - g.eye_y
    return ellipse(qx, qy, g.eye_rx + FEATURE_MARGIN, g.eye_ry + FEATURE_MARGIN)


def _face_distance(plane: Region, g: Geometry, pixel: Tensor) -> Tensor:
    """face_sdf is in units of the face's half-width, so it understates distances at
    the chin (the face is taller than wide); divide by its gradient to get lengths."""
    sdf = face_sdf(plane, g)
    d_row, d_col = torch.gradient(sdf, dim=(1, 2))  # per pixel; rotation keeps lengths
    slope = (d_row.square() + d_col.square()).sqrt_() / pixel
    return sdf / slope.clamp_(min=1e-3)


def _chin(plane: Region, g: Geometry, pixel: Tensor) -> Tensor:
    band = _face_distance(plane, g, pixel).abs() - CHIN_BAND
    return intersect(band, g.mouth_y - plane.y)  # only below the mouth line


def _mouth(plane: Region, g: Geometry, pixel: Tensor) -> Tensor:
    """Closed lips span mouth_y - 0.032 .. + 0.041; a smile opens down by about the
    style's depth; lips are never narrower than 0.075 (features.draw_mouth)."""
    smile = g.has("Smiling")
    top, bottom = -0.035, 0.042 + 0.035 * smile  # (N, 1, 1) offsets from the mouth line
    half_width = g.mouth_w.clamp(min=0.075)
    dy = plane.y - g.mouth_y - (top + bottom) / 2
    return box(plane.x, dy, half_width, (bottom - top) / 2) - FEATURE_MARGIN


def _head(plane: Region, g: Geometry, pixel: Tensor) -> Tensor:
    return union(_face_distance(plane, g, pixel), hair_back_sdf(plane, g))


_SHAPES: dict[str, Callable[[Region, Geometry, Tensor], Tensor]] = {
    "eyes": _eyes,
    "chin": _chin,
    "face": _face_distance,
    "mouth": _mouth,
    "head": _head,
}
assert tuple(_SHAPES) == MASK_REGIONS


def masked_l1(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean |prediction - target| over the masked pixels of each image: (N,).
    Images (N, C, H, W) in [-1, 1]; mask (N, 1, H, W), bool or weights in [0, 1]."""
    if prediction.shape != target.shape or prediction.dim() != 4:
        raise UserError(f"masked_l1 needs two (N, C, H, W) images of one shape, got "
                        f"{tuple(prediction.shape)} and {tuple(target.shape)}")  # fmt: skip
    n, _, height, width = prediction.shape
    if mask.shape != (n, 1, height, width):
        raise UserError(f"mask of shape {tuple(mask.shape)} does not fit images of shape "
                        f"{tuple(prediction.shape)}; pass (N, 1, H, W)")  # fmt: skip
    weights = mask.to(prediction.dtype).flatten(1)  # (N, H*W)
    area = weights.sum(1)
    if (area <= 0).any():
        empty = (area <= 0).nonzero()[:, 0].tolist()
        raise UserError(f"the masks of images {empty} are empty: nothing to compare")
    error = (prediction - target).abs().mean(1).flatten(1)  # (N, H*W), mean over channels
    return (error * weights).sum(1) / area


def synth_region_masks(style: str, size: int, count: int = 2000, seed: int = 0,
                       split: str | None = "test", regions: Sequence[str] = ("eyes", "chin"),
                       limit: int | None = None) -> dict[str, Tensor]:  # fmt: skip
    """`region_masks` of exactly the faces `metrics.synth_pairs(..., size, count=count,
    seed=seed, split=split, limit=limit)` returns, row for row: mask its ground truth
    (`style` = its target style) or its source (the source style). The ids come from
    `SynthFaces` itself, so they follow its split rule."""
    ids = SynthFaces(style, size, count=count, seed=seed, split=split).ids
    ids = ids if limit is None else ids[:limit]
    return region_masks(sample_params_at(ids, seed), style, size, regions)
