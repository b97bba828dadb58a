"""`train --eval-every N`: held-out scores logged while a model trains.

Every N steps the model (its EMA networks where it keeps them: what `apply` would run)
is scored on a fixed held-out set, the val split of its own training data (`eval` uses
the test split, so the final figures stay on faces no choice was made on):
- synthetic data, where the renderer knows the true outputs: L1, SSIM and identity top-1
  of every direction (at most MAX_DIRECTIONS);
- real data: KID x 100 against the target domain's held-out faces, on the features of
  `--eval-classifier RUN` or of InceptionV3 (`--inception-weights`);
- a classifier: its held-out accuracy.
The figures go to metrics.jsonl, TensorBoard and loss.png under `eval/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from facefilter.errors import UserError
from facefilter.evaluation.distribution import (
    InceptionFeatures,
    check_counts,
    extract,
    feature_count,
    feature_score,
)
from facefilter.evaluation.evaluate import Faces, load_faces, seen_in_training
from facefilter.evaluation.paired import score_outputs
from facefilter.evaluation.truth import TrainedOn, plan
from facefilter.evaluation.verdicts import accuracy
from facefilter.models import capable, offers
from facefilter.models.base import Family
from facefilter.models.capabilities import Predicts, Translates
from facefilter.models.targets import Direction

SPLIT = "val"  # held out from training, and apart from `eval`'s test split
MAX_DIRECTIONS = 6  # a trVAE of many classes: the first six directions only


@dataclass
class Check:
    """One direction's held-out faces and what they are scored against."""

    direction: Direction
    inputs: Tensor
    truths: Tensor | None  # paired truths (synthetic), else
    reference: Tensor | None  # the features of real target faces, for KID: (N, D), made once


class TrainingEval:
    """Built once when training starts (a bad setting fails before the first step)."""

    def __init__(self, family: Family, trained: TrainedOn, *, seed: int, count: int,
                 classifier: str | Path | None = None,
                 inception: str | Path | None = None) -> None:  # fmt: skip
        if count < 2:
            raise UserError(f"--eval-count {count}: give at least 2 (top-1 and KID need two)")
        self.count, self.checks, self.features = count, [], None
        self.notes: list[str] = []  # said when training starts
        size = family.size
        if offers(family.registry_name, Predicts):
            self.faces = self.held_out(trained.data or "", size, seed)
            return
        directions = capable(family, Translates).directions()[:MAX_DIRECTIONS]
        if not directions:
            raise UserError(
                f"--eval-every: a {family.registry_name} run offers no translation until "
                "training ends (its attribute vectors come last); score the finished run "
                "with `facefilter eval RUN --to +ATTRIBUTE`"
            )
        for direction in directions:
            try:
                the_plan = plan(trained, direction)
            except UserError as error:  # its advice is eval's: say whose it is
                raise UserError(
                    f"--eval-every cannot score {direction}: {error}, then score "
                    "the finished run with `facefilter eval`"
                ) from None
            inputs = self.held_out(the_plan.inputs, size, seed).images
            truths = reference = None
            if the_plan.truth is not None:
                truths = self.held_out(the_plan.truth, size, seed).images
            elif the_plan.reference is not None:
                faces = self.held_out(the_plan.reference, size, seed).images
                self.features = self.features or feature_net(classifier, inception)
                check_counts(len(inputs), len(faces), feature_count(self.features),
                             warn=lambda _: None)  # too few fails now, not at step N  # fmt: skip
                reference = extract(self.features, faces)
            self.checks.append(Check(direction, inputs, truths, reference))

    def held_out(self, spec: str, size: Any, seed: int) -> Faces:
        """`count` faces of the val split of `spec`; a note where training sees them too."""
        faces = load_faces(spec, size, SPLIT, seed, self.count)
        trained_on = seen_in_training(faces, size, seed)
        if trained_on:
            self.notes.append(f"note: --eval-every: {trained_on} of the {len(faces.images)} "
                              f"held-out faces of {spec} are training faces too (the data "
                              "have no val split of their own)")  # fmt: skip
        return faces

    @torch.no_grad()
    def __call__(self, family: Family) -> dict[str, float]:
        """The held-out figures now, as `eval/...` log keys."""
        if offers(family.registry_name, Predicts):
            return self.accuracy(capable(family, Predicts))
        translator, logs = capable(family, Translates), dict[str, float]()
        for check in self.checks:
            module = translator.translator(check.direction).to(family.device).eval()
            outputs = torch.cat([
                module(batch.to(family.device), torch.ones(len(batch), device=family.device))
                .clamp(-1, 1).cpu() for batch in check.inputs.split(32)
            ])  # fmt: skip
            name = f"eval/{check.direction.source}->{check.direction.target}"
            if check.truths is not None:
                score = score_outputs(outputs, check.truths)
                logs |= {f"{name}/l1": score.l1, f"{name}/ssim": score.ssim,
                         f"{name}/top1": score.top1}  # fmt: skip
            elif check.reference is not None and self.features is not None:
                kid = feature_score(extract(self.features, outputs), check.reference,
                                    self.features, warn=lambda _: None)  # fmt: skip
                logs[f"{name}/kid_x100"] = kid.kid_x100
        return logs

    def accuracy(self, family: Predicts) -> dict[str, float]:
        verdict = family.predict(self.faces.images.to(family.device))
        verdict = type(verdict)(*(part.cpu() for part in verdict))
        found = accuracy(verdict, self.faces.attrs, self.faces.labels, family.attributes,
                         family.styles)  # fmt: skip
        names = {"mean_accuracy": "eval/attr_acc", "style_accuracy": "eval/style_acc"}
        return {names[key]: value for key, value in found.items() if key in names}


def feature_net(classifier: str | Path | None, inception: str | Path | None) -> nn.Module:
    """What KID compares on real data: InceptionV3, else the classifier's features."""
    if inception:
        return InceptionFeatures(inception)
    if classifier:
        from facefilter.inference.predictor import Classifier

        return Classifier.load(classifier, "cpu", flag="--eval-classifier").feature_net()
    raise UserError(
        "--eval-every on real data logs KID, which compares features: give --eval-classifier "
        "RUN (facefilter train classifier) or --inception-weights FILE"
    )
