"""Batched signed-distance shapes and alpha compositing for the synthetic face renderer.

Faces are drawn on a *canvas*: a square grid of pixel centres in canonical face
coordinates ([-1, 1] both ways, y pointing down) shared by every face of the batch.
Coordinates stay separable -- x is (1, 1, w), y is (1, h, 1) -- and per-face
parameters are (N, 1, 1) columns, so most arithmetic runs on (N, 1, w) or (N, h, 1)
and only the last few operations of a shape touch the full (N, h, w) grid.
A `Region` is a rectangle of the canvas: a feature that lives in a known place
(the eyes, the mouth) is evaluated only there. Negative SDF values are inside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def col(values: Tensor) -> Tensor:
    """(N,) per-face values -> (N, 1, 1), ready to broadcast against a region."""
    return values.reshape(-1, 1, 1)


def as_colour(colour: Tensor) -> Tensor:
    """(N, 3) or (N, 3, h, w) -> (N, 3, 1, 1) or unchanged."""
    return colour[:, :, None, None] if colour.dim() == 2 else colour


@dataclass
class Region:
    """A rectangle of the canvas: its sample coordinates and a view of its pixels."""

    x: Tensor  # (1, 1, w) canonical x of the pixel centres
    y: Tensor  # (1, h, 1)
    rgba: Tensor  # (N, 4, h, w) premultiplied colour + coverage, a view into the canvas
    soft: float  # width of the anti-aliasing ramp in canonical units

    def cover(self, sdf: Tensor) -> Tensor:
        """Anti-aliased coverage in [0, 1]: a linear ramp one `soft` wide across the edge,
        which is the exact box-filtered coverage of a straight edge. sdf (N, h, w)."""
        return sdf.mul(-1.0 / self.soft).add_(0.5).clamp_(0.0, 1.0)

    def paint(self, alpha: Tensor, colour: Tensor) -> None:
        """Composite `colour` over the region with per-pixel `alpha` (N, h, w)."""
        colour = as_colour(colour)
        opaque = torch.ones_like(colour[:, :1])
        self.rgba.lerp_(torch.cat([colour, opaque], dim=1), alpha.unsqueeze(1))

    def fill(self, sdf: Tensor, colour: Tensor, opacity: Tensor | float | None = None) -> Tensor:
        """Paint the inside of `sdf`; `opacity` (N, 1, 1) or (N, h, w) gates it per face
        (an attribute that is off paints nothing). Returns the coverage used."""
        alpha = self.cover(sdf)
        if opacity is not None:
            alpha = alpha * opacity
        self.paint(alpha, colour)
        return alpha

    def stroke(
        self,
        sdf: Tensor,
        width: float | Tensor,
        colour: Tensor,
        opacity: Tensor | float | None = None,
    ) -> Tensor:
        """Paint a line of `width` centred on the edge of `sdf`."""
        return self.fill(sdf.abs() - width / 2, colour, opacity)


class Canvas:
    """A transparent (N, 4, R, R) premultiplied RGBA canvas over canonical
    [-extent, extent]^2 (the part of the face plane that can reach the image)."""

    def __init__(self, batch: int, resolution: int, edge_px: float, extent: float = 1.0) -> None:
        self.resolution, self.extent = resolution, extent
        self.pixel = 2.0 * extent / resolution
        self.rgba = torch.zeros(batch, 4, resolution, resolution)
        self.soft = self.pixel * edge_px
        self._centres = (torch.arange(resolution, dtype=torch.float32) + 0.5) * self.pixel - extent

    def _index(self, low: float, high: float) -> slice:
        first = max(0, math.floor((low + self.extent) / self.pixel))
        last = min(self.resolution, math.ceil((high + self.extent) / self.pixel))
        return slice(first, max(first + 1, last))

    def region(self, x0: float, x1: float, y0: float, y1: float) -> Region:
        """The part of the canvas covering [x0, x1] x [y0, y1] (canonical units)."""
        cols, rows = self._index(x0, x1), self._index(y0, y1)
        return Region(
            x=self._centres[cols].reshape(1, 1, -1),
            y=self._centres[rows].reshape(1, -1, 1),
            rgba=self.rgba[:, :, rows, cols],
            soft=self.soft,
        )

    def whole(self) -> Region:
        return self.region(-self.extent, self.extent, -self.extent, self.extent)


def ellipse(dx: Tensor, dy: Tensor, rx: Tensor | float, ry: Tensor | float) -> Tensor:
    """Approximate distance to an ellipse (Quilez' k0 (k0 - 1) / k1, exact gradient at
    the edge, so anti-aliasing is even all round). dx, dy: offsets from the centre."""
    ux, uy = dx / rx, dy / ry
    k0 = (ux * ux + uy * uy).sqrt_()
    vx, vy = ux / rx, uy / ry
    k1 = (vx * vx + vy * vy).sqrt_().clamp_(min=1e-6)
    return k0.sub(1.0).mul_(k0).div_(k1)


def circle(dx: Tensor, dy: Tensor, radius: Tensor | float) -> Tensor:
    return (dx * dx + dy * dy).sqrt_().sub_(radius)


def box(dx: Tensor, dy: Tensor, half_x: Tensor | float, half_y: Tensor | float,
        corner: Tensor | float = 0.0) -> Tensor:  # fmt: skip
    """Rounded box of half-sizes (half_x, half_y) with corner radius `corner`."""
    qx = dx.abs() - half_x + corner
    qy = dy.abs() - half_y + corner
    outside = (qx.clamp(min=0.0).square() + qy.clamp(min=0.0).square()).sqrt_()
    inside = torch.maximum(qx, qy).clamp_(max=0.0)
    return outside.add_(inside).sub_(corner)


def capsule(dx: Tensor, dy: Tensor, half_length: Tensor | float, radius: Tensor | float) -> Tensor:
    """A horizontal stroke from -half_length to +half_length with round caps. Bend it by
    passing a curved dy (e.g. dy - bend * dx**2): close to exact for gentle curves."""
    along = (dx.abs() - half_length).clamp(min=0.0)
    return (along * along + dy * dy).sqrt_().sub_(radius)


def intersect(a: Tensor, b: Tensor) -> Tensor:
    return torch.maximum(a, b)


def union(a: Tensor, b: Tensor) -> Tensor:
    return torch.minimum(a, b)


_NOISE_SIZE = 512  # texture side: any crop of up to 256 px fits without wrapping


def _noise_texture() -> Tensor:
    """A fixed (3, 512, 512) standard-normal texture, the same on every run."""
    generator = torch.Generator().manual_seed(20240613)
    return torch.randn(3, _NOISE_SIZE, _NOISE_SIZE, generator=generator)


_TEXTURE = _noise_texture()


def noise(seed: Tensor, height: int, width: int, channels: int = 3) -> Tensor:
    """(N, channels, height, width) standard-normal noise: for each face a crop of one
    fixed texture at an offset chosen by `seed` (N,) int64. Deterministic, and one
    gather for the batch instead of a generator per face."""
    assert channels <= 3 and height <= _NOISE_SIZE // 2 and width <= _NOISE_SIZE // 2
    windows = _TEXTURE[:channels].unfold(1, height, 1).unfold(2, width, 1)  # a view, no copy
    top = seed % (_NOISE_SIZE - height + 1)
    left = seed // _NOISE_SIZE % (_NOISE_SIZE - width + 1)
    return windows[:, top, left].transpose(0, 1)  # (N, C, h, w)
