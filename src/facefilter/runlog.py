"""One `log()` call feeds metrics.jsonl, TensorBoard (optional) and the loss plot."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from facefilter.safe_io import atomic_write, write_text

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss.png"


class RunLog:
    """Appends one JSON line per logging step; on resume, drops lines past the checkpoint."""

    def __init__(self, run: Path, resume_step: int = 0, tensorboard: bool = False) -> None:
        self.path = run / METRICS_FILE
        self._truncate_after(resume_step)
        self.writer: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                from facefilter.errors import UserError

                hint = 'pip install "facefilter[tensorboard]"'
                raise UserError(f"--tensorboard needs the tensorboard package: {hint}") from None
            self.writer = SummaryWriter(str(run / "tensorboard"), purge_step=resume_step or None)

    def _truncate_after(self, step: int) -> None:
        # Lines written after the last checkpoint would repeat once the run resumes.
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines() if _step(line) <= step]
        write_text(self.path, "".join(line + "\n" for line in kept))

    def log(self, step: int, values: dict[str, float]) -> None:
        with self.path.open("a") as stream:
            stream.write(json.dumps({"step": step, **values}) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf  # type: ignore[return-value]  # a torn line never survives a resume


def read_metrics(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Every logged series in a metrics.jsonl, as (step, value) pairs."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    if not path.exists():
        return series
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a crash
        for key, value in row.items():
            if key not in ("step", "time", "lr", "images_per_s", "input_noise"):  # not losses
                series[key].append((int(row["step"]), float(value)))
    return series


def plot_losses(run: Path) -> None:
    """Redraw run/loss.png: one small panel per logged loss, raw and smoothed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = read_metrics(run / METRICS_FILE)
    if not series:
        return
    columns = min(4, len(series))
    rows = math.ceil(len(series) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False)
    for axis, (name, points) in zip(axes.flat, sorted(series.items()), strict=False):
        steps, values = zip(*points, strict=True)
        axis.plot(steps, values, alpha=0.3, linewidth=0.8)
        axis.plot(steps, _smooth(list(values)), linewidth=1.5)
        axis.set_title(name, fontsize=9)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(series) :]:
        axis.axis("off")
    figure.tight_layout()
    atomic_write(run / PLOT_FILE, lambda tmp: figure.savefig(tmp, dpi=90, format="png"))
    plt.close(figure)


def _smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average, bias-corrected like TensorBoard's smoothing."""
    smoothed, average = [], 0.0
    for i, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        smoothed.append(average / (1 - weight**i))
    return smoothed
