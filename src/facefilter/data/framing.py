"""Where a data set puts the face in its square images: the framing `apply` must copy.

A model only works on crops framed like its training data. A framing is the pair
(`eye_height`, `eye_distance`) of `facefilter.face.AlignConfig`, fractions of the crop
side, recorded in each run's config.json at training time and read back by `apply`:

- `synth:` faces: measured from the renderer's own geometry (eyes, nose, mouth of each
  style's look, posed as the renderer poses them), averaged over many faces: anime
  eyes sit lower and closer than a photo's, so each style has its own framing;
- `celeba:` aligned crops: CelebA's 178x218 alignment template, centre-cropped square
  as the loader does (short side, centred: rows 20..198), unless the folder records a
  framing of its own (what `facefilter data label` writes);
- `folder:`, `unpaired:`, `classes:`: the framing `facefilter data crop` writes, so
  crops made with it match.

Each framing is the template of `face.template.unit_template` that best fits (least
squares) the data set's mean 5 landmarks in the unit square.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facefilter.face.template import MOUTH_DROP, MOUTH_WIDTH, NOSE_DROP, AlignConfig
from facefilter.sizes import ImageSize

# CelebA's img_align_celeba template (178x218 px): left eye, right eye, nose, mouth corners.
CELEBA_ALIGNED_POINTS = np.array(
    [[69, 111], [108, 111], [88, 136], [72, 152], [105, 152]], dtype=np.float64
)
CELEBA_ALIGNED_SIZE = (178, 218)  # width, height
CROP_FRAMING = {"eye_height": AlignConfig.eye_height, "eye_distance": AlignConfig.eye_distance}
SYNTH_MEASURED_FACES = 1024  # enough for the mean to settle to 1e-3
SYNTH_LOOK = "photo"  # a synth: spec of several styles is framed as its first, or as photos


def fit_framing(unit_points: np.ndarray) -> dict[str, float]:
    """The (eye_height, eye_distance) whose template best fits 5 points in the unit square.

    The template is linear in both: x = 0.5 + a * d, y = h + b * d, so this is one small
    least-squares solve over the 10 coordinates.
    """
    points = np.asarray(unit_points, np.float64)
    assert points.shape == (5, 2), points.shape
    across = np.array([-0.5, 0.5, 0.0, -MOUTH_WIDTH / 2, MOUTH_WIDTH / 2])  # x per unit d
    drop = np.array([0.0, 0.0, NOSE_DROP, MOUTH_DROP, MOUTH_DROP])  # y per unit d
    design = np.concatenate(
        [np.stack([np.zeros(5), across], 1), np.stack([np.ones(5), drop], 1)]
    )  # (10, 2) columns: h, d
    rhs = np.concatenate([points[:, 0] - 0.5, points[:, 1]])  # (10,)
    (height, distance), *_ = np.linalg.lstsq(design, rhs, rcond=None)
    return {"eye_height": round(float(height), 4), "eye_distance": round(float(distance), 4)}


def celeba_framing() -> dict[str, float]:
    """CelebA's aligned template after the loader's centre square crop."""
    width, height = CELEBA_ALIGNED_SIZE
    side = min(width, height)
    offset = np.array([(width - side) / 2, (height - side) / 2])
    # Landmarks are pixel indices; pixel i covers [i, i + 1) in unit terms after / side.
    unit = (CELEBA_ALIGNED_POINTS - offset + 0.5) / side
    return fit_framing(unit)


@cache
def synth_framing(style: str = SYNTH_LOOK) -> dict[str, float]:
    """The mean landmarks of the built-in synthetic faces of `style`, from their geometry."""
    from facefilter.synth import sample_params

    unit = synth_landmarks(sample_params(SYNTH_MEASURED_FACES, seed=0), style)
    return fit_framing(unit.mean(0).double().numpy())


def synth_landmarks(params: Any, style: str = SYNTH_LOOK) -> torch.Tensor:
    """The 5 landmarks of each synthetic face of `params` drawn in `style`, in the unit
    square of its image, as `Face.landmarks` orders them. (N, 5, 2)"""
    from facefilter.synth import LOOKS, geometry

    g = geometry(params, LOOKS[style if style in LOOKS else SYNTH_LOOK])
    flat = {name: getattr(g, name).reshape(-1) for name in ("eye_x", "eye_y", "nose_y")}
    mouth_y, mouth_w = g.mouth_y.reshape(-1), g.mouth_w.reshape(-1)
    zero = torch.zeros_like(mouth_y)
    canonical = torch.stack(
        [
            torch.stack([-flat["eye_x"], flat["eye_y"]], 1),
            torch.stack([flat["eye_x"], flat["eye_y"]], 1),
            torch.stack([zero, flat["nose_y"]], 1),
            torch.stack([-mouth_w, mouth_y], 1),
            torch.stack([mouth_w, mouth_y], 1),
        ],
        1,
    )  # (N, 5, 2) face-plane units, y down
    # The renderer poses the face plane q at image point p = centre + scale * R(angle) q,
    # image units [-1, 1] (synth._pose_grid inverts exactly this).
    cos, sin = params.angle.cos()[:, None], params.angle.sin()[:, None]
    qx, qy = canonical[..., 0], canonical[..., 1]
    scale = params.scale[:, None]
    px = params.centre[:, :1] + scale * (qx * cos - qy * sin)
    py = params.centre[:, 1:] + scale * (qx * sin + qy * cos)
    return (torch.stack([px, py], -1) + 1) / 2


def framing_for_spec(spec: str | None) -> dict[str, float]:
    """The framing of the images a data spec names (see the module docstring)."""
    if spec is None:
        return dict(CROP_FRAMING)
    from facefilter.data.prepare import recorded_framing  # `data crop` wrote the folder?
    from facefilter.data.spec import parse_spec

    source = parse_spec(spec)
    if source.kind == "synth":
        return synth_framing(source.path.split(",")[0])
    if source.kind == "emoji":  # drawn, not cropped: no `data crop` record to look for
        return dict(CROP_FRAMING)
    recorded = recorded_framing(Path(source.path).expanduser())
    if source.kind == "celeba":  # `data label` writes a CelebA layout of its own crops
        return recorded or celeba_framing()
    return recorded or dict(CROP_FRAMING)


def domain_framings(
    domains: Sequence[str], data: str | None, data_a: str | None, data_b: str | None
) -> dict[str, dict[str, float]]:
    """Each domain's framing, so `apply` aligns a face as its source domain was framed
    (B -> A aligns like the B data): the two sets of a two-domain run, each style of a
    synthetic set of several, else the one set's framing for every domain."""
    if data_a is not None and data_b is not None and len(domains) == 2:
        return {domains[0]: framing_for_spec(data_a), domains[1]: framing_for_spec(data_b)}
    from facefilter.data.spec import parse_spec

    styles = parse_spec(data).path.split(",") if data and data.startswith("synth:") else []
    return {domain: synth_framing(domain) if domain in styles else framing_for_spec(data)
            for domain in domains}  # fmt: skip


def align_config(
    framing: dict[str, float] | None, size: int | ImageSize, margin: float | None = None
) -> AlignConfig:
    """An AlignConfig at `size` with a recorded framing (the crop framing when None);
    `margin`, when given (0 included), overrides the recorded one. A non-square size is
    the middle of the square at its longer side, as the training data cut it."""
    framing = framing or CROP_FRAMING
    size = ImageSize.parse(size)
    return AlignConfig(
        size=size.side,
        crop=None if size.square else (size.width, size.height),
        margin=float(framing.get("margin", 0.0)) if margin is None else margin,
        eye_height=float(framing["eye_height"]),
        eye_distance=float(framing["eye_distance"]),
    )
