"""What a camera and a file do to a picture, and what breaks a face: pure tensor functions.

Two uses, one set of functions:
- robustness (domain randomisation): a judge, or a filter's source domain, trained on
  images blurred, noisy, JPEG-compressed, colour-cast, over- or under-exposed or grey,
  the way real photographs differ from clean renderings, so that these differences stop
  mattering (Tobin et al. 2017; Wood et al. 2021 train face models on synthetic faces
  alone this way);
- rejection: `scramble` cuts a face into shuffled tiles or smears it under coloured
  speckle, so a judge can learn that a style needs a face drawn in it, not only its
  colours and strokes.

Images are (B, 3, H, W) floats in [-1, 1]. Every random choice comes from the
`torch.Generator` given (a CPU one: draws are made on the host, so a training step
never waits on the device), so a run seeded by (seed, step) repeats exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# JPEG's quantisation tables (ITU-T T.81, Annex K) for quality 50.
_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57,
         69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55,
         64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100,
         103, 99)  # fmt: skip
_CHROMA = (17, 18, 24, 47, *[99] * 4, 18, 21, 26, 66, *[99] * 4, 24, 26, 56, *[99] * 5, 47, 66,
           *[99] * 38)  # fmt: skip
_YCBCR = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))


def _dct_matrix(n: int = 8) -> Tensor:
    """The orthonormal DCT-II basis: rows are frequencies."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    x = torch.arange(n, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi * (2 * x + 1) * k / (2 * n)) * math.sqrt(2 / n)
    basis[0] /= math.sqrt(2)
    return basis.float()


def _tables(quality: Tensor) -> Tensor:
    """(B,) qualities in [1, 100] -> (B, 3, 8, 8) quantisation steps (libjpeg's scaling)."""
    q = quality.clamp(1, 100)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q)[:, None]  # per cent
    tables = []
    for table in (_LUMA, _CHROMA, _CHROMA):
        base = torch.tensor(table, dtype=torch.float32, device=quality.device)[None]
        tables.append(((base * scale + 50) // 100).clamp(1, 255).view(-1, 8, 8))
    return torch.stack(tables, dim=1)


def jpeg(images: Tensor, quality: Tensor) -> Tensor:
    """Each image as JPEG at its quality would store it (YCbCr, 8x8 DCT, quantised, no
    chroma subsampling): blocking and ringing, on the device. (B,) qualities in [1, 100]."""
    b, _, h, w = images.shape
    pad_h, pad_w = -h % 8, -w % 8
    unit = F.pad((images + 1) * 127.5, (0, pad_w, 0, pad_h), mode="replicate")
    to_ycc = torch.tensor(_YCBCR, device=images.device, dtype=unit.dtype)
    ycc = torch.einsum("ij,bjhw->bihw", to_ycc, unit) - torch.tensor(
        [128.0, 0.0, 0.0], device=images.device)[:, None, None]  # fmt: skip
    hh, ww = ycc.shape[-2] // 8, ycc.shape[-1] // 8
    blocks = ycc.view(b, 3, hh, 8, ww, 8).permute(0, 1, 2, 4, 3, 5)  # (B, 3, hh, ww, 8, 8)
    dct = _dct_matrix().to(images.device)
    steps = _tables(quality.to(images.device, torch.float32))[:, :, None, None]
    coefficients = dct @ blocks @ dct.T
    restored = dct.T @ ((coefficients / steps).round() * steps) @ dct
    ycc = restored.permute(0, 1, 2, 4, 3, 5).reshape(b, 3, hh * 8, ww * 8)
    ycc = ycc + torch.tensor([128.0, 0.0, 0.0], device=images.device)[:, None, None]
    rgb = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(to_ycc), ycc)
    return (rgb[..., :h, :w] / 127.5 - 1).clamp(-1, 1)


def shrink_blur(images: Tensor, factor: float) -> Tensor:
    """Shrunk by `factor` and enlarged back (antialiased both ways): a small or defocused
    face, as a filter's blurry output or a phone's distant face is."""
    height, width = images.shape[-2:]
    small = (max(4, round(height / factor)), max(4, round(width / factor)))
    shrunk = F.interpolate(images, size=small, mode="bilinear", antialias=True)
    return F.interpolate(shrunk, size=(height, width), mode="bilinear")


@dataclass(frozen=True)
class Camera:
    """How strongly each effect of `camera` may act (0 turns it off)."""

    blur: float = 2.5  # largest shrink factor (>= 1)
    noise: float = 0.12  # largest sensor-noise standard deviation, in [-1, 1] units
    jpeg: tuple[float, float] = (15.0, 90.0)  # JPEG quality range
    cast: float = 0.15  # per-channel gain within 1 +- this (white balance)
    exposure: float = 0.35  # gamma within 2 ** +-this (under- and over-exposure)
    contrast: float = 0.3  # contrast within 1 +- this
    grey: float = 0.15  # chance of a black-and-white picture


def grey(images: Tensor) -> Tensor:
    """Black and white (ITU-R BT.601 luma in every channel)."""
    weights = torch.tensor((0.299, 0.587, 0.114), device=images.device, dtype=images.dtype)
    return (images * weights[:, None, None]).sum(1, keepdim=True).expand_as(images).contiguous()


def _chosen(count: int, p: float, generator: torch.Generator) -> Tensor:
    return torch.rand(count, generator=generator) < p


def camera(images: Tensor, generator: torch.Generator, strength: Camera | None = None) -> Tensor:
    """Each image through a random camera: colour cast, exposure and contrast, maybe grey,
    blur for half of them, sensor noise, JPEG for half of them. Draws (on the host) come
    from `generator`, whatever device the images are on."""
    s, n, device = strength or Camera(), images.shape[0], images.device

    def draw(*shape: int) -> Tensor:
        return torch.rand(n, *shape, generator=generator).to(device)

    unit = (images + 1) / 2
    unit = unit * (1 + s.cast * (2 * draw(3) - 1))[:, :, None, None]
    mean = unit.mean(dim=(1, 2, 3), keepdim=True)
    unit = (unit - mean) * (1 + s.contrast * (2 * draw(1, 1, 1) - 1)) + mean
    unit = unit.clamp(1e-4, 1) ** (2 ** (s.exposure * (2 * draw(1, 1, 1) - 1)))
    chosen = _chosen(n, s.grey, generator).to(device)[:, None, None, None]
    out = torch.where(chosen, grey(unit * 2 - 1), unit * 2 - 1)
    if s.blur > 1:
        factor = 1 + (s.blur - 1) * float(torch.rand((), generator=generator))
        blurred = _chosen(n, 0.5, generator).to(device)[:, None, None, None]
        out = torch.where(blurred, shrink_blur(out, factor), out)
    if s.noise > 0:
        sigma = s.noise * draw(1, 1, 1)
        grain = torch.randn(out.shape, generator=generator).to(device)
        out = out + sigma * grain
    if s.jpeg[1] > s.jpeg[0]:
        low, high = s.jpeg
        quality = low + (high - low) * torch.rand(n, generator=generator)
        compressed = _chosen(n, 0.5, generator).to(device)[:, None, None, None]
        out = torch.where(compressed, jpeg(out.clamp(-1, 1), quality), out)
    return out.clamp(-1, 1)


def shuffle_tiles(images: Tensor, generator: torch.Generator, region: float = 0.7) -> Tensor:
    """The middle `region` of each image (where an aligned crop holds the face) cut into
    square tiles (one size for the batch, 4 to 16 px at 64 px, scaled with the size) and
    shuffled among themselves; the rest of the image as it was."""
    n, _, h, w = images.shape
    tile = max(2, round(int(torch.randint(4, 17, (), generator=generator)) * h / 64))
    rows, cols = max(1, int(h * region) // tile), max(1, int(w * region) // tile)
    top, left = (h - rows * tile) // 2, (w - cols * tile) // 2
    out = images.clone()
    middle = out[:, :, top : top + rows * tile, left : left + cols * tile]
    tiles = middle.reshape(n, 3, rows, tile, cols, tile).permute(0, 2, 4, 1, 3, 5)
    tiles = tiles.reshape(n, rows * cols, 3, tile, tile)
    order = torch.argsort(torch.rand(n, rows * cols, generator=generator), dim=1)
    shuffled = torch.gather(tiles, 1, order.to(images.device)[:, :, None, None, None].expand_as(
        tiles))  # fmt: skip
    shuffled = shuffled.reshape(n, rows, cols, 3, tile, tile).permute(0, 3, 1, 4, 2, 5)
    out[:, :, top : top + rows * tile, left : left + cols * tile] = shuffled.reshape(
        n, 3, rows * tile, cols * tile)  # fmt: skip
    return out


def scramble(images: Tensor, generator: torch.Generator, region: float = 0.7) -> Tensor:
    """Faces broken four ways, a quarter of the images each: tiles shuffled, tiles
    shuffled under strong grey noise, `speckle`, or `melt`. The colours, strokes and head
    outline stay, the face does not."""
    n = images.shape[0]
    tiles = shuffle_tiles(images, generator, region)
    kind = torch.randint(0, 4, (n,), generator=generator).to(images.device)[:, None, None, None]
    sigma = 0.5 * torch.rand(n, 1, 1, 1, generator=generator).to(images.device)
    grain = torch.randn(images.shape, generator=generator).to(images.device)
    noisy = (tiles + sigma * grain).clamp(-1, 1)
    speckled, melted = speckle(images, generator, region), melt(images, generator, region)
    return torch.where(kind == 0, tiles, torch.where(kind == 1, noisy, torch.where(
        kind == 2, speckled, melted)))  # fmt: skip


def melt(images: Tensor, generator: torch.Generator, region: float = 0.7) -> Tensor:
    """The face pushed around by a large smooth random displacement (up to a fifth of the
    side, smooth over an eighth of it), strongest in the middle `region`: every stroke and
    texture survives, no feature stays where a face has it, and no tile edge gives it away
    (a generator trained against a patch critic breaks faces this way: right textures,
    wrong places)."""
    n, _, h, w = images.shape
    device = images.device
    coarse = torch.randn(n, 2, 8, 8, generator=generator)
    flow = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).to(device)
    ys = torch.linspace(-1, 1, h, device=device)[:, None]
    xs = torch.linspace(-1, 1, w, device=device)[None, :]
    weight = (1 - (xs**2 + ys**2) / (2 * region**2)).clamp(min=0)  # fades out at the edges
    amount = (0.25 + 0.2 * torch.rand(n, 1, 1, 1, generator=generator)).to(device)
    grid = torch.stack(torch.broadcast_tensors(xs, ys), -1)[None]  # (1, H, W, 2) as x, y
    moved = grid + (amount * flow * weight).permute(0, 2, 3, 1)
    return F.grid_sample(images, moved, mode="bilinear", padding_mode="border",
                         align_corners=True)  # fmt: skip


def speckle(images: Tensor, generator: torch.Generator, region: float = 0.7) -> Tensor:
    """What a generator that has not learned a face draws: the picture's colours smeared
    (shrunk 3 to 6x), under coloured speckle at 1 and 2 px, strongest over the face.
    (B, 3, H, W) in [-1, 1]"""
    n, _, h, w = images.shape
    device = images.device
    smeared = shrink_blur(images, 3 + 3 * float(torch.rand((), generator=generator)))
    fine = torch.randn(n, 3, h, w, generator=generator)
    coarse = F.interpolate(torch.randn(n, 3, h // 2, w // 2, generator=generator),
                           size=(h, w), mode="nearest")  # fmt: skip
    mix = torch.rand(n, 1, 1, 1, generator=generator)
    grain = (mix * fine + (1 - mix) * coarse).to(device)
    ys = torch.linspace(-1, 1, h, device=device)[:, None]
    xs = torch.linspace(-1, 1, w, device=device)[None, :]
    face = ((xs / region) ** 2 + (ys / region) ** 2 < 1).float()  # an ellipse where faces are
    sigma = (0.15 + 0.35 * torch.rand(n, 1, 1, 1, generator=generator)).to(device)
    return (smeared + sigma * grain * (0.4 + 0.6 * face)).clamp(-1, 1)
