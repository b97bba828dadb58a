"""The features inside a synthetic face: eyes, brows, nose, mouth, beard, wrinkles and
glasses, as each style's `Look` says. Symmetric features are evaluated once on |x| (the
left eye is the mirror image of the right), in a region that bounds the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from facefilter.synth.head import face_sdf
from facefilter.synth.params import FaceParams
from facefilter.synth.shapes import (
    Canvas,
    Region,
    box,
    capsule,
    circle,
    col,
    ellipse,
    intersect,
    union,
)
from facefilter.synth.styles import Geometry, Look, NoseKind, Palette

_WHITE = torch.tensor([[1.0, 1.0, 1.0]])
_DARK = torch.tensor([[0.08, 0.06, 0.06]])
_MOUTH = torch.tensor([[0.36, 0.08, 0.1]])
_TEETH = torch.tensor([[0.96, 0.94, 0.9]])
_BLUSH = torch.tensor([[1.0, 0.72, 0.7]])


def _top(value: Tensor) -> float:
    return float(value.max())


def _segment(
    px: Tensor, py: Tensor, bx: Tensor | float, by: Tensor | float, radius: float
) -> Tensor:
    """Distance to the segment from the origin to (bx, by), minus `radius`."""
    along = ((px * bx + py * by) / (bx * bx + by * by)).clamp_(0.0, 1.0)
    return circle(px - bx * along, py - by * along, radius)


def draw_eyes(canvas: Canvas, g: Geometry, pal: Palette, look: Look) -> None:
    eyes = look.eyes
    reach = _top(g.eye_x + g.eye_rx) + 0.08
    height = _top(g.eye_ry) * 2.2 + 0.05 + (0.14 if eyes.socket else 0.0)  # room for the socket
    y = _top(g.eye_y)
    region = canvas.region(-reach, reach, y - height, y + height)
    qx = region.x.abs() - g.eye_x  # (N, 1, w) mirrored: + is towards the ear
    ux = region.x - torch.sign(region.x) * g.eye_x  # unmirrored: highlights fall the same way
    qy = region.y - g.eye_y  # (N, h, 1)
    rx, ry = g.eye_rx, g.eye_ry
    female = 1.0 - g.has("Male")
    eye = ellipse(qx, qy * (1.0 + eyes.almond * (qx / rx) ** 2) if eyes.almond else qy, rx, ry)
    if eyes.flat_top:
        eye = intersect(eye, -qy - ry * 0.82 + 0.25 * qx)
    if eyes.socket:
        _draw_socket(region, qx, qy, rx, ry, pal)
    white = region.fill(eye, torch.tensor([eyes.sclera]))
    iris_r = rx * eyes.iris_width[0] + ry * eyes.iris_width[1]
    iris = ellipse(qx + 0.08 * rx, qy + 0.06 * ry, iris_r, ry * eyes.iris_height)
    colour: Tensor = pal.eye
    if eyes.iris_gradient:  # iris darker at the top, like a drawn gradient
        shade = ((qy / ry) * 0.35 + 0.85).clamp(0.45, 1.2).unsqueeze(1)  # (N, 1, h, 1)
        colour = (pal.eye[:, :, None, None] * shade).clamp(0.0, 1.0)
    region.paint(region.cover(iris) * white, colour)
    if eyes.iris_gradient:
        region.paint(region.cover(iris.abs() - 0.006) * white, pal.eye * 0.35)
    pupil = ellipse(qx + 0.08 * rx, qy + 0.06 * ry, iris_r * 0.45, ry * eyes.iris_height * 0.5)
    region.paint(region.cover(pupil) * white, _DARK)
    glint = circle(ux + iris_r * 0.35, qy + ry * 0.35, iris_r * eyes.glint)
    region.paint(region.cover(glint) * white, _WHITE)
    if eyes.second_glint:
        small = circle(ux - iris_r * 0.35, qy - ry * 0.35, iris_r * eyes.second_glint)
        region.paint(region.cover(small) * white, _WHITE)
    _draw_lids(region, eye, qx, qy, g, pal, look, female)


def _draw_socket(region: Region, qx: Tensor, qy: Tensor, rx: Tensor, ry: Tensor,
                 pal: Palette) -> None:  # fmt: skip
    """The socket's shade, the cheeks' warmth, the lid crease."""
    socket = ellipse(qx + 0.01, qy + 0.008, rx * 1.45, ry * 2.6)
    region.fill(socket * 0.3, pal.skin_shadow, 0.4)
    cheek = ellipse(qx - rx * 0.4, qy - 0.13, rx * 1.3, 0.06)
    region.fill(cheek * 0.25, pal.skin * _BLUSH, 0.25)
    crease = capsule(qx, qy + ry * 1.9 + 2.0 * qx * qx, rx * 0.8, 0.006)
    region.fill(crease, pal.skin_shadow, 0.5)


def _draw_lids(region: Region, eye: Tensor, qx: Tensor, qy: Tensor, g: Geometry, pal: Palette,
               look: Look, female: Tensor) -> None:  # fmt: skip
    """The upper lash line (heavy in anime, with a wing), a thin lower lid."""
    thickness = look.eyes.lash_width * (1.0 + 0.5 * female)
    upper = intersect(eye.abs() - thickness / 2, qy + 0.15 * g.eye_ry)
    lashes = pal.line * 0.6 if look.inked else _DARK * 1.5
    region.fill(upper, lashes)
    if look.eyes.wing:
        wing = _segment(qx - g.eye_rx * 0.75, qy + g.eye_ry * 0.55, 0.05, -0.03, 0.0)
        region.fill(wing - 0.008 * female - 0.004, lashes)
        lower = intersect(eye.abs() - 0.004, 0.55 * g.eye_ry - qy)
        region.fill(lower, pal.line, 0.8)


def draw_brows(canvas: Canvas, g: Geometry, pal: Palette, look: Look, params: FaceParams) -> None:
    reach = _top(g.eye_x + g.eye_rx) + 0.06
    y = _top(g.brow_y)
    region = canvas.region(-reach, reach, y - 0.08, y + 0.06)
    qx = region.x.abs() - g.eye_x  # (N, 1, w)
    half = g.eye_rx * 1.25
    arch = 1.5 + 3.0 * col(params.brow_arch)
    qy = region.y - g.brow_y - arch * (qx - 0.25 * half) ** 2 + 0.08 * qx  # arched, peak outside
    base = look.brow_width
    taper = 1.0 - 0.5 * (qx / half).clamp(0.0, 1.0)  # thins towards the temple
    radius = base * col(params.brow_thickness) * (1.0 + 0.4 * g.has("Male")) * taper
    colour = pal.beard
    region.fill(capsule(qx, qy, half, radius), colour, look.brow_opacity)


def draw_nose(canvas: Canvas, g: Geometry, pal: Palette, look: Look, params: FaceParams) -> None:
    y = _top(g.nose_y)
    region = canvas.region(-0.12, 0.12, y - 0.2, y + 0.05)
    _NOSES[look.nose](region, region.x, region.y - g.nose_y, pal, params)


def _shaded_nose(region: Region, x: Tensor, dy: Tensor, pal: Palette, params: FaceParams) -> None:
    """A photo's nose is only light and shade: the bridge, the tip, the nostrils."""
    width = col(params.nose_width)
    side = -torch.sign(col(params.light[:, 0]))  # the bridge's shadow side
    bridge = capsule(dy + 0.08, x - side * 0.035 * width, 0.07, 0.012)
    region.fill(bridge * 0.4, pal.skin_shadow, 0.35)
    tip = ellipse(x, dy + 0.01, 0.055 * width, 0.03)
    region.fill(tip * 0.5, pal.skin_shadow, 0.45)
    nostrils = ellipse(x.abs() - 0.03 * width, dy, 0.015 * width, 0.008)
    region.fill(nostrils, pal.skin * 0.35, 0.8)
    region.fill(circle(x, dy + 0.03, 0.012), _WHITE, 0.2)


def _dash_nose(region: Region, x: Tensor, dy: Tensor, pal: Palette, params: FaceParams) -> None:
    region.fill(capsule(x - 0.006, dy, 0.008, 0.0045), pal.line, 0.8)


def _arc_nose(region: Region, x: Tensor, dy: Tensor, pal: Palette, params: FaceParams) -> None:
    ring = ellipse(x, dy + 0.02, 0.03 * col(params.nose_width), 0.022)
    region.fill(intersect(ring.abs() - 0.006, -dy - 0.01), pal.skin * 0.62)


_NOSES: dict[NoseKind, Callable[[Region, Tensor, Tensor, Palette, FaceParams], None]] = {
    "shaded": _shaded_nose,
    "dash": _dash_nose,
    "arc": _arc_nose,
}


def draw_mouth(canvas: Canvas, g: Geometry, pal: Palette, look: Look) -> None:
    """A closed mouth or, when Smiling, an open D-shaped smile with teeth."""
    mouth = look.mouth
    y = _top(g.mouth_y)
    reach = _top(g.mouth_w) + 0.04
    region = canvas.region(-reach, reach, y - 0.08, y + 0.11)
    x, dy = region.x, region.y - g.mouth_y
    across = x / g.mouth_w
    smile, closed = g.has("Smiling"), 1.0 - g.has("Smiling")
    lipstick = g.has("Wearing_Lipstick")
    top_edge = -0.012 - 0.03 * across * across  # corners turn up
    opened = intersect(ellipse(x, dy + 0.012, g.mouth_w, mouth.depth), top_edge - dy)
    lips_shown = 1.0 if mouth.lips_always else lipstick
    region.fill(opened - 0.028, pal.lips, smile * lips_shown)
    region.fill(opened, _MOUTH, smile)
    if mouth.teeth:
        teeth = intersect(opened, dy - top_edge - 0.024)
        region.fill(teeth, _TEETH, smile)
    if mouth.outlined:
        region.fill(opened.abs() - 0.006, pal.line, smile)
    fullness = 1.0 - 0.3 * (1.0 - g.has("Young"))  # lips thin with age
    lips_w = torch.clamp(g.mouth_w, min=0.075)  # anime draws a tiny mouth but visible lips
    upper = ellipse(x, dy + 0.012, lips_w * 0.95, 0.02 * fullness)
    lower = ellipse(x, dy - 0.015, lips_w * 0.85, 0.026 * fullness)
    lips = union(upper, lower)
    region.fill(lips, pal.lips, closed * lips_shown)
    line_colour = pal.line if mouth.seam_inked else pal.skin * 0.35
    seam = capsule(x, dy + 0.012 * across * across, g.mouth_w * mouth.seam_length, mouth.seam_width)
    region.fill(seam, line_colour, closed)


def draw_beard(canvas: Canvas, g: Geometry, pal: Palette, look: Look) -> None:
    """Goatee on the chin and mustache over the lip, in the beard colour."""
    y = _top(g.mouth_y)
    region = canvas.region(-0.3, 0.3, y - 0.1, _top(g.cy + g.height) + 0.02)
    x, dy = region.x, region.y - g.mouth_y
    chin_y = g.cy + g.height - 0.07
    goatee = union(ellipse(x, region.y - chin_y, 0.11, 0.09), ellipse(x, dy - 0.045, 0.035, 0.03))
    goatee = intersect(goatee, face_sdf(region, g) + 0.004)
    region.fill(goatee, pal.beard, g.has("Goatee"))
    mustache = ellipse(x, dy + 0.042 - 1.4 * x * x, g.mouth_w + 0.045, 0.036)
    region.fill(mustache, pal.beard, g.has("Mustache"))
    if look.outline > 0:
        region.stroke(goatee, look.outline * 0.7, pal.beard * 0.5, g.has("Goatee"))
        region.stroke(mustache, look.outline * 0.7, pal.beard * 0.5, g.has("Mustache"))


def draw_wrinkles(canvas: Canvas, g: Geometry, pal: Palette, look: Look) -> None:
    """Age: forehead lines, folds from nose to mouth, bags under the eyes."""
    region = canvas.region(-0.4, 0.4, _top(g.hairline_y) - 0.05, _top(g.mouth_y) + 0.05)
    old = 1.0 - g.has("Young")
    colour = pal.line if look.inked else pal.skin * 0.5
    strength, width = look.wrinkle_strength, look.wrinkle_width
    x, y = region.x, region.y
    for step in (0.055, 0.1):
        line = capsule(x, y - (g.hairline_y + step) - 0.25 * x * x, g.width * 0.45, width)
        region.fill(line, colour, old * strength)
    nose_x = 0.055
    fold = _segment(x.abs() - nose_x, y - g.nose_y + 0.01, g.mouth_w + 0.03 - nose_x,
                    g.mouth_y - g.nose_y + 0.02, width)  # fmt: skip
    region.fill(fold, colour, old * strength)
    bag = capsule(x.abs() - g.eye_x, y - g.eye_y - g.eye_ry * 1.6 - 2.5 * (x.abs() - g.eye_x) ** 2,
                  g.eye_rx * 0.6, width * 0.8)  # fmt: skip
    region.fill(bag, colour, old * strength * 0.8)


def draw_glasses(canvas: Canvas, g: Geometry, pal: Palette, look: Look, params: FaceParams) -> None:
    reach = _top(g.width) + 0.04
    half_y = g.eye_ry + 0.035 + look.lens_extra
    y = _top(g.eye_y)
    region = canvas.region(-reach, reach, y - _top(half_y) - 0.03, y + _top(half_y) + 0.03)
    x, dy = region.x, region.y - g.eye_y - 0.005
    half_x = g.eye_rx + 0.035
    corner = torch.lerp(
        torch.minimum(half_x, half_y) * 0.95,
        torch.full_like(half_x, 0.02),
        col(params.glasses_shape),
    )
    lens = box(x.abs() - g.eye_x, dy, half_x, half_y, corner)
    wearing = g.has("Eyeglasses")
    thickness = look.frame_width
    region.fill(lens, torch.tensor([[0.75, 0.85, 1.0]]), wearing * 0.15)
    frame_colour = pal.line * 0.7 if look.inked else _DARK
    region.fill(lens.abs() - thickness / 2, frame_colour, wearing)
    inner = g.eye_x - half_x
    bridge = capsule(x, dy + half_y * 0.35, inner + 0.01, thickness / 2)
    region.fill(bridge, frame_colour, wearing)
    arm_start = g.eye_x + half_x
    arm = capsule(
        x.abs() - (arm_start + g.width) / 2,
        dy + half_y * 0.45,
        (g.width - arm_start) / 2,
        thickness / 2,
    )
    region.fill(arm, frame_colour, wearing)
