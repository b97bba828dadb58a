"""Scores from the attribute classifier's verdicts: style, attribute success, accuracy.

A verdict is "present" where the classifier's probability is above one half. Shares are
over faces (and attributes, where several are pooled), in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from facefilter.models.classifier import Verdict


def share(hits: Tensor) -> float:
    return float(hits.float().mean()) if hits.numel() else float("nan")


# A judge's verdict on real faces: the style only where it is this sure. Built-in faces of
# a style get p >= 0.98 (the 1st percentile, 200 held-out anime faces); a broken filter's
# mosaics often get the style as the likeliest at p 0.4 to 0.9, and that is not a verdict.
CONFIDENT = 0.9


def style_score(verdict: Verdict, styles: Sequence[str], style: str | None) -> dict[str, Any]:
    """Does each output look like `style`? The share the classifier puts there, the share
    it puts there with p >= CONFIDENT, and its mean probability (empty when the
    classifier knows no such style)."""
    if style is None or style not in styles:
        return {}
    column = list(styles).index(style)
    probabilities = verdict.style_logits  # softmax already
    return {
        "style": style,
        "share": share(probabilities.argmax(1) == column),
        "confident": share(probabilities[:, column] >= CONFIDENT),
        "probability": float(probabilities[:, column].mean()),
    }


def attribute_success(
    before: Verdict, after: Verdict, attributes: Sequence[str], edited: dict[str, bool],
    truth: Verdict | None = None,
) -> dict[str, Any]:  # fmt: skip
    """For each edited attribute, the share of faces with the wanted value before and after
    the filter, and `success`: of the (face, attribute) verdicts that were not the wanted
    value before, the share that is after (an attribute every face already had as wanted,
    a man's absent lipstick, counts for nothing), and with true outputs their share (what
    the judge calls a perfect filter's outputs). Over every other attribute, the share of
    verdicts the filter left as they were ("kept"); with true outputs, the share of all
    verdicts that match theirs."""
    yes_before, yes_after = before.attr_logits > 0.5, after.attr_logits > 0.5
    names = list(attributes)
    result: dict[str, Any] = {"edited": {}, "unknown": [n for n in edited if n not in names]}
    changes: list[Tensor] = []  # per edited attribute: wanted after, where it was not before
    for name, wanted in edited.items():
        if name in names:
            column = names.index(name)
            had, has = yes_before[:, column] == wanted, yes_after[:, column] == wanted
            result["edited"][name] = {
                "wanted": wanted,
                "before": share(had),
                "after": share(has),
                "changed": share(has[~had]),
            }
            if truth is not None:  # the control: how often the judge sees it in the truth
                is_true = (truth.attr_logits[:, column] > 0.5) == wanted
                result["edited"][name]["truth"] = share(is_true)
            changes.append(has[~had])
    others = [i for i, name in enumerate(names) if name not in edited]
    result["kept"] = share(yes_before[:, others] == yes_after[:, others]) if others else None
    if truth is not None:
        result["agree_with_truth"] = share(yes_after == (truth.attr_logits > 0.5))
    if changes:
        result["success"] = share(torch.cat(changes))  # nan when nothing needed changing
    return result


def accuracy(
    verdict: Verdict, attrs: Tensor | None, labels: Tensor | None, attributes: Sequence[str],
    styles: Sequence[str], classes: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The classifier against a table's own labels: per attribute, its accuracy and that of
    always answering the commoner value (the bar a useless classifier meets). The style
    confusion has a row per class of the data (`classes`, the first of `styles`) and a
    column per style the classifier can answer."""
    result: dict[str, Any] = {"attributes": {}}
    if attrs is not None and len(attributes):
        truth = attrs > 0.5
        guessed = verdict.attr_logits > 0.5
        for column, name in enumerate(attributes):
            present = share(truth[:, column])
            result["attributes"][name] = {
                "accuracy": share(guessed[:, column] == truth[:, column]),
                "majority": max(present, 1 - present),
                "present": present,
            }
        result["mean_accuracy"] = share(guessed == truth)
        result["mean_majority"] = sum(a["majority"] for a in result["attributes"].values()) / len(
            attributes
        )
    if labels is not None and len(styles) > 1:
        result["style_accuracy"] = share(verdict.style_logits.argmax(1) == labels)
        result["style_confusion"] = [
            [int(((labels == truth) & (verdict.style_logits.argmax(1) == guess)).sum())
             for guess in range(len(styles))] for truth in range(classes or len(styles))
        ]  # fmt: skip
    return result
