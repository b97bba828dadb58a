"""What differs between styles: the look (edges, outlines, shading), the colours and
the feature proportions. Each style is one `Look` record; the drawing code reads its
fields and never the style's name, so a new style is a new record. Everything here is
a pure function of the parameters.

The face outline, pose, hair shape and attribute set are shared by all styles (so a
row drawn in two styles is a true pair); a style only re-proportions the features the
way the genre draws them (anime eyes are bigger and sit lower) and repaints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from facefilter.synth.params import CLUTTER_SHAPES, HAIR_COLOURS, SYNTH_ATTRIBUTES, FaceParams
from facefilter.synth.shapes import col

STYLES: tuple[str, ...] = ("photo", "anime", "cartoon")

RGB = tuple[float, float, float]
NoseKind = Literal["shaded", "dash", "arc"]  # photo: shaded relief; anime: a dash; cartoon: an arc


@dataclass(frozen=True)
class Colours:
    skin: tuple[RGB, RGB, RGB]  # at skin tone 0, 0.5 and 1
    hair: tuple[RGB, RGB, RGB, RGB]  # in HAIR_COLOURS order
    eyes: tuple[RGB, RGB, RGB, RGB, RGB]  # brown, hazel, green, blue, grey
    clothes: tuple[float, float]  # base + span * uniform: photo clothes muted, drawings bright


@dataclass(frozen=True)
class Backdrop:
    """Behind the head: a blurred gradient with objects, or one flat colour."""

    top: tuple[float, float]  # base + span * uniform, per channel (the flat colour when flat)
    bottom: tuple[float, float]
    flat: bool  # one colour, nothing drawn (Cartoon Set backgrounds)
    divisor: int  # drawn at size // divisor and upsampled: the lower, the blurrier
    min_pixels: int  # but never below this
    edge_px: float
    objects: int  # clutter shapes drawn, at most CLUTTER_SHAPES
    object_colour: tuple[float, float, float]  # base + span * c + grey * mean(c)
    object_opacity: float


@dataclass(frozen=True)
class Eyes:
    size: RGB  # half-width, half-height, centre below the face centre
    almond: float  # how much the eye narrows towards its corners; 0 keeps an ellipse
    flat_top: bool  # the upper lid cut straight across, as anime draws it
    socket: bool  # shade in the socket, warmth on the cheek, the lid crease (photo)
    sclera: RGB
    iris_width: tuple[float, float]  # iris half-width: these parts of the eye's half-width, height
    iris_height: float  # iris half-height, part of the eye's half-height
    iris_gradient: bool  # iris darker at the top with a dark rim, like a drawn gradient
    glint: float  # highlight radius, part of the iris half-width
    second_glint: float  # a small opposite highlight; 0 draws none
    lash_width: float  # the upper lash line (women's is half as heavy again)
    wing: bool  # a winged lash line and a drawn lower lid (anime)


@dataclass(frozen=True)
class Mouth:
    y: float  # below the face centre
    scale: float  # width relative to the face's mouth_width
    depth: float  # half-height of an open smile
    lips_always: bool  # lips in lip colour without lipstick too (photo); drawings only with it
    teeth: bool
    outlined: bool  # a line around the open smile (anime)
    seam_inked: bool  # the line between closed lips in the line colour, not in dark skin
    seam_width: float
    seam_length: float  # part of the mouth's half-width


@dataclass(frozen=True)
class Fringe:
    """The lower edge of the bangs: base + depth * wave(phase * frequency) - lift."""

    pointed: bool  # a triangle wave, strands that end in points (anime); else a sine
    depth: float
    frequency: float
    lift: float


@dataclass(frozen=True)
class Look:
    """Everything one style draws differently; the drawing functions read only this."""

    edge_px: float  # anti-aliasing ramp in pixels: photo edges are soft, drawings crisp
    outline: float  # outline width in canonical units; 0 draws none
    cel: bool  # two-tone cel shadows (anime)
    lit: bool  # smooth Lambert light, skin texture and sensor noise (photo)
    body: bool  # shoulders and neck; Cartoon Set draws heads only
    inked: bool  # lashes, frames and wrinkles in the line colour (anime), not black or dark skin
    colours: Colours
    backdrop: Backdrop
    eyes: Eyes
    brow_above_eye: float
    brow_width: float  # stroke radius of the brows
    brow_opacity: float
    nose: NoseKind
    nose_y: float  # below the face centre
    mouth: Mouth
    fringe: Fringe
    inner_ear: float  # opacity of the shadow inside the ear
    wrinkle_strength: float
    wrinkle_width: float
    frame_width: float  # glasses
    lens_extra: float  # extra lens half-height (photo glasses are bigger)


_PHOTO = Look(
    edge_px=2.2, outline=0.0, cel=False, lit=True, body=True, inked=False,
    colours=Colours(
        skin=((0.98, 0.87, 0.80), (0.84, 0.64, 0.52), (0.40, 0.26, 0.18)),
        hair=((0.09, 0.07, 0.06), (0.86, 0.72, 0.45), (0.40, 0.24, 0.13), (0.72, 0.71, 0.70)),
        eyes=((0.30, 0.17, 0.08), (0.45, 0.35, 0.16), (0.30, 0.45, 0.28), (0.30, 0.48, 0.70),
              (0.48, 0.52, 0.56)),
        clothes=(0.25, 0.55),
    ),
    backdrop=Backdrop(top=(0.1, 0.65), bottom=(0.1, 0.55), flat=False, divisor=4, min_pixels=8,
                      edge_px=3.0, objects=CLUTTER_SHAPES, object_colour=(0.1, 0.35, 0.35),
                      object_opacity=0.9),
    eyes=Eyes(size=(0.06, 0.026, 0.03), almond=0.5, flat_top=False, socket=True,
              sclera=(0.93, 0.91, 0.89), iris_width=(0.0, 1.1), iris_height=1.1,
              iris_gradient=False, glint=0.18, second_glint=0.0, lash_width=0.009, wing=False),
    brow_above_eye=0.075, brow_width=0.011, brow_opacity=0.85,
    nose="shaded", nose_y=0.21,
    mouth=Mouth(y=0.34, scale=1.0, depth=0.06, lips_always=True, teeth=True, outlined=False,
                seam_inked=False, seam_width=0.004, seam_length=0.9),
    fringe=Fringe(pointed=False, depth=0.008, frequency=13.0, lift=0.0),
    inner_ear=0.6, wrinkle_strength=0.85, wrinkle_width=0.009, frame_width=0.013, lens_extra=0.02,
)  # fmt: skip

_ANIME = Look(
    edge_px=1.0, outline=0.016, cel=True, lit=False, body=True, inked=True,
    colours=Colours(
        skin=((1.0, 0.95, 0.92), (0.99, 0.83, 0.72), (0.72, 0.52, 0.40)),
        hair=((0.16, 0.15, 0.30), (1.0, 0.86, 0.32), (0.66, 0.34, 0.14), (0.80, 0.82, 0.95)),
        eyes=((0.62, 0.30, 0.10), (0.88, 0.55, 0.10), (0.15, 0.68, 0.35), (0.15, 0.45, 0.95),
              (0.55, 0.30, 0.85)),
        clothes=(0.12, 0.8),
    ),
    backdrop=Backdrop(top=(0.7, 0.3), bottom=(0.55, 0.4), flat=False, divisor=2, min_pixels=16,
                      edge_px=1.0, objects=4, object_colour=(0.75, 0.25, 0.0),
                      object_opacity=0.55),
    eyes=Eyes(size=(0.085, 0.1, 0.075), almond=0.0, flat_top=True, socket=False,
              sclera=(1.0, 1.0, 1.0), iris_width=(0.74, 0.0), iris_height=0.9,
              iris_gradient=True, glint=0.28, second_glint=0.12, lash_width=0.024, wing=True),
    brow_above_eye=0.14, brow_width=0.0065, brow_opacity=1.0,
    nose="dash", nose_y=0.24,
    mouth=Mouth(y=0.35, scale=0.55, depth=0.055, lips_always=False, teeth=False, outlined=True,
                seam_inked=True, seam_width=0.005, seam_length=0.6),
    fringe=Fringe(pointed=True, depth=0.055, frequency=1.0, lift=0.03),
    inner_ear=0.0, wrinkle_strength=0.7, wrinkle_width=0.006, frame_width=0.014, lens_extra=0.0,
)  # fmt: skip

_CARTOON = Look(
    edge_px=1.0, outline=0.0, cel=False, lit=False, body=False, inked=False,
    colours=Colours(
        skin=((0.99, 0.89, 0.82), (0.93, 0.72, 0.57), (0.52, 0.34, 0.23)),
        hair=((0.17, 0.14, 0.14), (0.98, 0.80, 0.36), (0.52, 0.30, 0.14), (0.74, 0.74, 0.78)),
        eyes=((0.40, 0.24, 0.10), (0.55, 0.42, 0.15), (0.25, 0.55, 0.30), (0.25, 0.50, 0.85),
              (0.45, 0.50, 0.58)),
        clothes=(0.12, 0.8),
    ),
    backdrop=Backdrop(top=(0.62, 0.33), bottom=(0.62, 0.33), flat=True, divisor=1, min_pixels=1,
                      edge_px=1.0, objects=0, object_colour=(0.0, 0.0, 0.0), object_opacity=0.0),
    eyes=Eyes(size=(0.072, 0.062, 0.05), almond=0.0, flat_top=False, socket=False,
              sclera=(1.0, 1.0, 1.0), iris_width=(0.62, 0.0), iris_height=0.8,
              iris_gradient=False, glint=0.18, second_glint=0.0, lash_width=0.012, wing=False),
    brow_above_eye=0.11, brow_width=0.014, brow_opacity=1.0,
    nose="arc", nose_y=0.22,
    mouth=Mouth(y=0.34, scale=0.9, depth=0.07, lips_always=False, teeth=True, outlined=False,
                seam_inked=True, seam_width=0.008, seam_length=0.9),
    fringe=Fringe(pointed=False, depth=0.012, frequency=6.0, lift=0.0),
    inner_ear=0.6, wrinkle_strength=0.9, wrinkle_width=0.009, frame_width=0.02, lens_extra=0.0,
)  # fmt: skip

LOOKS: dict[str, Look] = {"photo": _PHOTO, "anime": _ANIME, "cartoon": _CARTOON}
assert tuple(LOOKS) == STYLES

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
    eye_rx, eye_ry, eye_drop = look.eyes.size
    level = torch.ones_like(height)  # (N, 1, 1), to broadcast style constants per face
    eye_y = (FACE_CENTRE_Y + eye_drop) * level
    length = 0.35 + 0.5 * col(params.hair_length)  # women's hair: chin to shoulders
    return Geometry(
        cy=FACE_CENTRE_Y * level,
        width=width,
        height=height,
        chin=col(params.chin) * (1.0 - 0.45 * male) * (0.55 + 0.45 * young),  # age: a heavier jaw
        eye_x=col(params.eye_spacing) + (eye_rx - 0.06) * 0.5,
        eye_y=eye_y,
        eye_rx=eye_rx * size,
        eye_ry=eye_ry * size * (1.0 - 0.2 * smiling),  # a smile narrows the eyes
        brow_y=eye_y - look.brow_above_eye,
        nose_y=FACE_CENTRE_Y + look.nose_y * col(params.nose_length) ** 0.3,
        mouth_y=(FACE_CENTRE_Y + look.mouth.y) * level,
        mouth_w=col(params.mouth_width) * look.mouth.scale * (1.0 + 0.25 * smiling),
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


_LIPSTICK = _rgb((0.86, 0.05, 0.12), (0.98, 0.32, 0.58), (0.72, 0.05, 0.36))


def _pick(table: Tensor, u: Tensor) -> Tensor:
    """Row of `table` chosen by u in [0, 1): (K, 3), (N,) -> (N, 3)."""
    index = (u * table.shape[0]).long().clamp(0, table.shape[0] - 1)
    return table[index]


def _skin(params: FaceParams, colours: Colours) -> Tensor:
    pale = params.attr("Pale_Skin")
    tone = torch.where(pale > 0, 0.1 * params.skin_tone, 0.3 + 0.7 * params.skin_tone**1.5)
    stops = _rgb(*colours.skin)  # piecewise linear through the three stops
    low = torch.lerp(stops[0], stops[1], (2 * tone).clamp(max=1.0)[:, None])
    return torch.lerp(low, stops[2], (2 * tone - 1).clamp(min=0.0)[:, None])


def _beard(hair: Tensor, gray: Tensor) -> Tensor:
    """Beards and brows: darker and browner than the hair, except gray which stays light."""
    darker = torch.lerp(hair * 0.72, torch.tensor([0.42, 0.28, 0.17]), 0.3)
    return torch.lerp(darker, hair * 0.78, gray)


def palette(params: FaceParams, look: Look) -> Palette:
    colours = look.colours
    skin = _skin(params, colours)
    onehot = torch.stack([params.attr(c) for c in HAIR_COLOURS], dim=1)  # (N, 4)
    hair = (onehot @ _rgb(*colours.hair)) * (0.85 + 0.3 * params.hair_shade)[:, None]
    hair = hair.clamp(0.0, 1.0)
    vivid, span = colours.clothes
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
        eye=_pick(_rgb(*colours.eyes), params.eye_colour),
        lips=lips,
        hat=vivid + span * params.hat_colour,
        shirt=vivid + span * params.shirt_colour,
        line=torch.tensor([0.22, 0.12, 0.1]).expand_as(skin),
    )
