"""Drawing a batch of `FaceParams` in one style.

Rendering is vectorised over the batch: every face is drawn with anti-aliased signed
distance shapes, layer by layer, on a canvas in canonical face coordinates; one
affine resampling per face then poses it (position, scale, rotation) over its
backdrop. Everything is deterministic for a seed (no global RNG).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from facefilter.errors import UserError
from facefilter.synth.features import (
    draw_beard,
    draw_brows,
    draw_eyes,
    draw_glasses,
    draw_mouth,
    draw_nose,
    draw_wrinkles,
)
from facefilter.synth.head import draw_body, draw_face, draw_hair_front, light_photo
from facefilter.synth.params import FaceParams
from facefilter.synth.shapes import Canvas, box, col, noise
from facefilter.synth.styles import LOOKS, STYLES, Look, geometry, palette

MIN_SIZE, MAX_SIZE = 32, 256
# Pixels drawn at once (32 faces at 128 px): small enough that the (N, h, w) temporaries stay
# in the CPU cache, big enough that per-operation overhead is spread over many faces.
_RENDER_PIXELS = 32 * 128 * 128
# The face canvas spans [-0.86, 0.86]: with the smallest scale (1.3), the largest shift and
# rotation, no image pixel samples beyond it, so nothing outside is ever drawn.
_CANVAS_EXTENT = 0.86


def check_style_and_size(style: str, size: int) -> None:
    if style not in STYLES:
        raise UserError(f"unknown synthetic style {style!r}; choose one of {', '.join(STYLES)}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise UserError(
            f"synthetic image size {size} is out of range; use {MIN_SIZE} to {MAX_SIZE} px"
        )


def render(params: FaceParams, style: str, size: int) -> Tensor:
    """Draw every face of `params` in `style`: float32 (N, 3, size, size) in [0, 1]."""
    check_style_and_size(style, size)
    chunk = max(1, _RENDER_PIXELS // (size * size))
    chunks = [
        _render_chunk(params.rows(slice(start, start + chunk)), style, size)
        for start in range(0, len(params), chunk)
    ]
    return torch.cat(chunks) if chunks else torch.zeros(0, 3, size, size)


def _render_chunk(params: FaceParams, style: str, size: int) -> Tensor:
    look = LOOKS[style]
    face = _draw_face_canvas(params, look, size)  # (N, 4, S, S) premultiplied
    posed = F.grid_sample(face, _pose_grid(params, size) / _CANVAS_EXTENT, mode="bilinear",
                          padding_mode="border", align_corners=False)  # fmt: skip
    image = _backdrop(params, look, size) * (1.0 - posed[:, 3:]) + posed[:, :3]
    if look.lit:  # sensor noise: per-pixel, partly shared by the channels
        grain = noise(params.noise_seed, size, size, 3)
        grain = 0.6 * grain[:, :1] + 0.4 * grain
        image = image + col(params.noise_level)[:, None] * grain
    return image.clamp_(0.0, 1.0)


def _draw_face_canvas(params: FaceParams, look: Look, size: int) -> Tensor:
    g, pal = geometry(params, look), palette(params, look)
    canvas = Canvas(len(params), size, look.edge_px, _CANVAS_EXTENT)
    draw_body(canvas, g, pal, look, params)
    draw_face(canvas, g, pal, look, params)
    draw_wrinkles(canvas, g, pal, look)
    draw_beard(canvas, g, pal, look)
    draw_mouth(canvas, g, pal, look)
    draw_nose(canvas, g, pal, look, params)
    draw_eyes(canvas, g, pal, look)
    draw_brows(canvas, g, pal, look, params)
    draw_glasses(canvas, g, pal, look, params)
    draw_hair_front(canvas, g, pal, look, params)
    if look.lit:
        light_photo(canvas, g, params)
    return canvas.rgba


def _pose_grid(params: FaceParams, size: int) -> Tensor:
    """(N, size, size, 2): each output pixel p goes to the face-plane point
    R(-angle) (p - centre) / scale (what F.affine_grid does, in fewer passes)."""
    cos, sin = col(params.angle.cos() / params.scale), col(params.angle.sin() / params.scale)
    pixels = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    px = pixels.reshape(1, 1, -1) - col(params.centre[:, 0])  # (N, 1, S)
    py = pixels.reshape(1, -1, 1) - col(params.centre[:, 1])  # (N, S, 1)
    return torch.stack([px * cos + py * sin, py * cos - px * sin], dim=-1)


def _backdrop(params: FaceParams, look: Look, size: int) -> Tensor:
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
