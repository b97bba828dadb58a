"""`facefilter eval`: a filter (or a classifier) measured on held-out faces.

A filter runs through the same `Filter` that `apply` uses (torch or onnxruntime), on
face crops read as its training data were, and is scored
- against the true outputs where the renderer knows them (`truth.plan`): L1, SSIM,
  identity top-1 retrieval, LPIPS with backbone weights;
- against real faces of the target domain: FID and KID;
- for identity, with dlib's face descriptors of each input and its output;
- with the attribute classifier: the style the outputs look, and for edits and
  makeovers, whether the edited attributes changed and the others stayed.
Every score has its "do nothing" twin (the inputs themselves), the bar to beat.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from facefilter.data.loading import spread_indices
from facefilter.data.sources import open_source
from facefilter.errors import UserError
from facefilter.evaluation.controls import fooled, judge_controls
from facefilter.evaluation.distribution import (
    InceptionFeatures,
    check_counts,
    extract,
    feature_count,
    feature_score,
)
from facefilter.evaluation.lpips import LPIPS, lpips_distances
from facefilter.evaluation.paired import score_outputs
from facefilter.evaluation.truth import Plan, TrainedOn, plan
from facefilter.evaluation.verdicts import attribute_success, style_score
from facefilter.inference.filter import Filter
from facefilter.inference.predictor import Classifier
from facefilter.models.targets import Direction
from facefilter.pixels import to_pixels
from facefilter.sizes import ImageSize


@dataclass
class Faces:
    """Face crops of one data spec, with what its table says of them."""

    images: Tensor  # (N, 3, H, W) in [-1, 1]
    attrs: Tensor | None  # (N, A) in {0, 1}, the source's own table
    labels: Tensor  # (N,) class index
    spec: str
    available: int  # faces the spec's split holds (N is at most this)
    attr_names: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    split: str = "test"
    source: Any = None  # the ImageSource they came from
    chosen: list[int] = field(default_factory=list)  # their positions in it


def load_faces(spec: str, size: ImageSize, split: str, seed: int, count: int | None,
               flag: str = "--data") -> Faces:  # fmt: skip
    """`count` faces (all without it) of `spec`'s `split`, at `size`, spread evenly over
    it: a source of several classes lists each class's faces together, and its first N
    would all be of one. Two specs of equal length give the same positions (pairs stay
    pairs)."""
    source = open_source(spec, size, split, seed=seed)
    n = len(source) if count is None else min(count, len(source))
    if n < 1:
        hint = " (a synthetic set holds out two faces in ten, one for val, one for test: " \
               "raise its count=)" if spec.startswith("synth:") else ""  # fmt: skip
        raise UserError(f"{spec} holds no faces in its {split} split{hint}; give other {flag}")
    chosen = spread_indices(len(source), n)
    items = [source[i] for i in chosen]
    attrs = torch.stack([it["attrs"] for it in items]) if "attrs" in items[0] else None
    return Faces(torch.stack([it["image"] for it in items]), attrs,
                 torch.tensor([it["label"] for it in items]), spec, len(source),
                 list(source.attr_names), list(source.class_names), split, source,
                 chosen)  # fmt: skip


def seen_in_training(faces: Faces, size: ImageSize, seed: int) -> int:
    """How many of `faces` their spec's train split holds too (a folder with no split
    folders gives every split all its images), by the sources' identities. It opens the
    train split, so only the faces that need the answer ask."""
    mine = faces.source.identities()
    if faces.split == "train" or mine is None:
        return len(faces.chosen) if faces.split == "train" else 0
    trained = set(open_source(faces.spec, size, "train", seed=seed).identities() or ())
    return sum(mine[i] in trained for i in faces.chosen)


@dataclass
class Tools:
    """The optional networks an evaluation uses, each loaded once."""

    classifier: Classifier | None = None
    features: nn.Module | None = None  # for FID / KID: InceptionV3, else the classifier's
    lpips: LPIPS | None = None
    describer: Any = None  # face.identity.FaceDescriber, when dlib is installed
    notes: list[str] = field(default_factory=list)


def load_tools(
    classifier: Path | None, inception: Path | None, lpips: Path | None, identity: bool,
    device: str | None = None,
) -> Tools:  # fmt: skip
    """Every network asked for, before any face is filtered (a bad file fails first)."""
    tools = Tools()
    if classifier is not None:
        tools.classifier = Classifier.load(classifier, device)
    if inception is not None:
        tools.features = InceptionFeatures(inception)
    elif tools.classifier is not None:
        tools.features = tools.classifier.feature_net()
    else:
        tools.notes.append("no --classifier or --inception-weights: style, attribute success, "
                           "FID and KID left out")  # fmt: skip
    if lpips is not None:
        tools.lpips = LPIPS(lpips)
    if identity:
        from facefilter.face.identity import FaceDescriber

        try:
            tools.describer = FaceDescriber()
        except UserError as error:
            tools.notes.append(f"identity (dlib) left out: {error}")
    return tools


def translate_all(flt: Filter, images: Tensor, direction: Direction, strength: float,
                  batch_size: int = 32) -> Tensor:  # fmt: skip
    """Every face through the filter, in batches, on the CPU."""
    parts = [flt.translate(images[i : i + batch_size], direction, strength).cpu()
             for i in range(0, len(images), batch_size)]  # fmt: skip
    return torch.cat(parts)


def crops(images: Tensor) -> list[np.ndarray]:
    """(N, 3, H, W) in [-1, 1] -> N (H, W, 3) uint8 pictures."""
    return list(to_pixels(images).permute(0, 2, 3, 1).numpy())


@dataclass
class FilterEval:
    """What one direction's evaluation found: the figures, and faces for the sheet."""

    metrics: dict[str, Any]
    inputs: Tensor
    outputs: Tensor
    truths: Tensor | None


def evaluate_direction(
    flt: Filter, direction: Direction, the_plan: Plan, tools: Tools, *, split: str, seed: int,
    count: int | None, strength: float = 1.0,
) -> FilterEval:  # fmt: skip
    """Score `flt` on `direction` as `the_plan` says (see the module docstring)."""
    faces = load_faces(the_plan.inputs, flt.size, split, seed, count)
    truths = None
    if the_plan.truth is not None:
        paired_faces = load_faces(the_plan.truth, flt.size, split, seed, count, "--truth")
        if paired_faces.available != faces.available:  # face i must be truth i
            raise UserError(f"--truth {the_plan.truth} holds {paired_faces.available} faces "
                            f"in its {split} split for {faces.available} inputs of "
                            f"{the_plan.inputs}; pair them one to one")  # fmt: skip
        truths = paired_faces.images
    outputs = translate_all(flt, faces.images, direction, strength)
    metrics: dict[str, Any] = {}
    if truths is not None:
        metrics["paired"] = paired(outputs, faces.images, truths, tools)
    if tools.features is not None and the_plan.reference is not None:
        metrics |= distribution(outputs, faces.images, the_plan, tools,
                                lambda spec: load_faces(spec, flt.size, split, seed, count,
                                                        "--reference").images)  # fmt: skip
    if tools.describer is not None:
        align = flt.align_config(direction.source)
        before = tools.describer.describe_all(crops(faces.images), align)
        after = tools.describer.describe_all(crops(outputs), align)
        from facefilter.face.identity import identity_summary

        metrics["identity_dlib"] = identity_summary(before, after)
    if tools.classifier is not None:
        metrics |= judged(tools.classifier, faces.images, outputs, truths, the_plan, direction)
    trained_on = seen_in_training(faces, flt.size, seed) if the_plan.own_data else 0
    if trained_on:
        the_plan.notes.append(f"{trained_on} of the {len(faces.images)} faces are in the "
                              "training split too (the data have no held-out split of their "
                              "own): these figures are not on unseen faces")  # fmt: skip
    about = protocol(flt, direction, the_plan, faces, split, strength, tools)  # notes now whole
    return FilterEval({"protocol": about, **metrics}, faces.images, outputs, truths)


def distribution(
    outputs: Tensor, inputs: Tensor, the_plan: Plan, tools: Tools,
    load: Callable[[str], Tensor],
) -> dict[str, Any]:  # fmt: skip
    """FID and KID of the outputs and of doing nothing against the reference faces. A
    reference too small for FID is an error when asked for (--reference, or InceptionV3
    weights), else a note: the other figures stand."""
    assert the_plan.reference is not None and tools.features is not None

    def keep(note: str) -> None:  # in the protocol, and so printed under the table
        the_plan.notes.append(note.removeprefix("note: "))

    features = tools.features
    try:
        reference = load(the_plan.reference)
        check_counts(len(outputs), len(reference), feature_count(features), lambda _: None)
    except UserError as error:
        if the_plan.reference_given or getattr(features, "comparable", False):
            raise
        the_plan.notes.append(f"FID and KID left out: {error}")
        return {}
    real = extract(features, reference)  # once for the filter and for doing nothing
    filtered = feature_score(extract(features, outputs), real, features, warn=keep)
    nothing = feature_score(extract(features, inputs), real, features, warn=lambda _: None)
    return {"distribution": {"filter": filtered.to_dict(), "do_nothing": nothing.to_dict()}}


def paired(outputs: Tensor, inputs: Tensor, truths: Tensor, tools: Tools) -> dict[str, Any]:
    """L1, SSIM, top-1 (and LPIPS) of the outputs and of doing nothing, against the truth."""
    rows: dict[str, Any] = {}
    for name, images in (("filter", outputs), ("do_nothing", inputs)):
        score = score_outputs(images, truths)
        rows[name] = {"l1": score.l1, "ssim": score.ssim, "top1": score.top1}
        if tools.lpips is not None:
            rows[name]["lpips"] = float(lpips_distances(tools.lpips, images, truths).mean())
    rows["filter"]["spread"] = float(outputs.std(0).mean())  # 0 for one face for all inputs
    rows["chance_top1"] = 1 / len(outputs)
    return rows


def judged(
    classifier: Classifier, inputs: Tensor, outputs: Tensor, truths: Tensor | None,
    the_plan: Plan, direction: Direction,
) -> dict[str, Any]:  # fmt: skip
    """The classifier's view: the outputs' style, and what changed of their attributes."""
    before, after = classifier.predict(inputs), classifier.predict(outputs)
    truth = classifier.predict(truths) if truths is not None else None
    style = the_plan.style or (direction.target.name if direction.target.name in
                               classifier.styles else None)  # fmt: skip
    result: dict[str, Any] = {}
    if classifier.styles:
        wanted = style_score(after, classifier.styles, style)
        if wanted:
            nothing = style_score(before, classifier.styles, style)
            wanted["do_nothing_share"] = nothing["share"]
            wanted["do_nothing_confident"] = nothing["confident"]
            wanted["controls"] = judge_controls(classifier, wanted["style"], inputs, outputs)
            wanted["fooled_by"] = fooled(wanted["controls"])
            result["style"] = wanted
    if classifier.attributes:
        result["attributes"] = attribute_success(before, after, classifier.attributes,
                                                 the_plan.edited, truth)  # fmt: skip
    return result


def protocol(
    flt: Filter, direction: Direction, the_plan: Plan, faces: Faces, split: str,
    strength: float, tools: Tools,
) -> dict[str, Any]:  # fmt: skip
    """How the figures were made: what a reader needs to compare them with others."""
    features = getattr(tools.features, "name", None)
    comparable = bool(getattr(tools.features, "comparable", False))
    return {
        "direction": str(direction),
        "strength": strength,
        "inputs": the_plan.inputs,
        "split": split,
        "count": len(faces.images),
        "available": faces.available,
        "truth": the_plan.truth,
        "reference": the_plan.reference if tools.features is not None else None,
        "image_size": str(flt.size),
        "engine": type(flt.backend).__name__.removesuffix("Backend").lower(),
        "precision": flt.precision,
        "features": features,
        "features_comparable_with_published": comparable if features else None,
        "resize": "FID/KID: InceptionV3 resizes to 299 px itself" if comparable else (
            "outputs at the model's size; the classifier resizes them to its own" if (
                tools.classifier) else "outputs at the model's size"),
        "classifier": str(tools.classifier.path) if tools.classifier else None,
        "notes": [*the_plan.notes, *tools.notes],
    }  # fmt: skip


def evaluate_filter(
    run: Path, target: str | None, source: str | None, tools: Tools, *, data: str | None = None,
    truth: str | None = None, reference: str | None = None, split: str = "test",
    count: int | None = None, strength: float = 1.0, engine: str = "torch",
    device: str | None = None, precision: str = "fp32", threads: int | None = None,
) -> list[FilterEval]:  # fmt: skip
    """Every direction `target` names (`all`: each one), each scored on its own plan."""
    flt = Filter.load(run, engine=engine, device=device, precision=precision,  # type: ignore[arg-type]
                      threads=threads)  # fmt: skip
    target = flt.target_or_only(target)
    if count is not None and count < 2:
        raise UserError(f"--count {count}: give at least 2 faces (top-1 and FID need two)")
    if not math.isfinite(strength) or strength < 0:
        raise UserError(f"--strength {strength} must be a number >= 0")
    trained = TrainedOn.of_run(flt.config)
    seed = flt.config.seed  # synth: specs default to the run's seed
    results = []
    for direction in flt.expand(target, source):
        the_plan = plan(trained, direction, data, truth, reference)
        results.append(evaluate_direction(flt, direction, the_plan, tools, split=split,
                                          seed=seed, count=count, strength=strength))  # fmt: skip
    return results
