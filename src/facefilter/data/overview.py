"""`facefilter data report`: what a data set covers, and what it lacks.

Models fail on faces their data lacked, so before training it pays to look: images
per class, how often each attribute occurs (where the source has attributes), the
brightness spread (a proxy for lighting and skin tone), and, for folders made by
`data crop`, the face size and pose (roll, yaw) of the source photos from the manifest.
Printed as text and drawn as one PNG chart.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facefilter.data.loading import spread_indices
from facefilter.data.prepare import read_manifest
from facefilter.data.sources import SkippedImageWarning, open_source
from facefilter.data.spec import parse_spec
from facefilter.pixels import to_unit
from facefilter.safe_io import atomic_write

REPORT_SIZE = 32  # pixels: enough for brightness, cheap to decode
BINS = 10
LUMA = np.array([0.299, 0.587, 0.114])


@dataclass
class DataReport:
    spec: str
    images: int  # in the data set
    examined: int  # items read (evenly spread when the set is larger than the limit)
    classes: dict[str, int]  # class -> images examined
    attributes: dict[str, float] = field(default_factory=dict)  # attribute -> share
    brightness: list[float] = field(default_factory=list)  # mean luminance per image, 0..1
    face_size: list[float] = field(default_factory=list)  # eye distance, source px
    roll: list[float] = field(default_factory=list)  # degrees, eye line vs horizontal
    yaw: list[float] = field(default_factory=list)  # nose offset / eye distance, -: left
    unreadable: list[str] = field(default_factory=list)  # examined files that do not decode

    def lines(self) -> list[str]:
        estimate = "" if self.examined == self.images else f" (from {self.examined} sampled)"
        out = [f"{self.spec}: {self.images} image(s){estimate}"]
        if self.unreadable:
            shown = ", ".join(self.unreadable[:3]) + (" ..." if len(self.unreadable) > 3 else "")
            out.append(f"unreadable: {len(self.unreadable)} of the files examined, not counted "
                       f"(training skips them): {shown}")  # fmt: skip
        out.append("per class:")
        out += [f"  {name:<24} {count:>7}" for name, count in self.classes.items()]
        if self.attributes:
            out.append("attributes (share of images):")
            ranked = sorted(self.attributes.items(), key=lambda item: item[1])
            out += [f"  {name:<24} {share:7.1%}" for name, share in ranked]
            rare = [name for name, share in ranked if share < 0.05 or share > 0.95]
            if rare:
                out.append(f"  under-covered (<5% or >95%): {', '.join(rare)}")
        out.append(_spread("brightness", self.brightness, "{:.2f}"))
        if self.face_size:
            out.append(_spread("face size (eye distance, px)", self.face_size, "{:.0f}"))
            out.append(_spread("roll (degrees)", self.roll, "{:.1f}"))
            out.append(_spread("yaw (nose offset / eye distance)", self.yaw, "{:.2f}"))
        return out


def _spread(name: str, values: list[float], fmt: str) -> str:
    if not values:
        return f"{name}: none"
    low, mid, high = np.percentile(values, [5, 50, 95])
    return f"{name}: 5%/50%/95% = {fmt.format(low)} / {fmt.format(mid)} / {fmt.format(high)}"


def build_report(spec: str, limit: int = 2000) -> DataReport:
    """Read up to `limit` items of `spec` (evenly spread) and summarise them."""
    source = open_source(spec, REPORT_SIZE, "train")
    indices = spread_indices(len(source), limit)
    classes: Counter[str] = Counter()
    brightness, attrs, unreadable = [], [], []
    paths = getattr(source, "paths", None)  # files, where the source reads files
    for index in indices:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkippedImageWarning)  # listed in the report
            item = source[index]
        if int(item["index"]) != index:  # a file that would not decode: the next one came
            unreadable.append(str(paths[index]) if paths else f"item {index}")
            continue
        classes[source.class_names[int(item["label"])]] += 1
        pixels = to_unit(item["image"]).numpy()  # (3, S, S) in [0, 1]
        brightness.append(float(np.tensordot(LUMA, pixels, axes=1).mean()))  # Rec. 601 luma
        if "attrs" in item:
            attrs.append(item["attrs"].numpy())
    shares = np.mean(attrs, axis=0) if attrs else []
    count = len(indices) - len(unreadable)
    images = round(len(source) * count / max(1, len(indices)))  # an estimate when sampled
    report = DataReport(
        spec=spec, images=images, examined=count, unreadable=unreadable,
        classes={name: classes[name] for name in source.class_names},
        attributes={name: float(s) for name, s in zip(source.attr_names, shares, strict=False)},
        brightness=brightness,
    )  # fmt: skip
    add_pose(report, spec)
    return report


def add_pose(report: DataReport, spec: str) -> None:
    """Face size and pose from a `data crop` manifest in the spec's folder, if any."""
    parsed = parse_spec(spec)
    if parsed.kind not in ("folder", "classes", "unpaired"):
        return
    for row in read_manifest(Path(parsed.path).expanduser()):
        points = np.asarray(row["landmarks"], float)  # (5, 2)
        eyes = points[1] - points[0]
        distance = float(np.linalg.norm(eyes))
        if distance < 1e-6:
            continue
        across = eyes / distance
        report.face_size.append(distance)
        report.roll.append(float(np.degrees(np.arctan2(eyes[1], eyes[0]))))
        report.yaw.append(float(np.dot(points[2] - points[:2].mean(0), across) / distance))


def draw_report(report: DataReport, path: Path) -> Path:
    """The report as one PNG: bars for classes and attributes, histograms for the rest.
    `path` is the PNG, or a folder (one that exists, or a name without a suffix) to write
    data_report.png into; returns the file written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[tuple[str, Any]] = [
        ("images per class", report.classes),
        ("attribute share", report.attributes),
        ("brightness", report.brightness),
        ("face size (eye distance, px)", report.face_size),
        ("roll (degrees)", report.roll),
        ("yaw", report.yaw),
    ]
    shown = [(title, data) for title, data in panels if len(data)]
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 2.6 * len(shown)), squeeze=False)
    for axis, (title, data) in zip(axes[:, 0], shown, strict=True):
        if isinstance(data, dict):
            axis.barh(list(data), list(data.values()), color="tab:blue")
            axis.tick_params(axis="y", labelsize=7)
        else:
            axis.hist(data, bins=BINS, color="tab:orange")
        axis.set_title(title, fontsize=10)
    fig.suptitle(f"{report.spec}: {report.images} images")
    fig.tight_layout()
    if path.is_dir() or not path.suffix:
        path = path / "data_report.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
    plt.close(fig)
    return path
    plt.close(fig)
