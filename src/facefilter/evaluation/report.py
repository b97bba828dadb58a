"""What `facefilter eval` writes and prints: metrics.json, report.html, samples.png, a table.

metrics.json holds every figure and the protocol that made it; report.html shows the
same tables beside the sample sheet (one HTML file and one PNG, no scripts, no
downloads); the printed table is the short version. All written beside, then renamed.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from facefilter.evaluation.controls import CONTROL_LIMIT
from facefilter.evaluation.verdicts import CONFIDENT
from facefilter.face.identity import STRICT_FALSE_MATCH
from facefilter.pictures import labelled_sheet, save_picture
from facefilter.pixels import to_pixels
from facefilter.safe_io import write_text

METRICS_FILE, REPORT_FILE, SHEET_FILE = "metrics.json", "report.html", "samples.png"
SHEET_FACES = 16


def write_report(out: Path, metrics: dict[str, Any], rows: list[Tensor], kinds: list[str],
                 title: str) -> list[Path]:  # fmt: skip
    """metrics.json, samples.png (rows of faces, one kind each) and report.html in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / METRICS_FILE, json.dumps(clean(metrics), indent=2) + "\n")
    faces = [[_picture(row[i]) for row in rows] for i in range(min(SHEET_FACES, len(rows[0])))]
    save_picture(out / SHEET_FILE, labelled_sheet(faces, kinds, title))
    write_text(out / REPORT_FILE, page(title, metrics))
    return [out / METRICS_FILE, out / REPORT_FILE, out / SHEET_FILE]


def _picture(image: Tensor) -> np.ndarray:
    return to_pixels(image).permute(1, 2, 0).numpy()


def clean(value: Any) -> Any:
    """JSON without NaN (not JSON): an undefined figure is null."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def page(title: str, metrics: dict[str, Any]) -> str:
    """A self-contained HTML page: the title, every table of `metrics`, the sheet."""
    sections = [f"<h2>{html.escape(name.replace('_', ' '))}</h2>{_table(value)}"
                for name, value in metrics.items() if name != "protocol"]  # fmt: skip
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>body{{font:14px sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
        "text-align:left}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><img src='{SHEET_FILE}' alt='sample faces'>"
        f"{''.join(sections)}<h2>protocol</h2>{_table(metrics.get('protocol', {}))}"
        "</body></html>\n"
    )


def _table(value: Any) -> str:
    """A dict as a table: dicts of figures that share their keys (filter, do nothing) as
    one grid, a row each; other entries as name / value rows, nested where they nest."""
    if not isinstance(value, dict):
        return f"<p>{html.escape(_shown(value))}</p>"
    rows = {k: v for k, v in value.items() if isinstance(v, dict) and v and not any(
        isinstance(x, dict) for x in v.values())}  # fmt: skip
    columns = list(dict.fromkeys(key for row in rows.values() for key in row))
    grid = ""
    if len(rows) > 1:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join(f"<tr><th>{html.escape(name)}</th>" + "".join(
            f"<td>{html.escape(_shown(row.get(c)))}</td>" for c in columns) + "</tr>"
            for name, row in rows.items())  # fmt: skip
        grid = f"<table><tr><th></th>{head}</tr>{body}</table>"
    rest = {k: v for k, v in value.items() if len(rows) < 2 or k not in rows}
    cells = "".join(f"<tr><th>{html.escape(str(key))}</th><td>{_table(item) if isinstance(item, dict) else html.escape(_shown(item))}</td></tr>"  # noqa: E501
                    for key, item in rest.items())  # fmt: skip
    return grid + (f"<table>{cells}</table>" if cells else "")


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value) or "none"
    return "n/a" if value is None else str(value)


def _fmt(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) and math.isfinite(value) else "-"


def filter_lines(metrics: dict[str, Any]) -> list[str]:
    """The printed summary of one direction's evaluation."""
    proto = metrics["protocol"]
    lines = [
        f"{proto['direction']}: {proto['count']} faces of {proto['inputs']} "
        f"({proto['split']} split), {proto['image_size']} px, strength {proto['strength']}"
    ]
    paired = metrics.get("paired")
    if paired:
        lpips = "lpips" in paired["filter"]
        lines.append(f"{'':12} {'L1':>6} {'SSIM':>6} {'top-1':>6}" + (f" {'LPIPS':>6}" if lpips
                                                                        else ""))  # fmt: skip
        for name in ("filter", "do_nothing"):
            row = paired[name]
            lines.append(
                f"{name.replace('_', ' '):12} {_fmt(row['l1'])} {_fmt(row['ssim'])} "
                f"{_fmt(row['top1'])}" + (f" {_fmt(row['lpips'])}" if lpips else "")
            )
        lines.append(
            f"(top-1 by chance: {_fmt(paired['chance_top1'])}; spread across outputs "
            f"{_fmt(paired['filter']['spread'])}, 0 for one face for every input)"
        )
    lines += _distribution_lines(metrics.get("distribution"))
    identity = metrics.get("identity_dlib")
    if identity:
        lines.append(f"dlib identity: distance median {_fmt(identity['median'])} (quartiles "
                     f"{_fmt(identity['q25'])}-{_fmt(identity['q75'])}), same person (< 0.6) "
                     f"{_fmt(identity['same_person'], 2)}, top-1 {_fmt(identity['top1'], 2)}; "
                     f"different inputs < 0.6: "
                     f"{_fmt(identity['different_inputs_same_person'], 2)}")  # fmt: skip
        if "strict_threshold" in identity:
            lines.append(f"  at {_fmt(identity['strict_threshold'], 2)}, which only "
                         f"{STRICT_FALSE_MATCH:.0%} of pairs of different inputs reach here: "
                         f"same person {_fmt(identity['same_person_strict'], 2)}")  # fmt: skip
    style = metrics.get("style")
    if style:
        sure = style.get("confident")
        lines.append(
            f"style: {_fmt(style['share'], 2)} of the outputs look {style['style']}"
            + (f", {_fmt(sure, 2)} surely (p >= {CONFIDENT})" if sure is not None else "")
            + f" (the inputs: {_fmt(style['do_nothing_share'], 2)})"
        )
        lines += _control_lines(style)
    lines += _attribute_lines(metrics.get("attributes"))
    lines += [f"note: {note}" for note in proto["notes"]]
    return lines


def _control_lines(style: dict[str, Any]) -> list[str]:
    """The judge's controls, and whether it was fooled (runs before the controls: none)."""
    controls = style.get("controls")
    if not controls:
        return []
    shares = ", ".join(f"{name} {_fmt(score['share'], 2)}/{_fmt(score['confident'], 2)}"
                       for name, score in controls.items())  # fmt: skip
    fooled = ", ".join(style["fooled_by"])
    verdict = (f"FOOLED by {fooled}: the sure verdict means little" if fooled
               else f"all sure shares below {CONTROL_LIMIT}: the sure verdict stands")  # fmt: skip
    return [f"  controls called {style['style']} (likeliest/surely): {shares} ({verdict})"]


def _distribution_lines(distribution: dict[str, Any] | None) -> list[str]:
    if not distribution:
        return []
    mine, nothing = distribution["filter"], distribution["do_nothing"]
    label = "" if mine["comparable"] else " (not comparable with published FID)"
    return [f"FID {_fmt(mine['fid'], 2)}, KID x100 {_fmt(mine['kid_x100'], 2)} +- "
            f"{_fmt(mine['kid_std_x100'], 2)}; do nothing: FID {_fmt(nothing['fid'], 2)}, "
            f"KID x100 {_fmt(nothing['kid_x100'], 2)}",
            f"  ({mine['outputs']} outputs vs {mine['reference']} reference faces, on "
            f"{mine['features']} features{label})"]  # fmt: skip


def _truth_share(change: dict[str, Any]) -> str:
    return f"; the true outputs: {_fmt(change['truth'], 2)}" if "truth" in change else ""


def _attribute_lines(attributes: dict[str, Any] | None) -> list[str]:
    if not attributes:
        return []
    lines = [
        f"{'+' if change['wanted'] else '-'}{name}: {_fmt(change['before'], 2)} of the "
        f"faces before, {_fmt(change['after'], 2)} after ({_fmt(change['changed'], 2)} of "
        f"those not yet so changed){_truth_share(change)}"
        for name, change in attributes["edited"].items()
    ]
    if "success" in attributes:
        lines.append(f"attribute success: {_fmt(attributes['success'], 2)} of the verdicts "
                     "that needed changing changed")  # fmt: skip
    kept = attributes.get("kept")
    truth = attributes.get("agree_with_truth")
    tail = f"; all verdicts as the true outputs': {_fmt(truth, 2)}" if truth is not None else ""
    if kept is not None:
        lines.append(f"other attributes kept: {_fmt(kept, 2)} of the verdicts{tail}")
    if attributes["unknown"]:
        lines.append(f"the classifier does not know {', '.join(attributes['unknown'])}")
    return lines


def classifier_lines(metrics: dict[str, Any]) -> list[str]:
    """The printed summary of a classifier's accuracy."""
    proto = metrics["protocol"]
    lines = [
        f"{proto['classifier']} on {proto['count']} faces of {proto['data']} "
        f"({proto['split']} split)"
    ]
    if metrics["attributes"]:
        lines.append(f"{'attribute':18} {'accuracy':>8} {'majority':>8} {'present':>8}")
        for name, row in metrics["attributes"].items():
            lines.append(
                f"{name:18} {_fmt(row['accuracy']):>8} {_fmt(row['majority']):>8} "
                f"{_fmt(row['present']):>8}"
            )
        lines.append(
            f"{'mean':18} {_fmt(metrics['mean_accuracy']):>8} {_fmt(metrics['mean_majority']):>8}"
        )
    if "style_accuracy" in metrics:
        lines.append(
            f"style ({', '.join(proto['styles'])}): accuracy {_fmt(metrics['style_accuracy'])}"
        )
    return lines
