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

    def image(self, step: int, picture: Any) -> None:
        """A sample grid, (3, H, W) in [0, 1], under TensorBoard's images tab."""
        if self.writer is not None:
            self.writer.add_image("samples", picture, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf  # type: ignore[return-value]  # a torn line never survives a resume


NOT_PLOTTED = ("step", "time", "images_per_s")
# Logged settings that follow a schedule (not losses): drawn in their own panel.
SCHEDULES = ("lr", "beta", "gamma", "input_noise", "instance_noise", "pixel_share", "alpha")


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
            if key not in NOT_PLOTTED and isinstance(value, int | float):
                series[key].append((int(row["step"]), float(value)))
    return series


def panels(names: list[str]) -> dict[str, list[str]]:
    """Which series share a panel: the totals each optimiser minimises, the adversarial
    terms (G and D overlaid), the other losses, the schedules (learning rate, loss
    weights) and the held-out scores, so that no large series flattens the small ones."""
    held_out = [n for n in names if n.startswith("eval/")]
    accuracy = [n for n in names if n.endswith("_acc") and n not in held_out]  # a classifier's
    names = [n for n in names if n not in held_out + accuracy]
    totals = [n for n in names if n.endswith("total") or n == "loss"]
    schedules = [n for n in names if n in SCHEDULES or n == "d_error"]
    adversarial = [n for n in names if n.startswith(("g_", "d_"))
                   and n not in totals and n not in schedules]  # fmt: skip
    others = [n for n in names if n not in totals + adversarial + schedules]
    groups = {"total losses": totals,
              "adversarial: generator (solid) and discriminator (dashed)": adversarial,
              "reconstruction and other losses": others,
              "schedules: learning rate, loss weights, noise": schedules,
              "accuracy on the training batches": accuracy,
              "held-out evaluation (--eval-every)": held_out}  # fmt: skip
    return {title: sorted(group) for title, group in groups.items() if group}


def plot_losses(run: Path) -> None:
    """Redraw run/loss.png: a few panels of overlaid series, each raw (thin) and smoothed
    (thick), with a legend and a step axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = read_metrics(run / METRICS_FILE)
    if not series:
        return
    groups = panels(list(series))
    figure, axes = plt.subplots(len(groups), 1, figsize=(9, 3.2 * len(groups)), squeeze=False)
    for axis, (title, names) in zip(axes[:, 0], groups.items(), strict=True):
        for index, name in enumerate(names):
            steps, values = zip(*series[name], strict=True)
            style = "--" if name.startswith("d_") else "-"
            marker = "o" if len(steps) < 20 else None  # a short run's few points stay visible
            colour = f"C{index % 10}"
            # held-out scores are few and already averaged over faces: drawn as they are
            shown = list(values) if name.startswith("eval/") else _smooth(list(values))
            axis.plot(steps, values, style, color=colour, alpha=0.25, linewidth=0.8)
            axis.plot(steps, shown, style, color=colour, marker=marker, markersize=3,
                      linewidth=1.6, label=name)  # fmt: skip
        if _wide_range(series, names):
            axis.set_yscale("log")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.legend(fontsize=7, ncol=min(4, len(names)), loc="best")
    figure.suptitle(f"{run.name}: thin lines logged values, thick their moving average",
                    fontsize=9)  # fmt: skip
    figure.tight_layout()
    atomic_write(run / PLOT_FILE, lambda tmp: figure.savefig(tmp, dpi=90, format="png"))
    plt.close(figure)


def _wide_range(series: dict[str, list[tuple[int, float]]], names: list[str]) -> bool:
    """Log scale when the series span over two orders of magnitude (and all are positive)."""
    values = [v for name in names for _, v in series[name]]
    return min(values) > 0 and max(values) / min(values) > 100


def _smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average, bias-corrected like TensorBoard's smoothing."""
    smoothed, average = [], 0.0
    for i, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        smoothed.append(average / (1 - weight**i))
    return smoothed
