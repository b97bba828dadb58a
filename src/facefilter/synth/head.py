"""The big shapes of a synthetic face: shoulders, neck, ears, face, hair, bangs, hat,
and the light over them. Features inside the face live in `features`.

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


def _hair_cap(region: Region, g: Geometry, grow: float) -> Tensor:
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
    cap = _hair_cap(region, g, 1.0)
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
    """Photo hair: streaks that run down the hair (a noise in x only). (N, 3, 1, w)"""
    if not look.lit:
        return colour
    streaks = noise(params.noise_seed + 7, 1, region.x.shape[-1], 1)  # (N, 1, 1, w)
    streaks = F.avg_pool1d(streaks[:, 0], 3, 1, 1)[:, None]
    return colour[:, :, None, None] * (1.0 + 0.12 * streaks)


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
    cap = _hair_cap(region, g, 0.7)
    top = intersect(cap, region.y - hairline(region.x, g, params))
    not_bald = 1.0 - g.has("Bald")
    region.fill(top, _strands(pal.hair, region, params, look), not_bald)
    bangs = intersect(cap, region.y - fringe(region.x, g, params, look))
    region.fill(bangs, _strands(pal.hair, region, params, look), g.has("Bangs"))
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


def _draw_hat(region: Region, g: Geometry, pal: Palette, look: Look) -> None:
    brim_y = g.hairline_y + 0.06
    dome = ellipse(region.x, region.y - (g.cy - g.height * 0.45), g.width + g.hair_volume + 0.06,
                   g.height * 0.68 + g.hair_volume)  # fmt: skip
    dome = intersect(dome, region.y - brim_y)
    band = box(region.x, region.y - (brim_y - 0.035), g.width + g.hair_volume + 0.07, 0.05, 0.03)
    hat = g.has("Wearing_Hat")
    region.fill(dome, pal.hat, hat)
    _outline(region, dome, look, pal.line, hat)
    region.fill(band, pal.hat * 0.7, hat)
    _outline(region, band, look, pal.line, hat)


def light_photo(canvas: Canvas, g: Geometry, params: FaceParams) -> None:
    """Lambert light on a head-shaped ellipsoid, plus blotchy skin texture: multiplies
    the whole canvas (premultiplied colour scales like the light does)."""
    region = canvas.whole()
    nx = (region.x / (g.width + 0.12)).clamp(-1.0, 1.0)  # (N, 1, w)
    ny = ((region.y - g.cy) / (g.height + 0.2)).clamp(-1.0, 1.0)  # (N, h, 1)
    nz = (1.0 - nx * nx - ny * ny).clamp_(min=0.0).sqrt_()  # (N, h, w)
    light = torch.cat([params.light, torch.full_like(params.light[:, :1], 0.9)], dim=1)
    light = light / light.norm(dim=1, keepdim=True)  # (N, 3)
    lambert = (nx * col(light[:, 0]) + ny * col(light[:, 1])).add_(nz * col(light[:, 2]))
    shade = lambert.clamp_(min=0.0).mul_(0.72).add_(0.45)
    coarse = max(4, canvas.resolution // 12)
    blotches = noise(params.noise_seed + 3, coarse, coarse, 1)
    blotches = F.interpolate(blotches, size=canvas.resolution, mode="bilinear", align_corners=False)
    shade = shade.unsqueeze(1) * (1.0 + 0.035 * blotches)  # (N, 1, R, R)
    canvas.rgba[:, :3] *= shade
