"""The photo style's camera: what happens to the composited picture on its way to a
file. In the order a camera applies them: lens defocus (some faces), exposure and
white balance, sensor noise (grain shared by the channels plus blotchy chroma noise),
a tone curve (contrast and midtones), vignetting, and JPEG compression (some faces).

Each step works per pixel or per small neighbourhood, so an attribute edit still
changes only its own part of the image; every setting comes from the face's
seed-drawn parameters, never from its attributes. JPEG is `facefilter.degrade.jpeg`, the
one the judges' and domain randomisation's camera uses.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from facefilter.degrade import jpeg
from facefilter.synth.params import FaceParams
from facefilter.synth.shapes import enlarge, noise

# JPEG runs at about this resolution, and the result is then shrunk to the image size:
# web face crops are cut from bigger JPEGs (CelebA's are 178 x 218), so their blocks are
# smaller than 8 output pixels.
_JPEG_NATIVE = 144


def camera(image: Tensor, params: FaceParams) -> Tensor:
    """(N, 3, S, S) in [0, 1] -> the same, as the face's camera would have recorded it
    (`image` is overwritten)."""
    size = image.shape[-1]
    image = _lens_blur(image, params.defocus)
    gain = torch.exp2(params.exposure)[:, None] * params.white_balance  # (N, 3)
    image.mul_(gain[:, :, None, None]).add_(_sensor_noise(params, size)).clamp_(0.0, 1.0)
    image = _tone_curve(image, params.contrast, params.midtones)
    image.mul_(_vignetting(params.vignette, size)).clamp_(0.0, 1.0)
    return _compress(image, params.jpeg_quality)


def _col4(values: Tensor) -> Tensor:
    return values.reshape(-1, 1, 1, 1)


def _lens_blur(image: Tensor, defocus: Tensor) -> Tensor:
    """Slightly out of focus (some faces): blend towards a 3 x 3 box blur, repeated for
    every 64 px of the side (about a pixel at 64 px). In place on `image`."""
    rows = (defocus > 0).nonzero()[:, 0]
    if len(rows) == 0:
        return image
    chosen = blurred = image[rows]
    for _ in range(max(1, image.shape[-1] // 64)):
        padded = F.pad(blurred, (1, 1, 1, 1), mode="replicate")
        blurred = F.avg_pool2d(padded, 3, stride=1)
    image[rows] = torch.lerp(chosen, blurred, _col4(defocus[rows]))
    return image


def _sensor_noise(params: FaceParams, size: int) -> Tensor:
    """(N, 3, S, S): grain, mostly shared by the channels (luminance), plus chroma noise
    that is blotchy (demosaicing spreads it over a few pixels) and sums to zero."""
    level = _col4(params.noise_level * params.noise_gain)
    grain = noise(params.noise_seed, size, size, 3)
    grain = grain.mul(0.4 * level).add_(grain[:, :1] * (0.6 * level))
    cells = max(4, size // 3)
    chroma = noise(params.texture_seed + 5, cells, cells, 3)
    chroma = (chroma - chroma.mean(1, keepdim=True)) * (level * _col4(params.chroma_noise))
    return grain.add_(enlarge(chroma, size))


def _tone_curve(image: Tensor, contrast: Tensor, midtones: Tensor) -> Tensor:
    """x + x (1 - x) (midtones + contrast (2x - 1)): `contrast` mixes in smoothstep's
    S-curve (negative flattens), `midtones` lifts or darkens the middle like a gamma;
    0 and 1 stay put. Polynomial, so cheap. In place."""
    bend = image.mul(2.0).sub_(1.0).mul_(_col4(contrast)).add_(_col4(midtones))
    return image.add_(bend.mul_(image).mul_(1.0 - image))


def _vignetting(strength: Tensor, size: int) -> Tensor:
    """(N, 1, S, S): 1 in the middle, 1 - strength in the corners (cos^4-like falloff)."""
    pixels = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    radius = (pixels.reshape(1, -1, 1) ** 2 + pixels.reshape(1, 1, -1) ** 2) / 2.0
    return 1.0 - _col4(strength) * radius.unsqueeze(0)


def _compress(image: Tensor, quality: Tensor) -> Tensor:
    """JPEG for the faces with quality < 100, as if at about `_JPEG_NATIVE` px and then
    shrunk by `scale`: the same as JPEG with blocks of 8 / scale output pixels that keep
    the low-frequency corner of each 8 x 8 table (what a shrunk block still holds)."""
    rows = (quality < 100.0).nonzero()[:, 0]
    if len(rows) == 0:
        return image
    ratio = _JPEG_NATIVE / image.shape[-1]
    scale = 2 ** min(2, max(0, round(math.log2(ratio))))  # 1, 2 or 4
    image[rows] = jpeg(image[rows] * 2 - 1, quality[rows], block=8 // scale) * 0.5 + 0.5
    return image
