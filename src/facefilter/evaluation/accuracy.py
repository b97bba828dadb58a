"""`facefilter eval CLASSIFIER`: an attribute classifier against a table's own labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from facefilter.errors import UserError
from facefilter.evaluation.evaluate import load_faces
from facefilter.evaluation.verdicts import accuracy
from facefilter.inference.predictor import Classifier


def evaluate_classifier(
    run: Path, data: str | None = None, split: str = "test", count: int | None = None,
    device: str | None = None,
) -> tuple[dict[str, Any], Tensor]:  # fmt: skip
    """Per-attribute accuracy (with the always-the-commoner-value bar) and style accuracy
    on held-out faces; returns the metrics and the faces (for the sheet)."""
    classifier = Classifier.load(run, device, flag="eval")
    spec = data or classifier.config.data_spec()
    if not spec:
        raise UserError(f"{run} does not record its data; give labelled faces with --data SPEC")
    seed = classifier.config.seed
    faces = load_faces(spec, classifier.config.image_size, split, seed, count)
    verdict = classifier.predict(faces.images)
    shared = [name for name in classifier.attributes if name in faces.attr_names]
    # the data's own classes (a judge's extra `scrambled` class comes after them)
    styled = len(faces.class_names) > 1 and faces.class_names == classifier.styles[
        : len(faces.class_names)]  # fmt: skip
    if (faces.attrs is None or not shared) and not styled:
        told = ", ".join(classifier.attributes + classifier.styles)
        raise UserError(f"{spec} labels none of what {run} tells ({told}); give faces with "
                        "those attributes or classes")  # fmt: skip
    columns = [classifier.attributes.index(name) for name in shared]
    table = None if faces.attrs is None else faces.attrs[:, [faces.attr_names.index(n)
                                                              for n in shared]]  # fmt: skip
    subset = verdict._replace(attr_logits=verdict.attr_logits[:, columns])
    labels = faces.labels if styled else None
    metrics = accuracy(subset, table, labels, shared, classifier.styles, len(faces.class_names))
    metrics["protocol"] = {
        "classifier": str(run), "data": spec, "split": split, "count": len(faces.images),
        "available": faces.available, "image_size": str(classifier.config.image_size),
        "styles": classifier.styles, "threshold": 0.5,
    }  # fmt: skip
    return metrics, faces.images
