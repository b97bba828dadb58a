"""Controls for a judge: pictures it must not call the target style, scored beside every
style verdict.

A classifier trained on built-in faces can be fooled: it has called noisy mosaics inside
a clean head outline "anime". So every style verdict comes with the share of these
controls the judge gives the same style, as the likeliest style and surely (p >=
`verdicts.CONFIDENT`, the rule for real faces); a verdict is only worth something while
they stay low (below CONTROL_LIMIT):

- `inputs`: the filter's inputs themselves (doing nothing);
- `blurred`: the inputs shrunk 3x and enlarged back (soft is not a style);
- `noise`: pictures of uniform noise (colours everywhere, no face);
- `scrambled`: the filter's own outputs with their faces cut into shuffled tiles
  (`degrade.scramble`): the colours, strokes and head outline of its outputs, no face.
  A judge trained with a `scrambled` class has seen such tiles of synthetic faces, not of
  these outputs; benchmarks/real_faces.py adds a broken filter's real mosaics, unseen.
"""

from __future__ import annotations

import torch
from torch import Tensor

from facefilter.degrade import scramble, shrink_blur
from facefilter.evaluation.verdicts import style_score
from facefilter.inference.predictor import Classifier

CONTROL_LIMIT = 0.2  # a judge that gives a control more of the style than this is fooled
CONTROL_SEED = 20261205  # the noise and tiles: the same controls on every run


def control_images(inputs: Tensor, outputs: Tensor) -> dict[str, Tensor]:
    """name -> (N, 3, H, W) pictures in [-1, 1] the judge must not call the target style."""
    generator = torch.Generator().manual_seed(CONTROL_SEED)
    noise = torch.rand(outputs.shape, generator=generator) * 2 - 1
    return {
        "inputs": inputs,
        "blurred": shrink_blur(inputs, 3.0),
        "noise": noise.to(outputs),
        "scrambled": scramble(outputs, generator),
    }


def judge_controls(
    judge: Classifier, style: str, inputs: Tensor, outputs: Tensor
) -> dict[str, dict[str, float]]:
    """Each control's share called `style`: as the likeliest style, and surely (p >=
    CONFIDENT, the rule of a verdict on real faces)."""
    scores = {}
    for name, images in control_images(inputs, outputs).items():
        score = style_score(judge.predict(images), judge.styles, style)
        scores[name] = {"share": score["share"], "confident": score["confident"]}
    return scores


def fooled(controls: dict[str, dict[str, float]]) -> list[str]:
    """The controls the judge calls the style surely more often than CONTROL_LIMIT."""
    return [name for name, score in controls.items() if score["confident"] > CONTROL_LIMIT]
