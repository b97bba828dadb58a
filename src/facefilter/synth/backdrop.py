"""What stands behind the head: a defocused photograph (photo style), a pastel gradient
with flat shapes (anime), or one flat colour (cartoon).

The photographs are crops of public-domain / CC0 photos that hold no face, saved in
`backdrops.npz` by `make_backdrops` (so rendering never needs scikit-image). Each face
picks a crop, a window of it, a mirror image and a colour cast from its parameters,
and blurs it by its depth of field; the drawn clutter shows through, faintly.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from facefilter.synth.params import FaceParams
from facefilter.synth.shapes import Canvas, box, col
from facefilter.synth.styles import Look

BACKDROPS = Path(__file__).with_name("backdrops.npz")


_TEXTURE = 64  # pixels across every level of the backdrop pyramid
_LEVELS = (64, 16, 8, 4)  # level l is the crop at this resolution, smoothed, then enlarged


@functools.cache
def backdrop_pyramid() -> Tensor:
    """(K, L, 3, T, T) float32 in [0, 1]: each crop at `_LEVELS` of defocus, all at
    `_TEXTURE` px so that a face can blend two neighbouring levels. Built once."""
    with np.load(BACKDROPS) as saved:
        crops = torch.from_numpy(saved["crops"])  # (K, S, S, 3) uint8
    crops = crops.permute(0, 3, 1, 2).float().div_(255.0)
    levels = []
    for side in _LEVELS:
        small = F.interpolate(crops, size=side, mode="area")
        if side < _TEXTURE:  # a 3 x 3 box, so enlarging it shows no bilinear creases
            small = F.avg_pool2d(F.pad(small, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        levels.append(F.interpolate(small, size=_TEXTURE, mode="bilinear", align_corners=False))
    return torch.stack(levels, dim=1).contiguous()


def backdrop(params: FaceParams, look: Look, size: int) -> Tensor:
    """(N, 3, size, size): the style's backdrop for every face."""
    if not look.backdrop.photographs:
        return _drawn(params, look, size)
    image = _photograph(params, size)
    rows = (params.clutter_weight > 0).nonzero()[:, 0]  # clutter shows on some faces only
    if len(rows):
        weight = params.clutter_weight[rows, None, None, None]
        image[rows] = torch.lerp(image[rows], _drawn(params.rows(rows), look, size), weight)
    return image


def _photograph(params: FaceParams, size: int) -> Tensor:
    """Each face's crop, defocused by its depth of field (a blend of two levels of the
    pyramid), then a window of it, mirrored or not, colour cast."""
    pyramid = backdrop_pyramid()
    count, levels = pyramid.shape[:2]
    pick = (params.backdrop_pick * count).long().clamp_(max=count - 1)
    depth = params.backdrop_blur * (levels - 1)  # (N,) in [0, levels - 1]
    lower = depth.floor().long().clamp_(max=levels - 2)
    texture = torch.lerp(pyramid[pick, lower], pyramid[pick, lower + 1],
                         (depth - lower)[:, None, None, None])  # fmt: skip
    window = params.backdrop_window  # (N, 3): centre x, y in [0, 1], zoom
    zoom = window[:, 2]
    mirror = 1.0 - 2.0 * params.backdrop_flip
    centre = (2.0 * window[:, :2] - 1.0) * (1.0 - zoom[:, None])  # the window stays inside
    pixels = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    gx = col(centre[:, 0]) + col(zoom * mirror) * pixels.reshape(1, 1, -1)  # (N, 1, S)
    gy = col(centre[:, 1]) + col(zoom) * pixels.reshape(1, -1, 1)  # (N, S, 1)
    grid = torch.stack(torch.broadcast_tensors(gx, gy), dim=-1)  # (N, S, S, 2)
    photo = F.grid_sample(texture, grid, mode="bilinear", align_corners=False)
    return photo * params.backdrop_cast[:, :, None, None]


def _drawn(params: FaceParams, look: Look, size: int) -> Tensor:
    """Photo: a soft, out-of-focus room (clutter at quarter resolution); anime: a pastel
    gradient with flat shapes; cartoon: one flat colour. (N, 3, size, size)"""
    n, backdrop = len(params), look.backdrop
    (top_base, top_span), (bottom_base, bottom_span) = backdrop.top, backdrop.bottom
    if backdrop.flat:
        flat = top_base + top_span * params.background[:, 0]
        return flat[:, :, None, None].expand(n, 3, size, size).contiguous()
    low = max(backdrop.min_pixels, size // backdrop.divisor)
    canvas = Canvas(n, low, edge_px=backdrop.edge_px)
    whole = canvas.whole()
    top = top_base + top_span * params.background[:, 0]
    bottom = bottom_base + bottom_span * params.background[:, 1]
    height = (whole.y + 1.0) / 2.0  # (1, h, 1)
    gradient = torch.lerp(top[:, :, None, None], bottom[:, :, None, None], height.unsqueeze(1))
    canvas.rgba[:, :3] = gradient
    canvas.rgba[:, 3] = 1.0
    base, span, grey = backdrop.object_colour
    for k in range(backdrop.objects):
        pos, half = params.clutter_pos[:, k], params.clutter_size[:, k]
        corner = params.clutter_round[:, k] * half.min(dim=1).values
        sdf = box(whole.x - col(pos[:, 0]), whole.y - col(pos[:, 1]),
                  col(half[:, 0]), col(half[:, 1]), col(corner))  # fmt: skip
        colour = params.clutter_colour[:, k]
        colour = base + span * colour + grey * colour.mean(1, keepdim=True)
        whole.fill(sdf, colour, backdrop.object_opacity)
    return F.interpolate(canvas.rgba[:, :3], size=size, mode="bilinear", align_corners=False)
