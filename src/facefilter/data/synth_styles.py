"""What differs between styles: the look (edges, outlines, shading), the colours and
the feature proportions. Everything here is a pure function of the parameters.

The face outline, pose, hair shape and attribute set are shared by all styles (so a
row drawn in two styles is a true pair); a style only re-proportions the features the
way the genre draws them (anime eyes are bigger and sit lower) and repaints them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from facefilter.data.synth_params import HAIR_COLOURS, SYNTH_ATTRIBUTES, FaceParams
from facefilter.data.synth_shapes import col

STYLES: tuple[str, ...] = ("photo", "anime", "cartoon")


@dataclass(frozen=True)
class Look:
    edge_px: float  # anti-aliasing ramp in pixels: photo edges are soft, drawings crisp
    outline: float  # outline width in canonical units; 0 draws none
    cel: bool  # two-tone cel shadows (anime)
    lit: bool  # smooth Lambert light, skin texture and sensor noise (photo)
    eye: tuple[float, float, float]  # eye half-width, half-height, centre below the face centre
    brow_above_eye: float
    nose_y: float  # below the face centre
    mouth_y: float
    mouth_scale: float


LOOKS: dict[str, Look] = {
    "photo": Look(2.2, 0.0, False, True, (0.06, 0.026, 0.03), 0.075, 0.21, 0.34, 1.0),
    "anime": Look(1.0, 0.016, True, False, (0.085, 0.1, 0.075), 0.14, 0.24, 0.35, 0.55),
    "cartoon": Look(1.0, 0.0, False, False, (0.072, 0.062, 0.05), 0.11, 0.22, 0.34, 0.9),
}

FACE_CENTRE_Y = 0.04  # the face sits a little low on the canvas: hair above, shoulders below


@dataclass
class Geometry:
    """Per-face lengths for one style, as (N, 1, 1) columns ready to broadcast."""

    cy: Tensor
    width: Tensor
    height: Tensor
    chin: Tensor
    eye_x: Tensor
    eye_y: Tensor
    eye_rx: Tensor
    eye_ry: Tensor
    brow_y: Tensor
    nose_y: Tensor
    mouth_y: Tensor
    mouth_w: Tensor
    hair_volume: Tensor
    hairline_y: Tensor
    hair_bottom: Tensor
    flags: dict[str, Tensor]  # attribute name -> (N, 1, 1) in {0, 1}

    def has(self, name: str) -> Tensor:
        return self.flags[name]


def geometry(params: FaceParams, look: Look) -> Geometry:
    flags = {a: col(params.attr(a)) for a in SYNTH_ATTRIBUTES}
    male, smiling, young = flags["Male"], flags["Smiling"], flags["Young"]
    width = col(params.face_width) * (1.0 + 0.05 * male + 0.03 * (1.0 - young))  # men: broader
    height = col(params.face_height)
    size = col(params.eye_size) * (1.0 + 0.06 * young)
    eye_rx, eye_ry, eye_drop = look.eye
    level = torch.ones_like(height)  # (N, 1, 1), to broadcast style constants per face
    eye_y = (FACE_CENTRE_Y + eye_drop) * level
    length = 0.35 + 0.5 * col(params.hair_length)  # women's hair: chin to shoulders
    return Geometry(
        cy=FACE_CENTRE_Y * level,
        width=width,
        height=height,
        chin=col(params.chin) * (1.0 - 0.45 * male) * (0.55 + 0.45 * young),  # age: a heavier jaw
        eye_x=col(params.eye_spacing) + (look.eye[0] - 0.06) * 0.5,
        eye_y=eye_y,
        eye_rx=eye_rx * size,
        eye_ry=eye_ry * size * (1.0 - 0.2 * smiling),  # a smile narrows the eyes
        brow_y=eye_y - look.brow_above_eye,
        nose_y=FACE_CENTRE_Y + look.nose_y * col(params.nose_length) ** 0.3,
        mouth_y=(FACE_CENTRE_Y + look.mouth_y) * level,
        mouth_w=col(params.mouth_width) * look.mouth_scale * (1.0 + 0.25 * smiling),
        hair_volume=col(params.hair_volume) * (1.0 - 0.4 * male),
        hairline_y=FACE_CENTRE_Y - 0.28 - 0.04 * (1.0 - young) * male,
        hair_bottom=FACE_CENTRE_Y + male * 0.08 + (1.0 - male) * length,
        flags=flags,
    )


@dataclass
class Palette:
    """Per-face colours for one style, each (N, 3)."""

    skin: Tensor
    skin_shadow: Tensor
    hair: Tensor
    hair_shadow: Tensor
    hair_light: Tensor
    beard: Tensor
    eye: Tensor
    lips: Tensor
    hat: Tensor
    shirt: Tensor
    line: Tensor


def _rgb(*rows: tuple[float, float, float]) -> Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# Skin at tone 0, 0.5, 1; hair in HAIR_COLOURS order; eyes brown, hazel, green, blue, grey.
_SKIN = {
    "photo": _rgb((0.98, 0.87, 0.80), (0.84, 0.64, 0.52), (0.40, 0.26, 0.18)),
    "anime": _rgb((1.0, 0.95, 0.92), (0.99, 0.83, 0.72), (0.72, 0.52, 0.40)),
    "cartoon": _rgb((0.99, 0.89, 0.82), (0.93, 0.72, 0.57), (0.52, 0.34, 0.23)),
}
_HAIR = {
    "photo": _rgb((0.09, 0.07, 0.06), (0.86, 0.72, 0.45), (0.40, 0.24, 0.13), (0.72, 0.71, 0.70)),
    "anime": _rgb((0.16, 0.15, 0.30), (1.0, 0.86, 0.32), (0.66, 0.34, 0.14), (0.80, 0.82, 0.95)),
    "cartoon": _rgb((0.17, 0.14, 0.14), (0.98, 0.80, 0.36), (0.52, 0.30, 0.14), (0.74, 0.74, 0.78)),
}  # fmt: skip
_EYES = {
    "photo": _rgb((0.30, 0.17, 0.08), (0.45, 0.35, 0.16), (0.30, 0.45, 0.28), (0.30, 0.48, 0.70),
                  (0.48, 0.52, 0.56)),
    "anime": _rgb((0.62, 0.30, 0.10), (0.88, 0.55, 0.10), (0.15, 0.68, 0.35), (0.15, 0.45, 0.95),
                  (0.55, 0.30, 0.85)),
    "cartoon": _rgb((0.40, 0.24, 0.10), (0.55, 0.42, 0.15), (0.25, 0.55, 0.30), (0.25, 0.50, 0.85),
                    (0.45, 0.50, 0.58)),
}  # fmt: skip
_LIPSTICK = _rgb((0.86, 0.05, 0.12), (0.98, 0.32, 0.58), (0.72, 0.05, 0.36))


def _pick(table: Tensor, u: Tensor) -> Tensor:
    """Row of `table` chosen by u in [0, 1): (K, 3), (N,) -> (N, 3)."""
    index = (u * table.shape[0]).long().clamp(0, table.shape[0] - 1)
    return table[index]


def _skin(params: FaceParams, style: str) -> Tensor:
    pale = params.attr("Pale_Skin")
    tone = torch.where(pale > 0, 0.1 * params.skin_tone, 0.3 + 0.7 * params.skin_tone**1.5)
    stops = _SKIN[style]  # piecewise linear through the three stops
    low = torch.lerp(stops[0], stops[1], (2 * tone).clamp(max=1.0)[:, None])
    return torch.lerp(low, stops[2], (2 * tone - 1).clamp(min=0.0)[:, None])


def _beard(hair: Tensor, gray: Tensor) -> Tensor:
    """Beards and brows: darker and browner than the hair, except gray which stays light."""
    darker = torch.lerp(hair * 0.72, torch.tensor([0.42, 0.28, 0.17]), 0.3)
    return torch.lerp(darker, hair * 0.78, gray)


def palette(params: FaceParams, style: str) -> Palette:
    skin = _skin(params, style)
    onehot = torch.stack([params.attr(c) for c in HAIR_COLOURS], dim=1)  # (N, 4)
    hair = (onehot @ _HAIR[style]) * (0.85 + 0.3 * params.hair_shade)[:, None]
    hair = hair.clamp(0.0, 1.0)
    vivid = 0.25 if style == "photo" else 0.12  # photo clothes are muted, drawings bright
    span = 0.55 if style == "photo" else 0.8
    lips_natural = skin * torch.tensor([0.88, 0.62, 0.62])
    lipstick = _pick(_LIPSTICK, params.lipstick_hue)
    lips = torch.lerp(lips_natural, lipstick, params.attr("Wearing_Lipstick")[:, None])
    return Palette(
        skin=skin,
        skin_shadow=skin * torch.tensor([0.86, 0.74, 0.74]),
        hair=hair,
        hair_shadow=hair * 0.7,
        hair_light=(hair * 1.25 + 0.12).clamp(max=1.0),
        beard=_beard(hair, onehot[:, 3:]),
        eye=_pick(_EYES[style], params.eye_colour),
        lips=lips,
        hat=vivid + span * params.hat_colour,
        shirt=vivid + span * params.shirt_colour,
        line=torch.tensor([0.22, 0.12, 0.1]).expand_as(skin),
    )
