"""The parameter vector of a synthetic face: who it is, how it is posed, what it wears.

Each face is one row of a `FaceParams`. Face `i` of a seed is drawn from its own
`torch.Generator`, seeded from a hash of `(seed, i)`, so any slice of a data set
can be sampled (and rendered) on its own and equals the same rows of a bigger batch.

Attributes use CelebA's names and stay consistent: exactly one hair colour, no
bangs on a bald head, beards only on men, `No_Beard == not (Mustache or Goatee)`.
Every style draws the same parameters, so one row in two styles is a true pair.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from facefilter.attributes import CELEBA_ATTRIBUTES
from facefilter.errors import UserError

_DRAWN = {
    "Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Eyeglasses", "Goatee",
    "Gray_Hair", "Male", "Mustache", "No_Beard", "Pale_Skin", "Smiling", "Wearing_Hat",
    "Wearing_Lipstick", "Young",
}  # fmt: skip
SYNTH_ATTRIBUTES: tuple[str, ...] = tuple(a for a in CELEBA_ATTRIBUTES if a in _DRAWN)
HAIR_COLOURS: tuple[str, ...] = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
# Turning a hair colour off must leave exactly one on: the colour it becomes instead.
_HAIR_FALLBACK = {
    "Black_Hair": "Brown_Hair",
    "Brown_Hair": "Black_Hair",
    "Blond_Hair": "Brown_Hair",
    "Gray_Hair": "Black_Hair",
}
CLUTTER_SHAPES = 8  # background objects per face (drawn by the photo and anime styles)
_UNIFORMS = 128  # uniforms drawn per face; fixed so that adding a field never shifts others


@dataclass
class FaceParams:
    """A batch of faces, one row per face. Lengths are in canonical face units
    (the face canvas spans [-1, 1]); scalars without a unit are in [0, 1]."""

    attributes: Tensor  # (N, len(SYNTH_ATTRIBUTES)) in {0, 1}
    # identity
    face_width: Tensor  # (N,) half-width of the face
    face_height: Tensor  # (N,) half-height of the face, brow to chin and above
    chin: Tensor  # (N,) how much the jaw narrows towards the chin
    skin_tone: Tensor  # (N,) 0 light .. 1 dark (Pale_Skin squeezes it to the light end)
    eye_size: Tensor  # (N,) multiplier around 1
    eye_spacing: Tensor  # (N,) x of the eye centres
    eye_colour: Tensor  # (N,) picks brown, hazel, green, blue or grey
    brow_thickness: Tensor  # (N,) multiplier around 1
    brow_arch: Tensor  # (N,)
    nose_length: Tensor  # (N,) multiplier around 1
    nose_width: Tensor  # (N,) multiplier around 1
    mouth_width: Tensor  # (N,) half-width of the mouth
    hair_volume: Tensor  # (N,) how far hair stands off the skull
    hair_length: Tensor  # (N,) 0 chin .. 1 shoulders (long hair only)
    hair_wave: Tensor  # (N,)
    hair_shade: Tensor  # (N,) lightness jitter within the hair colour
    hair_part: Tensor  # (N,) -1 .. 1, where the fringe parts
    glasses_shape: Tensor  # (N,) 0 round .. 1 square
    hat_colour: Tensor  # (N, 3) RGB
    shirt_colour: Tensor  # (N, 3) RGB
    lipstick_hue: Tensor  # (N,) picks red, pink or berry
    # nuisance
    centre: Tensor  # (N, 2) face position in the image, image units [-1, 1]
    scale: Tensor  # (N,) face canvas size relative to the image
    angle: Tensor  # (N,) in-plane rotation, radians
    light: Tensor  # (N, 2) light direction (x, y) in the face plane
    background: Tensor  # (N, 2, 3) top and bottom RGB of the backdrop gradient
    clutter_pos: Tensor  # (N, K, 2) centres of background objects, image units
    clutter_size: Tensor  # (N, K, 2) half-sizes
    clutter_colour: Tensor  # (N, K, 3)
    clutter_round: Tensor  # (N, K) corner roundness, 0 box .. 1 ellipse
    noise_seed: Tensor  # (N,) int64, seeds the per-pixel sensor noise hash
    noise_level: Tensor  # (N,) standard deviation of the sensor noise (photo style)

    def __len__(self) -> int:
        return int(self.attributes.shape[0])

    def attr(self, name: str) -> Tensor:
        """One attribute as a float column, (N,)."""
        return self.attributes[:, attribute_index(name)]

    def rows(self, index: slice | Tensor | Sequence[int]) -> FaceParams:
        """The faces at `index`, as a new batch."""
        if not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long)
        return FaceParams(**{f.name: getattr(self, f.name)[index] for f in _fields()})

    def with_attribute(self, name: str, value: bool) -> FaceParams:
        """The same people with attribute `name` set to `value` for every face; the
        attributes it implies follow (a beard makes a man, baldness drops bangs)."""
        attrs = {a: self.attr(a).bool() for a in SYNTH_ATTRIBUTES}
        if name not in attrs:
            raise UserError(
                f"attribute {name!r} is not drawn; choose from {', '.join(SYNTH_ATTRIBUTES)}"
            )
        _set_consistently(attrs, name, value)
        stacked = torch.stack([attrs[a] for a in SYNTH_ATTRIBUTES], dim=1).float()
        return dataclasses.replace(self, attributes=stacked)

    @staticmethod
    def cat(batches: Sequence[FaceParams]) -> FaceParams:
        return FaceParams(
            **{f.name: torch.cat([getattr(b, f.name) for b in batches]) for f in _fields()}
        )


def _fields() -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(FaceParams)


def attribute_index(name: str) -> int:
    return SYNTH_ATTRIBUTES.index(name)


def _set_consistently(attrs: dict[str, Tensor], name: str, value: bool) -> None:
    """Set one attribute (bool tensors, in place) and repair the ones it constrains."""
    on = torch.full_like(attrs[name], value)
    off = torch.zeros_like(on)
    if name in HAIR_COLOURS:
        if value:
            for colour in HAIR_COLOURS:
                attrs[colour] = on if colour == name else off
        else:
            fallback = _HAIR_FALLBACK[name]
            attrs[fallback] = attrs[fallback] | attrs[name]
            attrs[name] = off
        return
    attrs[name] = on
    if name == "Bald" and value:
        attrs["Bangs"], attrs["Wearing_Hat"] = off, off
    if name in ("Bangs", "Wearing_Hat") and value:
        attrs["Bald"] = off
    if name == "Male" and not value:
        attrs["Mustache"], attrs["Goatee"], attrs["Bald"] = off, off, off
    if name == "Male" and value:
        attrs["Wearing_Lipstick"] = off
    if name in ("Mustache", "Goatee") and value:
        attrs["Male"], attrs["Wearing_Lipstick"] = on, off
    if name == "No_Beard":
        attrs["Mustache"], attrs["Goatee"] = ~on, ~on
        if not value:
            attrs["Male"], attrs["Wearing_Lipstick"] = ~on, on
    attrs["No_Beard"] = ~(attrs["Mustache"] | attrs["Goatee"])


def _face_seed(seed: int, index: int) -> int:
    """A 63-bit generator seed from (seed, index): splitmix64, so neighbours differ."""
    z = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return (z ^ (z >> 31)) >> 1


def sample_params(count: int, seed: int, start: int = 0) -> FaceParams:
    """Faces `start .. start+count-1` of `seed`; face i depends only on (seed, i)."""
    return sample_params_at(range(start, start + count), seed)


def sample_params_at(indices: Sequence[int], seed: int) -> FaceParams:
    """The faces with these global ids (any order, any gaps)."""
    uniforms = torch.empty(len(indices), _UNIFORMS)  # (N, D), one generator per face
    for row, index in enumerate(indices):
        generator = torch.Generator().manual_seed(_face_seed(seed, int(index)))
        uniforms[row] = torch.rand(_UNIFORMS, generator=generator)
    params = _params_from_uniforms(uniforms)
    params.noise_seed = torch.tensor([_face_seed(seed + 1, int(i)) % 2**24 for i in indices])
    return params


def _sample_attributes(u: Tensor) -> Tensor:
    """(N, 16) uniforms -> (N, len(SYNTH_ATTRIBUTES)) consistent attributes, CelebA-ish priors
    but balanced enough that filtering by any one attribute leaves plenty of faces."""
    male, young = u[:, 0] < 0.5, u[:, 1] < 0.6
    gray = u[:, 2] < torch.where(young, 0.08, 0.5)
    colour_pick = u[:, 3]  # among the non-gray: black 36%, brown 36%, blond 28%
    black = ~gray & (colour_pick < 0.36)
    brown = ~gray & (colour_pick >= 0.36) & (colour_pick < 0.72)
    blond = ~gray & (colour_pick >= 0.72)
    bald = male & (u[:, 4] < torch.where(young, 0.1, 0.35))
    hat = ~bald & (u[:, 5] < 0.2)
    bangs = ~bald & (u[:, 6] < 0.35)
    mustache = male & (u[:, 9] < 0.4)
    goatee = male & (u[:, 10] < 0.35)
    values = {
        "Male": male, "Young": young, "Gray_Hair": gray, "Black_Hair": black,
        "Brown_Hair": brown, "Blond_Hair": blond, "Bald": bald, "Wearing_Hat": hat,
        "Bangs": bangs, "Eyeglasses": u[:, 7] < 0.3, "Smiling": u[:, 8] < 0.5,
        "Mustache": mustache, "Goatee": goatee, "No_Beard": ~(mustache | goatee),
        "Wearing_Lipstick": ~male & (u[:, 11] < 0.55), "Pale_Skin": u[:, 12] < 0.2,
    }  # fmt: skip
    return torch.stack([values[a] for a in SYNTH_ATTRIBUTES], dim=1).float()


def _params_from_uniforms(u: Tensor) -> FaceParams:
    """Map (N, D) uniforms to parameters; each field owns fixed columns."""
    n = u.shape[0]

    def span(column: int, low: float, high: float) -> Tensor:
        return low + (high - low) * u[:, column]

    def block(first: int, width: int) -> Tensor:
        return u[:, first : first + width]

    k = CLUTTER_SHAPES
    angle_deg = (u[:, 44] - 0.5) * 16.0  # +-8 degrees: CelebA crops are roughly upright
    light_angle = span(45, -2.4, 2.4) - torch.pi / 2  # mostly from above, left or right
    return FaceParams(
        attributes=_sample_attributes(block(0, 16)),
        face_width=span(16, 0.31, 0.36),
        face_height=span(17, 0.5, 0.56),
        chin=span(18, 0.25, 0.6),
        skin_tone=u[:, 19],
        eye_size=span(20, 0.88, 1.12),
        eye_spacing=span(21, 0.125, 0.145),
        eye_colour=u[:, 22],
        brow_thickness=span(23, 0.8, 1.25),
        brow_arch=span(24, 0.0, 1.0),
        nose_length=span(25, 0.85, 1.15),
        nose_width=span(26, 0.85, 1.2),
        mouth_width=span(27, 0.085, 0.11),
        hair_volume=span(28, 0.03, 0.1),
        hair_length=u[:, 29],
        hair_wave=u[:, 30],
        hair_shade=u[:, 31],
        hair_part=span(32, -1.0, 1.0),
        glasses_shape=u[:, 33],
        hat_colour=block(34, 3),
        shirt_colour=block(37, 3),
        lipstick_hue=u[:, 40],
        centre=(block(41, 2) - 0.5) * 0.12,
        scale=span(43, 1.3, 1.48),
        angle=angle_deg * torch.pi / 180.0,
        light=torch.stack([light_angle.cos(), light_angle.sin()], dim=1)
        * span(46, 0.5, 1.0)[:, None],
        background=block(47, 6).reshape(n, 2, 3),
        clutter_pos=(block(53, 2 * k).reshape(n, k, 2) - 0.5) * 2.2,
        clutter_size=0.08 + 0.5 * block(53 + 2 * k, 2 * k).reshape(n, k, 2) ** 2,
        clutter_colour=block(53 + 4 * k, 3 * k).reshape(n, k, 3),
        clutter_round=u[:, 53 + 7 * k : 53 + 8 * k].round(),
        noise_seed=torch.zeros(n, dtype=torch.long),  # filled in by sample_params_at
        noise_level=span(53 + 8 * k, 0.006, 0.025),
    )
