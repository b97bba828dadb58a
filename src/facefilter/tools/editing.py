"""What a feature editor's code space offers beyond `apply`: attribute vectors
recomputed on any data (`facefilter vectors`), the feature grid (`facefilter grid`)
and interpolation GIFs (`facefilter lerp`).

The grid and the edit GIFs go through `Filter` and `PhotoFilter`, like `apply`, so
they show exactly what users get (and work with the onnx engine, and, for the GIFs,
with any family: a CycleGAN's strength fades from the photo to the drawing). The
face-to-face morph interpolates codes, so it needs the autoencoder itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from facefilter.data.images import list_images, load_image
from facefilter.data.loading import Picked, held_out, spread_indices
from facefilter.data.sources import open_source
from facefilter.errors import UserError
from facefilter.inference.filter import Filter
from facefilter.inference.photo import PhotoFilter, Request
from facefilter.models import capable, require
from facefilter.models.capabilities import EditsCodes, Translates
from facefilter.models.targets import Direction
from facefilter.models.vectors import VectorFit, check_count, check_names
from facefilter.pictures import enlarge, labelled_grid
from facefilter.pixels import from_pixels, to_pixels
from facefilter.runs.config import WEIGHTS_FILE, read_run_config, write_json
from facefilter.runs.weights import load_editor, save_weights


def training_spec(run: Path, given: str | None, flag: str = "--data") -> str:
    """`given`, or the data the run trained on (recorded in its config.json)."""
    if given:
        return given
    spec = read_run_config(run).data_spec()
    if not spec:
        raise UserError(f"{run} records no training data; pass {flag} SPEC")
    return str(spec)


def parse_names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


@dataclass
class VectorsReport:
    fit: VectorFit
    spec: str
    faces: int  # faces in the data
    chosen: list[str]  # the attributes computed (those of the model that the data has)
    have: dict[str, int]  # faces of the data with each attribute


def compute_vectors(
    run: Path, spec: str | None = None, count: int | None = None, attributes: str | None = None
) -> VectorsReport:
    """Recompute the run's attribute vectors on `spec` and save them in model.safetensors.

    Without `count`, up to the run's --vector-count faces with, and as many without, each
    attribute are averaged (fewer where the data has fewer); an explicit `count` must be
    met for every attribute. An attribute no face of the data has (or every face has)
    loses its vector (the report says which).
    """
    run = Path(run)
    if read_run_config(run).onnx is not None:
        raise UserError(f"{run} is an ONNX export; compute vectors in the run directory")
    family = load_editor(run)
    spec = training_spec(run, spec)
    if count is not None and count < 1:
        raise UserError(f"--count {count} must be at least 1")
    source = open_source(spec, family.size, "train")
    table = source.attribute_table()
    if table is None:
        raise UserError(f"{spec} has no attribute table; use synth:photo or celeba:DIR")
    chosen = parse_names(attributes)
    check_names(chosen, source.attr_names, "--attributes (the data's table)")
    check_names(chosen, family.domains, "--attributes (the attributes this model learned)")
    shared = [name for name in (chosen or family.domains) if name in source.attr_names]
    if count is not None:
        check_count(table, source.attr_names, shared, count)
    weights = run / WEIGHTS_FILE
    with safe_open(weights, "pt") as handle:
        step = int((handle.metadata() or {}).get("step", 0))
    used = count or family.vector_count  # up to this many, fewer where there are fewer
    fit = family.fit_vectors(Picked(source, ("attrs",)), used, chosen or None)
    save_weights(weights, family, step)
    config = read_run_config(run)
    config.extra["vectors"] = {"data": spec, "count": used,
                               "attributes": family.edited_attributes()}  # fmt: skip
    write_json(config.source, config.to_dict())
    have = dict(zip(source.attr_names, (table > 0.5).sum(0).tolist(), strict=True))
    return VectorsReport(fit, spec, len(source), shared, have)


def read_faces(
    photo_filter: PhotoFilter, inputs: Sequence[Path], spec: str | None, count: int
) -> tuple[list[np.ndarray], list[str]]:
    """Face crops (S, S, 3) uint8 and their names: from image files and folders (each
    photo's largest face, aligned), or else `count` held-out faces of `spec`."""
    if inputs:
        paths = [p for path in inputs for p in (list_images(path) if path.is_dir() else [path])]
        missing = [path for path in paths if not path.is_file()]
        if missing or not paths:
            raise UserError(f"no image at {missing[0] if missing else inputs[0]}")
        paths = paths[:count]
        crops = [photo_filter.face_crop(np.asarray(load_image(p)), str(p)) for p in paths]
        return crops, [p.stem for p in paths]
    if spec is None:
        raise UserError("give face images, or --data SPEC to take held-out faces from")
    train = open_source(spec, photo_filter.size, "train")
    source = held_out(spec, photo_filter.size, 0, train)  # the training set when none is held out
    chosen = spread_indices(len(source), count)
    images = torch.stack([source[i]["image"] for i in chosen])
    crops = list(to_pixels(images).permute(0, 2, 3, 1).numpy())
    return crops, [f"face {i}" for i in chosen]


def edited_attributes(flt: Filter) -> list[str]:
    """The attributes `flt` edits; UserError when it edits none."""
    offered = list(dict.fromkeys(d.target.name for d in flt.directions if d.target.is_edit))
    if not offered:
        run = flt.config.source.parent
        require(flt.config.family, EditsCodes, run)
        raise UserError(f"{run} has no attribute vectors yet: facefilter vectors {run}")
    return offered


def feature_grid(
    flt: Filter, crops: Sequence[np.ndarray], names: Sequence[str], attributes: Sequence[str],
    strength: float, enlarge_by: int = 1,
) -> np.ndarray:  # fmt: skip
    """Rows: faces; columns: the face, then each attribute added and removed (the
    write-up's feature grid), labelled."""
    offered = edited_attributes(flt)
    check_names(attributes, offered, "--attributes")
    chosen = list(attributes) or offered
    columns = [flt.resolve(f"{sign}{name}") for name in chosen for sign in "+-"]
    outputs = [flt.translate_crops(list(crops), d, strength) for d in columns]
    tiles = np.stack([np.stack([crop, *row]) for crop, *row in zip(crops, *outputs, strict=True)])
    labels = ["face", *(str(d.target) for d in columns)]
    title = (
        f"{flt.config.family}: each attribute added (+) and removed (-) at strength {strength:g}"
    )
    return labelled_grid(enlarge(tiles, enlarge_by), rows=list(names), columns=labels, title=title)


def edit_frames(
    photo_filter: PhotoFilter, image: np.ndarray, direction: Direction, frames: int
) -> list[np.ndarray]:
    """The photo as the edit grows from strength 0 (the photo) to 1 (`direction` in full,
    e.g. -Smiling=2: z - 2 v), faces pasted back: one frame per strength."""
    strengths = [float(s) for s in np.linspace(0.0, 1.0, frames)]
    first = photo_filter(image, Request((direction,), strengths[0]))  # no face: says so here
    # the faces found once, so every frame pastes onto the same faces
    later = [photo_filter(image, Request((direction,), s), found=first.faces).photos[0]
             for s in strengths[1:]]  # fmt: skip
    return [first.photos[0], *later]


def morph_frames(
    family: Translates, run: Path, start: np.ndarray, end: np.ndarray, frames: int
) -> list[np.ndarray]:
    """Decodes of the codes between two face crops: the autoencoder's own interpolation."""
    model = capable(family, EditsCodes, run)
    images = [from_pixels(np.array(crop)).permute(2, 0, 1)[None] for crop in (start, end)]
    weights = np.linspace(0.0, 1.0, frames).tolist()
    decoded = model.interpolate(images[0], images[1], weights)[:, 0]  # (frames, 3, S, S)
    return list(to_pixels(decoded).permute(0, 2, 3, 1).cpu().numpy())
