"""Built-in synthetic faces: the project's embedded data and the ground truth of its
quality benchmarks.

Each face is a parameter vector (`FaceParams`: identity, CelebA-named attributes,
pose, light, backdrop) drawn in one of `STYLES`. The same row in two styles is the
same person in the same pose, so photo/anime/cartoon pairs are true pairs.

Rendering is vectorised over the batch: every face is drawn with anti-aliased signed
distance shapes, layer by layer, on a canvas in canonical face coordinates; one
affine resampling per face then poses it (position, scale, rotation) over its
backdrop. Everything is deterministic for a seed (no global RNG).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from facefilter.data.synth_features import (
    draw_beard,
    draw_brows,
    draw_eyes,
    draw_glasses,
    draw_mouth,
    draw_nose,
    draw_wrinkles,
)
from facefilter.data.synth_head import draw_body, draw_face, draw_hair_front, light_photo
from facefilter.data.synth_params import (
    SYNTH_ATTRIBUTES,
    FaceParams,
    sample_params,
    sample_params_at,
)
from facefilter.data.synth_shapes import Canvas, box, col, noise
from facefilter.data.synth_styles import LOOKS, STYLES, geometry, palette
from facefilter.errors import UserError

__all__ = [
    "STYLES",
    "SYNTH_ATTRIBUTES",
    "FaceParams",
    "SynthFaces",
    "render",
    "sample_params",
    "write_dataset",
]

MIN_SIZE, MAX_SIZE = 32, 256
# Pixels drawn at once (32 faces at 128 px): small enough that the (N, h, w) temporaries stay
# in the CPU cache, big enough that per-operation overhead is spread over many faces.
_RENDER_PIXELS = 32 * 128 * 128
# The face canvas spans [-0.86, 0.86]: with the smallest scale (1.3), the largest shift and
# rotation, no image pixel samples beyond it, so nothing outside is ever drawn.
_CANVAS_EXTENT = 0.86
_DATASET_CHUNK = 256  # faces a dataset renders (and caches) together
SPLITS = {"train": 0, "val": 1, "test": 2}


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
    face = _draw_face_canvas(params, style, size)  # (N, 4, S, S) premultiplied
    posed = F.grid_sample(face, _pose_grid(params, size) / _CANVAS_EXTENT, mode="bilinear",
                          padding_mode="border", align_corners=False)  # fmt: skip
    image = _backdrop(params, style, size) * (1.0 - posed[:, 3:]) + posed[:, :3]
    if LOOKS[style].lit:  # sensor noise: per-pixel, partly shared by the channels
        grain = noise(params.noise_seed, size, size, 3)
        grain = 0.6 * grain[:, :1] + 0.4 * grain
        image = image + col(params.noise_level)[:, None] * grain
    return image.clamp_(0.0, 1.0)


def _draw_face_canvas(params: FaceParams, style: str, size: int) -> Tensor:
    look = LOOKS[style]
    g, pal = geometry(params, look), palette(params, style)
    canvas = Canvas(len(params), size, look.edge_px, _CANVAS_EXTENT)
    draw_body(canvas, g, pal, look, params, style)
    draw_face(canvas, g, pal, look, params, style)
    draw_wrinkles(canvas, g, pal, style)
    draw_beard(canvas, g, pal, look)
    draw_mouth(canvas, g, pal, style)
    draw_nose(canvas, g, pal, params, style)
    draw_eyes(canvas, g, pal, look, style)
    draw_brows(canvas, g, pal, params, style)
    draw_glasses(canvas, g, pal, params, style)
    draw_hair_front(canvas, g, pal, look, params, style)
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


def _backdrop(params: FaceParams, style: str, size: int) -> Tensor:
    """Photo: a soft, out-of-focus room (clutter at quarter resolution); anime: a pastel
    gradient with flat shapes; cartoon: one flat colour. (N, 3, size, size)"""
    n = len(params)
    if style == "cartoon":
        flat = 0.62 + 0.33 * params.background[:, 0]
        return flat[:, :, None, None].expand(n, 3, size, size).contiguous()
    photo = style == "photo"
    low = max(8, size // 4) if photo else max(16, size // 2)
    canvas = Canvas(n, low, edge_px=3.0 if photo else 1.0)
    whole = canvas.whole()
    top, bottom = params.background[:, 0], params.background[:, 1]
    if photo:
        top, bottom = 0.1 + 0.65 * top, 0.1 + 0.55 * bottom
    else:
        top, bottom = 0.7 + 0.3 * top, 0.55 + 0.4 * bottom
    height = (whole.y + 1.0) / 2.0  # (1, h, 1)
    gradient = torch.lerp(top[:, :, None, None], bottom[:, :, None, None], height.unsqueeze(1))
    canvas.rgba[:, :3] = gradient
    canvas.rgba[:, 3] = 1.0
    shapes = params.clutter_pos.shape[1] if photo else 4
    for k in range(shapes):
        pos, half = params.clutter_pos[:, k], params.clutter_size[:, k]
        corner = params.clutter_round[:, k] * half.min(dim=1).values
        sdf = box(whole.x - col(pos[:, 0]), whole.y - col(pos[:, 1]),
                  col(half[:, 0]), col(half[:, 1]), col(corner))  # fmt: skip
        colour = params.clutter_colour[:, k]
        colour = (
            0.1 + 0.35 * colour + 0.35 * colour.mean(1, keepdim=True)
            if photo
            else 0.75 + 0.25 * colour
        )
        whole.fill(sdf, colour, 0.9 if photo else 0.55)
    return F.interpolate(canvas.rgba[:, :3], size=size, mode="bilinear", align_corners=False)


def split_of(index: int) -> str:
    """The deterministic partition: id % 10 == 8 is val, == 9 is test, the rest train."""
    return "val" if index % 10 == 8 else "test" if index % 10 == 9 else "train"


class SynthFaces(Dataset):
    """`count` synthetic faces of `style`; item i is face `ids[i]` of `seed` in every
    style, so two styles with the same seed/count/split are paired item by item.
    Faces are rendered lazily, `_DATASET_CHUNK` at a time, and cached as uint8."""

    def __init__(self, style: str, size: int, count: int = 2000, seed: int = 0,
                 split: str | None = None) -> None:  # fmt: skip
        check_style_and_size(style, size)
        if count < 1:
            raise UserError(f"synthetic face count {count} must be at least 1")
        if split is not None and split not in SPLITS:
            raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)} or none")
        self.style, self.size, self.seed = style, size, seed
        self.ids = [i for i in range(count) if split is None or split_of(i) == split]
        self.attr_names = list(SYNTH_ATTRIBUTES)
        self._attrs = sample_params_at(self.ids, seed).attributes  # cheap; images are not
        self._cache: dict[int, Tensor] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def _chunk(self, chunk: int) -> Tensor:
        if chunk not in self._cache:
            ids = self.ids[chunk * _DATASET_CHUNK : (chunk + 1) * _DATASET_CHUNK]
            images = render(sample_params_at(ids, self.seed), self.style, self.size)
            self._cache[chunk] = to_uint8(images)
        return self._cache[chunk]

    def __getitem__(self, item: int) -> dict[str, Tensor | int]:
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range for {len(self)} faces")
        pixels = self._chunk(item // _DATASET_CHUNK)[item % _DATASET_CHUNK]
        return {
            "image": pixels.float().mul_(2.0 / 255.0).sub_(1.0),  # (3, S, S) in [-1, 1]
            "attrs": self._attrs[item].clone(),
            "index": self.ids[item],
        }


def to_uint8(images: Tensor) -> Tensor:
    """(N, 3, H, W) in [0, 1] -> uint8, rounding to nearest."""
    return images.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


def save_png(image: Tensor, path: Path) -> None:
    """(3, H, W) uint8 -> PNG; PIL writes no timestamp, so equal pixels give equal bytes."""
    Image.fromarray(np.ascontiguousarray(image.permute(1, 2, 0).numpy())).save(path, format="PNG")


def write_dataset(out: Path, count: int, size: int, seed: int, styles: Sequence[str]) -> None:
    """Write `<out>/<style>/000001.png ...` (1-based, like CelebA), the attributes as
    `<out>/list_attr_celeba.txt` and the split as `<out>/list_eval_partition.txt`."""
    if count < 1:
        raise UserError(f"synthetic face count {count} must be at least 1")
    if not styles:
        raise UserError(f"no styles given; choose from {', '.join(STYLES)}")
    for style in styles:
        check_style_and_size(style, size)
    out = Path(out)
    for style in styles:
        (out / style).mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.png" for i in range(count)]
    rows = []
    for start in range(0, count, _DATASET_CHUNK):
        params = sample_params(min(_DATASET_CHUNK, count - start), seed, start)
        for style in styles:
            for offset, image in enumerate(to_uint8(render(params, style, size))):
                save_png(image, out / style / names[start + offset])
        for offset, attrs in enumerate(params.attributes.long().tolist()):
            rows.append(names[start + offset] + "".join(f" {2 * a - 1:2d}" for a in attrs))
    header = [str(count), " ".join(SYNTH_ATTRIBUTES)]
    (out / "list_attr_celeba.txt").write_text("\n".join(header + rows) + "\n")
    partition = [f"{name} {SPLITS[split_of(i)]}" for i, name in enumerate(names)]
    (out / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
