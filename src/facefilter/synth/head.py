"""The big shapes of a synthetic face: shoulders, neck, ears, face, hair, bangs, hat.
Features inside the face live in `features`, the photo style's light in `light`.

All functions draw one layer group onto a `Canvas` for the whole batch; shapes that
only some faces have (bangs, a hat) are drawn for all and gated by the attribute.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from facefilter.synth.params import FaceParams
from facefilter.synth.shapes import (
    Canvas,
    Region,
    box,
    col,
    ellipse,
    intersect,
    noise,
    union,
)
from facefilter.synth.styles import Geometry, Look, Palette


def _outline(
    region: Region, sdf: Tensor, look: Look, colour: Tensor, opacity: Tensor | None = None
) -> None:
    if look.outline > 0:
        region.stroke(sdf, look.outline, colour, opacity)


def face_sdf(region: Region, g: Geometry) -> Tensor:
    """An egg: an ellipse whose half-width shrinks towards the chin. (N, h, w)"""
    dy = region.y - g.cy  # (N, h, 1)
    below = (dy / g.height).clamp(0.0, 1.0)
    half_width = g.width * (1.0 - 0.5 * g.chin * below * below)  # (N, h, 1)
    ux, uy = region.x / half_width, dy / g.height
    return (ux * ux + uy * uy).sqrt_().sub_(1.0).mul_(g.width)


def hair_cap(region: Region, g: Geometry, grow: float) -> Tensor:
    """The skull plus `grow` times the hair volume: the outline of hair on top of the head."""
    dy = region.y - g.cy + 0.02
    return ellipse(
        region.x, dy, g.width + grow * g.hair_volume + 0.012, g.height + 1.3 * grow * g.hair_volume
    )


def hairline(x: Tensor, g: Geometry, params: FaceParams) -> Tensor:
    """y of the hairline: level on the forehead, down to the ears at the temples. (N, 1, w)"""
    across = x / g.width
    return g.hairline_y + 0.3 * across * across + 0.03 * col(params.hair_part) * across


def fringe(x: Tensor, g: Geometry, params: FaceParams, look: Look) -> Tensor:
    """y of the lower edge of the bangs, with the style's strand tips. (N, 1, w)"""
    across = x / g.width
    base = g.brow_y - 0.035 + 0.06 * across * across + 0.03 * col(params.hair_part) * across
    tips = look.fringe
    phase = (x * 5.0 + col(params.hair_part)) * tips.frequency
    triangle = tips.pointed  # strands that end in points
    wave = 1.0 - 2.0 * (phase - phase.floor() - 0.5).abs() if triangle else torch.sin(phase)
    return base + tips.depth * wave - tips.lift


def draw_body(canvas: Canvas, g: Geometry, pal: Palette, look: Look, params: FaceParams) -> None:
    """Shirt, the hair that falls behind the head, the neck (back to front)."""
    if look.body:
        lower = canvas.region(-1.0, 1.0, 0.3, 1.0)
        shirt = ellipse(lower.x, lower.y - 1.25, 1.0, 0.58)
        neckline = ellipse(lower.x, lower.y - (g.cy + g.height + 0.1), 0.17, 0.11)
        shirt = intersect(shirt, -neckline)
        lower.fill(shirt, pal.shirt)
        _outline(lower, shirt, look, pal.line)
    region = canvas.region(-0.75, 0.75, -0.85, 1.0)
    _draw_hair_back(region, g, pal, look, params)
    if look.body:
        neck_half = 0.12 + 0.03 * g.has("Male")
        neck = box(region.x, region.y - (g.cy + g.height + 0.15), neck_half, 0.32, 0.03)
        region.fill(neck, pal.skin_shadow if look.cel else pal.skin * 0.9)
        _outline(region, neck, look, pal.line)


def hair_back_sdf(region: Region, g: Geometry, wave: Tensor | float = 0.0) -> Tensor:
    """The hair behind the head: the cap over the skull and the fall down the sides to
    `hair_bottom` (men's ends at the ears); a bald head keeps a horseshoe low on the
    skull. `wave`: the fall's wavy edge. (N, h, w), negative inside"""
    cap = hair_cap(region, g, 1.0)
    half = g.width + g.hair_volume + 0.03
    top = g.cy
    fall = box(
        region.x, region.y - (top + g.hair_bottom) / 2, half, (g.hair_bottom - top) / 2, 0.09
    )
    hair = intersect(union(cap, fall + wave), region.y - g.hair_bottom)
    bald = g.has("Bald")
    return intersect(hair, bald * (g.cy - 0.12 - region.y) - (1.0 - bald))


def _draw_hair_back(
    region: Region, g: Geometry, pal: Palette, look: Look, params: FaceParams
) -> None:
    wave = 0.018 * col(params.hair_wave) * torch.sin(region.y * 30.0)  # (N, h, 1)
    hair = hair_back_sdf(region, g, wave)
    colour = pal.hair_shadow if look.cel else pal.hair * 0.8
    region.fill(hair, _strands(colour, region, params, look))
    _outline(region, hair, look, pal.hair * 0.4)


def _strands(colour: Tensor, region: Region, params: FaceParams, look: Look) -> Tensor:
    """Photo hair: coarse streaks that run down the hair (a noise in x only), locks and
    fine strands that fan out from the crown (a noise along the angle around it, about
    one strand per canvas pixel), bent by the hair's wave. (N, 3, h, w)"""
    if not look.lit:
        return colour
    width = region.x.shape[-1]
    streaks = noise(params.noise_seed + 7, 1, width, 1)  # (N, 1, 1, w)
    streaks = F.avg_pool1d(streaks[:, 0], 3, 1, 1)[:, None]
    dx = region.x - 0.1 * col(params.hair_part)  # (N, 1, w) from the crown, over the parting
    dy = region.y + 0.5  # (1, h, 1)
    wave = 0.06 * col(params.hair_wave) * torch.sin(region.y * 28.0)  # (N, h, 1)
    angle = torch.atan2(dx, dy).add_(wave).div_(torch.pi)  # (N, h, w) in [-1, 1], 0 is down
    grid = torch.stack([angle, torch.zeros_like(angle)], dim=-1)
    fibres = min(256, max(32, width))  # strands around the full turn
    row = noise(params.texture_seed + 11, 1, fibres, 2)  # (N, 2, 1, L): fine, and locks
    locks = F.interpolate(row[:, 1:], size=(1, max(8, fibres // 8)), mode="area")
    locks = F.interpolate(locks, size=(1, fibres), mode="bilinear", align_corners=False)
    fibre = F.grid_sample(0.22 * row[:, :1] + 0.15 * locks, grid, mode="bilinear",
                          align_corners=False)  # fmt: skip
    texture = (1.0 + 0.12 * streaks) * (1.0 + fibre)
    return colour[:, :, None, None] * texture


def draw_face(canvas: Canvas, g: Geometry, pal: Palette, look: Look, params: FaceParams) -> None:
    """Ears, the face, and the shadows that sit on the skin (cel, under the hair)."""
    region = canvas.region(-0.62, 0.62, -0.6, 0.66)
    ear = ellipse(region.x.abs() - g.width * 0.97, region.y - (g.cy + 0.03), 0.055, 0.095)
    region.fill(ear, pal.skin)
    inner = ellipse(region.x.abs() - g.width * 0.99, region.y - (g.cy + 0.035), 0.026, 0.055)
    region.fill(inner, pal.skin_shadow, look.inner_ear)
    _outline(region, ear, look, pal.line)
    face = face_sdf(region, g)
    coverage = region.fill(face, pal.skin)
    if look.cel:  # the side away from the light, a hard-edged crescent
        light = params.light / params.light.norm(dim=1, keepdim=True)
        facing = (
            region.x * col(light[:, 0]) + (region.y - g.cy) * col(light[:, 1]) * g.width / g.height
        )
        region.paint(coverage * region.cover(-facing - 0.22), pal.skin_shadow)
    if look.cel or look.lit:  # the hair casts a band of shadow onto the forehead
        edge = torch.where(
            g.has("Bangs") > 0, fringe(region.x, g, params, look), hairline(region.x, g, params)
        )
        band = region.y - edge - (0.045 if look.cel else 0.06)  # (N, h, w)
        soft = 1.0 if look.cel else 0.25  # photo: a soft occlusion gradient
        covered = 1.0 - g.has("Bald") * (1.0 - g.has("Bangs"))
        region.paint(
            coverage * region.cover(band * soft) * covered * (1.0 if look.cel else 0.5),
            pal.skin_shadow,
        )
    _outline(region, face, look, pal.line)


def draw_hair_front(
    canvas: Canvas, g: Geometry, pal: Palette, look: Look, params: FaceParams
) -> None:
    """Hair over the forehead and temples, the bangs, the hat."""
    region = canvas.region(-0.75, 0.75, -0.8, 0.3)
    cap = hair_cap(region, g, 0.7)
    top = intersect(cap, region.y - hairline(region.x, g, params))
    not_bald = 1.0 - g.has("Bald")
    hair = _strands(pal.hair, region, params, look)
    region.fill(top, hair, not_bald)
    bangs = intersect(cap, region.y - fringe(region.x, g, params, look))
    region.fill(bangs, hair, g.has("Bangs"))
    if look.cel:  # anime: the shine band across the crown
        ring = (
            ellipse(region.x, region.y - g.cy + 0.05, g.width * 0.9, g.height * 0.72).abs() - 0.018
        )
        shine = region.cover(ring) * region.cover(union(top, bangs) + 0.01)
        shine = shine * region.cover(region.x.abs() - g.width * 0.55) * not_bald
        region.paint(shine, pal.hair_light)
    lines = pal.hair * 0.4
    _outline(region, top, look, lines, not_bald)
    _outline(region, bangs, look, lines, g.has("Bangs"))
    _draw_hat(region, g, pal, look)


def hat_sdfs(region: Region, g: Geometry) -> tuple[Tensor, Tensor]:
    """The hat's dome and its band (the brim), each (N, h, w)."""
    brim_y = g.hairline_y + 0.06
    dome = ellipse(region.x, region.y - (g.cy - g.height * 0.45), g.width + g.hair_volume + 0.06,
                   g.height * 0.68 + g.hair_volume)  # fmt: skip
    dome = intersect(dome, region.y - brim_y)
    band = box(region.x, region.y - (brim_y - 0.035), g.width + g.hair_volume + 0.07, 0.05, 0.03)
    return dome, band


def _draw_hat(region: Region, g: Geometry, pal: Palette, look: Look) -> None:
    dome, band = hat_sdfs(region, g)
    hat = g.has("Wearing_Hat")
    region.fill(dome, pal.hat, hat)
    _outline(region, dome, look, pal.line, hat)
    region.fill(band, pal.hat * 0.7, hat)
    _outline(region, band, look, pal.line, hat)
