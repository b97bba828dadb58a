"""The photo style's light and skin: what makes its faces look lit rather than painted.

The head gets a relief (a height field, towards the viewer) built from the same
geometry the shapes are drawn from and painted layer by layer like the colours: body,
hair behind, neck, face with its features (nose, brows, sockets, cheekbones, lips,
chin), hair in front, hat. One directional key light (per face: direction, height,
strength, warmth) lights it with Lambert shading and soft cast shadows found by
marching towards the light over the relief, so the nose, brows, chin, hair and hat
shadow what lies behind them; an ambient fill darkens the hollows. Skin gets specular
highlights, pores, blotches and redness. Everything multiplies (or, for highlights,
adds to) the premultiplied canvas, so coverage is untouched.

What varies slowly (the relief, light, blotches, redness) is evaluated at about half
the canvas resolution and upsampled; pores are added at full resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from facefilter.synth.head import (
    face_sdf,
    fringe,
    hair_back_sdf,
    hair_cap,
    hairline,
    hat_sdfs,
)
from facefilter.synth.params import FaceParams
from facefilter.synth.shapes import Canvas, Region, box, col, ellipse, enlarge, intersect, noise
from facefilter.synth.styles import Geometry, Look, Palette

_RELIEF_MIN = 48  # relief pixels across the canvas, at least: the nose needs a few
# Distances marched towards the light (canonical units; the face is ~0.67 wide): dense
# near the surface for contact shadows, sparse far out for the long ones of a low sun.
_SHADOW_STEPS = (0.02, 0.045, 0.08, 0.13, 0.2)
_PENUMBRA = 0.3  # clearance over distance at which a shadow fades out: soft, widening edges
_SHININESS = 16.0  # Blinn exponent: broad highlights, as on skin
_SKIN_SCATTER = torch.tensor([0.85, 1.08, 1.2])[None, :, None, None]  # exponents on R, G, B
_SKIN_TOLERANCE = 0.015  # squared RGB distance at which a pixel stops counting as skin


def light_photo(canvas: Canvas, g: Geometry, pal: Palette, look: Look, params: FaceParams) -> None:
    """Light, shadow, highlights and skin texture over the whole canvas (in place)."""
    skin = _skin_likeness(canvas, pal)  # (N, 1, R, R), read before the light changes colours
    plane = _relief_plane(canvas)
    height = relief(plane, g, look, params)  # (N, r, r)
    maps = _shade(height, plane.soft / 2.0, canvas.extent, params)  # (N, 3, r, r)
    key_colour = _key_colour(params)[:, :, None, None]  # (N, 3, 1, 1)
    fill_colour = 1.5 - 0.5 * key_colour  # the fill is the key's complement
    diffuse = maps[:, :1] * fill_colour + maps[:, 1:2] * key_colour  # (N, 3, r, r)
    # light scattered under the skin comes out redder: its shadows are warm, not grey
    on_skin = diffuse.clamp(min=1e-3).pow_(_SKIN_SCATTER).mul_(_skin_tint(plane, g, params))
    smooth = torch.cat([diffuse, on_skin, maps[:, 2:]], dim=1)  # (N, 7, r, r): all slow
    if smooth.shape[-1] != canvas.resolution:
        smooth = enlarge(smooth, canvas.resolution)
    pores = noise(_seeded(params.texture_seed, 1), canvas.resolution, canvas.resolution, 1)
    pores = pores.mul_(0.035 * col(params.skin_texture).unsqueeze(1)).mul_(skin).add_(1.0)
    rgb, alpha = canvas.rgba[:, :3], canvas.rgba[:, 3:]
    rgb.mul_(torch.lerp(smooth[:, :3], smooth[:, 3:6], skin).mul_(pores))
    rgb.add_(smooth[:, 6:] * skin * alpha * key_colour)


def _relief_plane(canvas: Canvas) -> Region:
    """A coarser grid over the canvas for the relief; `soft` is two of its pixels, so
    heights change smoothly across shape edges."""
    resolution = min(canvas.resolution, max(_RELIEF_MIN, canvas.resolution // 2))
    pixel = 2.0 * canvas.extent / resolution
    centres = (torch.arange(resolution, dtype=torch.float32) + 0.5) * pixel - canvas.extent
    return Region(x=centres.reshape(1, 1, -1), y=centres.reshape(1, -1, 1),
                  rgba=torch.empty(0), soft=2.0 * pixel)  # fmt: skip


def _dome(dx: Tensor, dy: Tensor, rx: Tensor | float, ry: Tensor | float) -> Tensor:
    """Height of a unit half-ellipsoid over the ellipse (rx, ry): 1 at the centre, 0 at
    the edge and beyond."""
    ux, uy = dx / rx, dy / ry
    return (1.0 - ux * ux - uy * uy).clamp_(min=0.0).sqrt_()


def _bell(d: Tensor, width: Tensor | float) -> Tensor:
    return torch.exp(-((d / width) ** 2))


def relief(plane: Region, g: Geometry, look: Look, params: FaceParams) -> Tensor:
    """Height above the backdrop (canonical units) of every point of `plane`, (N, h, w),
    painted back to front like the shapes, so what covers what agrees with the colours."""
    x, y = plane.x, plane.y
    n = g.width.shape[0]
    height = torch.zeros(n, y.shape[1], x.shape[2])

    def lay(sdf: Tensor, top: Tensor, opacity: Tensor | float = 1.0) -> None:
        height.lerp_(top.expand_as(height), plane.cover(sdf) * opacity)

    lay(ellipse(x, y - 1.25, 1.0, 0.58), 0.04 + 0.12 * _dome(x, y - 1.25, 1.0, 0.58))
    head_dy = y - g.cy + 0.02
    lay(hair_back_sdf(plane, g), 0.12 + 0.14 * _dome(x, head_dy, g.width + 0.2, g.height + 0.3))
    neck_half = 0.12 + 0.03 * g.has("Male")
    neck = box(x, y - (g.cy + g.height + 0.15), neck_half, 0.32, 0.03)
    lay(neck, 0.1 + 0.12 * _dome(x, torch.zeros_like(y), neck_half, 1.0))
    lay(ellipse(x.abs() - g.width * 0.97, y - (g.cy + 0.03), 0.055, 0.095), 0.2 + 0.0 * y)
    face = face_sdf(plane, g)
    rho = face / g.width + 1.0  # 0 at the centre, 1 on the outline
    dome = (1.0 - rho * rho).clamp_(min=0.0).sqrt_()
    lay(face, 0.2 + 0.32 * dome + _features(plane, g, params))
    # hair over the skull (and the hat) follow the cap's dome, a little proud of the skin
    cap = hair_cap(plane, g, 0.7)
    volume = g.hair_volume
    cap_dome = _dome(x, head_dy, g.width + 0.7 * volume + 0.012, g.height + 0.91 * volume)
    hair_top = 0.22 + 0.32 * cap_dome + volume * 0.4
    lay(intersect(cap, y - hairline(x, g, params)), hair_top, 1.0 - g.has("Bald"))
    lay(intersect(cap, y - fringe(x, g, params, look)), hair_top + 0.01, g.has("Bangs"))
    hat_dome, band = hat_sdfs(plane, g)
    hat = g.has("Wearing_Hat")
    lay(hat_dome, hair_top + 0.05, hat)
    lay(band, hair_top + 0.09, hat)  # the brim stands out: a hard shadow on the brow
    return height


def _features(plane: Region, g: Geometry, params: FaceParams) -> Tensor:
    """The face's relief over its dome: nose, brow ridge, eye sockets and eyeballs,
    cheekbones, lips, chin. Bells in x times bells in y, (N, h, w)."""
    x, y = plane.x, plane.y
    ax = x.abs()
    nose_width = col(params.nose_width)
    along = ((y - g.eye_y) / (g.nose_y - g.eye_y)).clamp(0.0, 1.0)  # eyes 0 .. nose tip 1
    profile = (0.25 + 0.75 * along) * _bell((y - g.eye_y).clamp(max=0.0), 0.04)
    profile = profile * _bell((y - g.nose_y).clamp(min=0.0), 0.022)
    nose = 0.085 * profile * _bell(x, (0.022 + 0.014 * along) * nose_width)
    wings = 0.03 * _bell(ax - 0.038 * nose_width, 0.022) * _bell(y - g.nose_y + 0.004, 0.022)
    brow = 0.03 * _bell(ax - g.eye_x, 0.09) * _bell(y - g.brow_y - 0.012, 0.035)
    socket = -0.05 * _bell(ax - g.eye_x, g.eye_rx * 1.3) * _bell(y - g.eye_y + 0.005, 0.045)
    eyeball = 0.025 * _bell(ax - g.eye_x, g.eye_rx) * _bell(y - g.eye_y, g.eye_ry * 1.6)
    lid = 0.02 * _bell(ax - g.eye_x, g.eye_rx) * _bell(y - g.eye_y + g.eye_ry, g.eye_ry * 0.7)
    cheek = 0.035 * _bell(ax - g.eye_x - 0.03, 0.08) * _bell(y - g.eye_y - 0.13, 0.07)
    lips = 0.02 * _bell(x, g.mouth_w * 1.1) * _bell(y - g.mouth_y, 0.03)
    chin = 0.035 * _bell(x, 0.09) * _bell(y - (g.cy + g.height - 0.07), 0.05)
    return nose + wings + brow + socket + eyeball + lid + cheek + lips + chin


def _light_vector(params: FaceParams) -> Tensor:
    """(N, 3) unit vector towards the key light: x, y in the face plane, z to the viewer."""
    light = torch.cat([params.light, params.light_height[:, None]], dim=1)
    return light / light.norm(dim=1, keepdim=True)


def _key_colour(params: FaceParams) -> Tensor:
    """(N, 3): warm (tungsten, sun) to cool (shade, window) key light."""
    return 1.0 + params.light_warmth[:, None] * torch.tensor([0.09, 0.0, -0.1])


def _shade(height: Tensor, pixel: float, extent: float, params: FaceParams) -> Tensor:
    """(N, 3, h, w): ambient light, key light and highlight strength at every point.
    Normals (-dh/dx, -dh/dy, 1) / length come from central differences of the relief."""
    padded = F.pad(height.unsqueeze(1), (1, 1, 1, 1), mode="replicate")[:, 0]
    slope_x = (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]) * (0.5 / pixel)
    slope_y = (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]) * (0.5 / pixel)
    flat = (slope_x * slope_x + slope_y * slope_y).add_(1.0).rsqrt_()  # the normal's z

    def towards(vector: Tensor) -> Tensor:  # cosine between the normal and (N, 3) vectors
        x, y, z = (col(vector[:, i]) for i in range(3))
        return (z - slope_x * x - slope_y * y).mul_(flat)

    light = _light_vector(params)
    visible = _cast_shadow(height, extent, light)
    key = col(params.light_key)
    lit = towards(light).add_(0.15).div_(1.15).clamp_(min=0.0)  # light wraps past the terminator
    direct = lit.mul_(visible).mul_(0.85 * key)
    ambient = _occlusion(height).mul_(0.7 + 0.3 * flat).mul_(0.95 - 0.5 * key)  # sky from the front
    halfway = light + torch.tensor([0.0, 0.0, 1.0])
    halfway = halfway / halfway.norm(dim=1, keepdim=True)
    gloss = towards(halfway).clamp_(min=0.0).pow_(_SHININESS)
    highlight = gloss.mul_(visible).mul_(col(params.specular) * key)
    return torch.stack([ambient, direct, highlight], dim=1)


def _cast_shadow(height: Tensor, extent: float, light: Tensor) -> Tensor:
    """(N, h, w) in [0, 1]: how much of the key light reaches each point. March towards
    the light; where the relief rises above the ray, the point is in shadow, softly
    (clearance over distance, so the penumbra widens away from the occluder)."""
    _, rows, cols = height.shape
    planar = light[:, :2].norm(dim=1).clamp(min=1e-3)
    direction = light[:, :2] / planar[:, None]  # (N, 2) in the plane, towards the light
    rise = col(light[:, 2] / planar)  # height the ray gains per unit travelled
    ys = (torch.arange(rows, dtype=torch.float32) + 0.5) * (2.0 / rows) - 1.0
    xs = (torch.arange(cols, dtype=torch.float32) + 0.5) * (2.0 / cols) - 1.0
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2)
    source = height.unsqueeze(1)
    visible = torch.ones_like(height)
    for step in _SHADOW_STEPS:
        grid = base + (direction * (step / extent))[:, None, None, :]
        ahead = F.grid_sample(source, grid, mode="bilinear", padding_mode="border",
                              align_corners=False)[:, 0]  # fmt: skip
        clearance = (height - ahead).add_(rise * step)  # above the relief there: lit
        visible = torch.minimum(visible, clearance.mul_(1.0 / (_PENUMBRA * step)).add_(0.5))
    return visible.clamp_(0.0, 1.0)


def _occlusion(height: Tensor) -> Tensor:
    """(N, h, w) ambient occlusion: hollows (sockets, under the chin, beside the nose,
    where hair meets skin) see less of the sky. Depth below the mean height around
    (over about a tenth of the canvas, by area averaging and bilinear upsampling)."""
    size = height.shape[-1]
    mean = F.interpolate(height.unsqueeze(1), size=max(4, size // 10), mode="area")
    mean = enlarge(mean, size)[:, 0]
    return (mean - height).mul_(-6.0).clamp_(-0.45, 0.0).add_(1.0)


def _skin_likeness(canvas: Canvas, pal: Palette) -> Tensor:
    """(N, 1, R, R) in [0, 1]: how close each pixel is to the face's skin colour (times
    its coverage); hair, brows, eyes, lips, glasses and hats fall away."""
    rgb, alpha = canvas.rgba[:, :3], canvas.rgba[:, 3:]
    distance = (rgb - alpha * pal.skin[:, :, None, None]).square_().sum(1, keepdim=True)
    return torch.exp_(distance.mul_(-1.0 / _SKIN_TOLERANCE)).mul_(alpha)


def _seeded(seed: Tensor, salt: int) -> Tensor:
    """Another noise offset from one seed, so the textures of a face are independent."""
    return (seed * 40503 + salt * 7919) % 2**24


def _skin_tint(plane: Region, g: Geometry, params: FaceParams) -> Tensor:
    """(N, 3, r, r) gain of the skin's colour, slow in space: blotches (an eighth of the
    canvas across), redness on the cheeks, on the nose and in some blotches. Pores, the
    fast part, are added at full resolution."""
    size = plane.x.shape[-1]
    cells = max(4, size // 4)
    blotches = noise(_seeded(params.texture_seed, 2), cells, cells, 2)
    blotches = enlarge(blotches, size)
    grain = blotches[:, :1].mul(0.035 * col(params.skin_texture).unsqueeze(1)).add_(1.0)
    x, y = plane.x, plane.y
    cheeks = _bell(x.abs() - g.eye_x - 0.02, 0.09) * _bell(y - g.eye_y - 0.14, 0.07)
    nose = _bell(x, 0.05) * _bell(y - g.nose_y + 0.01, 0.04)
    flush = (0.7 * cheeks + 0.5 * nose).unsqueeze(1) + 0.4 * blotches[:, 1:].clamp(min=0.0)
    red = col(params.skin_redness).unsqueeze(1) * flush  # (N, 1, r, r)
    tint = torch.tensor([0.1, -0.05, -0.04])[None, :, None, None]
    return grain * (1.0 + red * tint)
