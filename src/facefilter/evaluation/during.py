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
from facefilter.evaluation.distribution import InceptionFeatures, distribution_score
from facefilter.evaluation.evaluate import load_faces
from facefilter.evaluation.paired import score_outputs
from facefilter.evaluation.truth import TrainedOn, plan
from facefilter.evaluation.verdicts import share
from facefilter.models.base import Family
from facefilter.models.targets import Direction

SPLIT = "val"  # held out from training, and apart from `eval`'s test split
MAX_DIRECTIONS = 6  # a trVAE of many classes: the first six directions only


@dataclass
class Check:
    """One direction's held-out faces and what they are scored against."""

    direction: Direction
    inputs: Tensor
    truths: Tensor | None  # paired truths (synthetic), else
    reference: Tensor | None  # real target faces, for KID


class TrainingEval:
    """Built once when training starts (a bad setting fails before the first step)."""

    def __init__(self, family: Family, trained: TrainedOn, *, seed: int, count: int,
                 classifier: str | Path | None = None,
                 inception: str | Path | None = None) -> None:  # fmt: skip
        if count < 2:
            raise UserError(f"--eval-count {count}: give at least 2 (top-1 and KID need two)")
        self.count, self.checks, self.features = count, [], None
        size = family.size
        if family.role == "classifier":
            self.faces = load_faces(trained.data or "", size, SPLIT, seed, count)
            return
        directions = family.directions()[:MAX_DIRECTIONS]
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
            inputs = load_faces(the_plan.inputs, size, SPLIT, seed, count).images
            truths = reference = None
            if the_plan.truth is not None:
                truths = load_faces(the_plan.truth, size, SPLIT, seed, count).images
            elif the_plan.reference is not None:
                reference = load_faces(the_plan.reference, size, SPLIT, seed, count).images
                self.features = self.features or feature_net(classifier, inception)
            self.checks.append(Check(direction, inputs, truths, reference))

    @torch.no_grad()
    def __call__(self, family: Family) -> dict[str, float]:
        """The held-out figures now, as `eval/...` log keys."""
        if family.role == "classifier":
            return self.accuracy(family)
        logs: dict[str, float] = {}
        for check in self.checks:
            module = family.translator(check.direction).to(family.device).eval()
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
                kid = distribution_score(outputs, check.reference, self.features,
                                         warn=lambda _: None)  # fmt: skip
                logs[f"{name}/kid_x100"] = kid.kid_x100
        return logs

    def accuracy(self, family: Any) -> dict[str, float]:
        verdict = family.predict(self.faces.images.to(family.device))
        logs = {}
        if family.attributes and self.faces.attrs is not None:
            guessed = verdict.attr_logits.cpu() > 0.5
            logs["eval/attr_acc"] = share(guessed == (self.faces.attrs > 0.5))
        if family.styles:
            styles = verdict.style_logits.cpu().argmax(1)
            logs["eval/style_acc"] = share(styles == self.faces.labels)
        return logs


def feature_net(classifier: str | Path | None, inception: str | Path | None) -> nn.Module:
    """What KID compares on real data: InceptionV3, else the classifier's features."""
    if inception:
        return InceptionFeatures(inception)
    if classifier:
        from facefilter.inference.classifier import Classifier

        return Classifier.load(classifier, "cpu", flag="--eval-classifier").feature_net()
    raise UserError(
        "--eval-every on real data logs KID, which compares features: give --eval-classifier "
        "RUN (facefilter train classifier) or --inception-weights FILE"
    )
