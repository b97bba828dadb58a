"""`facefilter eval`: the command line of `facefilter.evaluation` (parsed by `cli`)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from facefilter.cli.flags import Running, Runtime
from facefilter.data.spec import spec_folder
from facefilter.errors import UserError
from facefilter.safe_io import refuse_output_over_inputs


@dataclass
class Eval:
    """Measure a filter on held-out faces, or a classifier's accuracy: metrics.json,
    report.html and samples.png in --out, and a short table.

    Synthetic data give true outputs (the same faces in the target style, or with the
    edited attribute forced): L1, SSIM, identity top-1 (and LPIPS with --lpips-weights).
    Against real target faces: FID and KID, on InceptionV3 (--inception-weights) or on the
    classifier's features (--classifier; not comparable with published FID). With the
    classifier, also the outputs' style and, for edits, whether the attribute changed."""

    run: tyro.conf.Positional[Path]  # filter run, export folder or .onnx; or a classifier run
    to: str | None = None  # target, e.g. anime or +Smiling; all: each one; optional one-way
    source: Annotated[str | None, tyro.conf.arg(name="from")] = None  # input's class (trVAE)
    data: str | None = None  # faces to filter (a data spec); unset: the run's own source data
    split: Literal["train", "val", "test"] = "test"  # which split of --data (held out: test)
    count: int | None = None  # use the first N faces; unset: the whole split
    # true outputs, paired with --data face by face; unset: derived for synthetic data
    truth: str | None = None
    # real faces of the target, for FID / KID; unset: the run's target data (its split)
    reference: str | None = None
    classifier: Path | None = None  # an attribute classifier run (facefilter train classifier)
    # weights-inception-2015-12-05-6726825d.pth (torch-fidelity's file): published FID / KID
    inception_weights: Path | None = None
    # torchvision alexnet-owt-7be5be79.pth (or vgg16 / squeezenet1_1): LPIPS's backbone
    lpips_weights: Path | None = None
    identity: bool = True  # dlib face-descriptor distances of each input and its output
    strength: float = 1.0  # the filter's strength
    output: Annotated[Path | None, tyro.conf.arg(name="out", aliases=("-o",))] = None  # folder
    running: Running = field(default_factory=Runtime)


def default_out(run: Path) -> Path:
    from facefilter.runs.config import split_snapshot

    snapshot = split_snapshot(run)[1]
    return run_folder(run) / "eval" / (snapshot.stem if snapshot else "")


def run_folder(run: Path) -> Path:
    """The folder of a run, an export folder or a `RUN@step-N` (an .onnx file's folder)."""
    from facefilter.runs.config import split_snapshot

    base = split_snapshot(run)[0]
    return base.parent if base.suffix == ".onnx" else base


def run_eval(command: Eval) -> int:
    from facefilter.models import offers
    from facefilter.models.capabilities import Predicts
    from facefilter.runs.config import read_run_config
    from facefilter.runs.lock import lock_if_inside

    config = read_run_config(command.run)
    specs = [s for s in (command.data, command.truth, command.reference) if s]
    folders = [f for f in map(spec_folder, specs) if f is not None]
    out = command.output or default_out(command.run)
    refuse_output_over_inputs(out, folders, "--out")
    mine = config.onnx is None  # a run (an export is written by no one but export)
    with lock_if_inside(run_folder(command.run), out, "eval") if mine else nullcontext():
        if config.onnx is None and offers(config.family, Predicts):
            return eval_classifier(command, out)
        return eval_filter(command, out)


def eval_classifier(command: Eval, out: Path) -> int:
    from facefilter.evaluation.accuracy import evaluate_classifier
    from facefilter.evaluation.report import classifier_lines, write_report

    for flag in ("to", "source", "truth", "reference", "classifier", "inception_weights",
                 "lpips_weights"):  # fmt: skip
        if getattr(command, flag) is not None:
            name = "--" + {"source": "from"}.get(flag, flag).replace("_", "-")
            raise UserError(f"{command.run} is an attribute classifier: `eval` measures its "
                            f"accuracy on --data and takes no {name}")  # fmt: skip
    if command.strength != 1.0 or command.running.engine != "torch":
        flag = "--strength" if command.strength != 1.0 else "--engine"
        raise UserError(f"{command.run} is an attribute classifier: {flag} is a filter's; drop it")
    if command.count is not None and command.count < 1:
        raise UserError(f"--count {command.count}: give at least 1 face")
    metrics, faces = evaluate_classifier(command.run, command.data, command.split,
                                         command.count, command.running.device)  # fmt: skip
    folder = out if command.output is not None else out / "accuracy"
    written = write_report(folder, metrics, [faces], ["faces"], f"{command.run.name}: accuracy")
    print("\n".join(classifier_lines(metrics)))
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def eval_filter(command: Eval, out: Path) -> int:
    from facefilter.evaluation.evaluate import evaluate_filter, load_tools
    from facefilter.evaluation.report import filter_lines, write_report

    tools = load_tools(command.classifier, command.inception_weights, command.lpips_weights,
                       command.identity, command.running.device)  # fmt: skip
    results = evaluate_filter(
        command.run, command.to, command.source, tools, data=command.data, truth=command.truth,
        reference=command.reference, split=command.split, count=command.count,
        strength=command.strength, engine=command.running.engine, device=command.running.device,
        precision=command.running.precision, threads=command.running.threads,
    )  # fmt: skip
    for result in results:
        direction = result.metrics["protocol"]["direction"]
        mine = command.output is not None and len(results) == 1  # -o DIR: the one direction's
        folder = out if mine else out / folder_name(direction)
        rows = [result.inputs, result.outputs] + ([result.truths] if result.truths is not None
                                                  else [])  # fmt: skip
        source, target = direction.split(" -> ")
        kinds = [f"input ({source})", f"output ({target})", f"true {target}"][: len(rows)]
        written = write_report(folder, result.metrics, rows, kinds,
                               f"{command.run.name}: {direction}")  # fmt: skip
        print("\n".join(filter_lines(result.metrics)))
        print(f"wrote {', '.join(str(p) for p in written)}\n")
    return 0


def folder_name(direction: str) -> str:
    """`photo -> anime` -> `photo-to-anime`, `any face -> +Smiling` -> `add-Smiling`."""
    source, target = direction.split(" -> ")
    if target.startswith(("+", "-")):
        return "_".join(("add-" if t[0] == "+" else "remove-") + t[1:] for t in target.split())
    return f"{source}-to-{target}"
