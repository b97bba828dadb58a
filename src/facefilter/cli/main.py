"""`facefilter`: one command line for data, training and applying filters.

Every subcommand is a dataclass; tyro turns its fields into flags and its
same-line comments into help. `main` turns a `UserError` into one line on
stderr and exit status 2.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import tyro

from facefilter import __version__
from facefilter.cli.data import DataCommand, run_data
from facefilter.cli.demo import Demo, run_demo
from facefilter.cli.editor import (
    EditDetail,
    Grid,
    Lerp,
    Vectors,
    edit_overrides,
    glue_edit_values,
    run_grid,
    run_lerp,
    run_vectors,
)
from facefilter.cli.eval import Eval, run_eval
from facefilter.errors import UserError
from facefilter.models import FAMILIES, config_class, family_class
from facefilter.safe_io import os_error_message, refuse_output_over_inputs
from facefilter.training.config import TrainConfig


# --- train ------------------------------------------------------------------------------------
@dataclass
class TwoSetTrainConfig(TrainConfig):
    """Where the two domains come from, how long to train, and where the run goes."""

    data: tyro.conf.Suppress[str | None] = None  # one-set families only


@dataclass
class OneSetTrainConfig(TrainConfig):
    """Where the data comes from, how long to train, and where the run goes."""

    data_a: tyro.conf.Suppress[str | None] = None  # two-domain families only
    data_b: tyro.conf.Suppress[str | None] = None


def _train_command(name: str) -> Any:
    """`facefilter train NAME`: the family's TrainConfig and model flags, unprefixed; only
    the data flags the family reads (--data-a/--data-b, or --data)."""
    model = config_class(name)
    two_sets = family_class(name).data_kind == "unpaired"
    train_type = TwoSetTrainConfig if two_sets else OneSetTrainConfig

    def train_defaults() -> TrainConfig:  # the family's own batch size, image size, ...
        return train_type(out=tyro.MISSING, **model.train_defaults)

    command = make_dataclass(
        f"Train_{name.replace('-', '_')}",
        [
            ("train", Annotated[train_type, tyro.conf.OmitArgPrefixes],
             field(default_factory=train_defaults)),
            ("model", Annotated[model, tyro.conf.OmitArgPrefixes], field(default_factory=model)),
        ],
    )  # fmt: skip
    command.family = name  # type: ignore[attr-defined]
    return Annotated[
        command, tyro.conf.subcommand(name, description=FAMILIES[name].summary, prefix_name=False)
    ]


# --- apply ------------------------------------------------------------------------------------
@dataclass
class Apply:
    """Run a filter on photos, folders of photos or videos: every face found, aligned as the
    model was trained, translated and pasted back into the photo at its original size."""

    run: tyro.conf.Positional[Path]  # run directory, export folder or exported .onnx file
    inputs: tyro.conf.Positional[Path | None] = None  # image, folder of images or video file
    to: str | None = None  # target, e.g. anime or +Smiling; `all`: every one; optional one-way
    # attribute edits applied together (dcae, pgae): --edit +Smiling=1.5 --edit -Eyeglasses
    edit: Annotated[
        tuple[str, ...], tyro.conf.arg(metavar="+NAME[=AMOUNT]"), tyro.conf.UseAppendAction
    ] = ()
    edit_detail: EditDetail | None = None  # editors: keep (photo + edit), decode; unset: the run's
    edit_focus: float | None = None  # editors: 0 edits everywhere; unset: the run's
    output: Annotated[Path, tyro.conf.arg(aliases=("-o",))] = Path("out")  # file or folder
    source: Annotated[str | None, tyro.conf.arg(name="from")] = None  # input's class (trVAE)
    strength: float = 1.0  # 0 returns the face unchanged, 1 the full filter, >1 exaggerates
    list_targets: bool = False  # print the targets this filter offers, one a line, and stop
    detect: Literal["auto", "always", "never"] = "auto"  # auto: small images with no face are crops
    faces: Literal["all", "largest"] = "all"  # which faces of a photo to filter
    crop_only: bool = False  # write the aligned (translated) faces instead of whole photos
    compare: bool = False  # write the input and the output side by side
    sheet: Path | None = None  # also write all before/after face pairs into this one PNG
    engine: Literal["torch", "onnx"] = "torch"  # onnx: run with onnxruntime
    detector: str = "auto"  # face detector: auto, dlib, yunet (needs --yunet-model) or center
    yunet_model: Path | None = None  # face_detection_yunet_2023mar.onnx for --detector yunet
    upsample: int = 1  # dlib: 1 finds faces down to ~40 px; 0 is 4x faster (video)
    margin: float | None = None  # extra border around the face, fraction of the crop
    eye_height: float | None = None  # override the run's framing: eye line from the top
    eye_distance: float | None = None  # override the run's framing: eyes apart
    feather: float = 0.1  # width of the blend at the mask's edge (fraction of the crop)
    mask: Literal["head", "ellipse", "crop"] = "head"  # pasted back: face+hair, ellipse, all
    debug_overlay: bool = False  # draw each face's box, landmarks and mask outline
    blend: Literal["feather", "poisson"] = "feather"  # poisson: colours meet at the seam (slower)
    detect_every: int = 1  # videos and webcam: frames between face detections
    webcam: bool = False  # show the filtered camera live in a window (Esc or q quits)
    camera: int = 0  # which camera for --webcam
    device: str | None = None  # torch engine: cpu, cuda, cuda:1 ...; GPU when there is one


def run_apply(command: Apply) -> int:
    from facefilter.inference import Filter, Request
    from facefilter.inference.files import is_video, require_input

    if command.to is not None and command.edit:
        raise UserError("give --to or --edit, not both (--to +Smiling is --edit +Smiling)")
    if not command.list_targets and command.inputs is None and not command.webcam:
        raise UserError("give an image, folder or video to filter (or --webcam)")
    if command.inputs is not None and not command.list_targets:
        require_input(command.inputs)  # before the model and detector load
        refuse_output_over_inputs(command.output, [command.inputs])
        if command.sheet is not None:
            refuse_output_over_inputs(command.sheet, [command.inputs], "--sheet")
    flt = Filter.load(command.run, engine=command.engine, device=command.device,
                      overrides=edit_overrides(command))  # fmt: skip
    if command.list_targets:
        if flt.targets():
            print("\n".join(flt.targets()))
        else:
            print(f"{command.run} offers no targets yet: a dcae or pgae run gets its edits from "
                  f"`facefilter vectors {command.run}`", file=sys.stderr)  # fmt: skip
        return 0
    if command.to is None and not command.edit:
        if len(flt.targets()) != 1:  # a one-way model (makeover) needs no --to
            raise UserError("--to is required: the target (see --list-targets), or all")
        command.to = flt.targets()[0]
    if command.edit:
        request = Request((flt.combine(command.edit),), command.strength)
        suffix = "_" + "_".join(str(t) for t in request.directions[0].targets)
    else:
        assert command.to is not None
        request = Request(tuple(flt.expand(command.to, command.source)), command.strength)
        suffix = f"_{command.to}"
    video = command.webcam or (command.inputs is not None and is_video(command.inputs))
    photo_filter = build_photo_filter(command, flt, video)
    if command.webcam:
        from facefilter.inference.video import run_webcam

        shown = run_webcam(photo_filter, request, command.camera, compare=command.compare,
                           detect_every=command.detect_every)  # fmt: skip
        print(f"showed {shown} frame(s)")
        return 0
    assert command.inputs is not None
    if video:
        from facefilter.inference.video import apply_video

        written, frames = apply_video(photo_filter, request, command.inputs, command.output,
                                      suffix=suffix, compare=command.compare,
                                      detect_every=command.detect_every)  # fmt: skip
        print(f"wrote {frames} frame(s) to {written}")
        return 0
    return apply_files(command, photo_filter, request, suffix)


def apply_files(command: Apply, photo_filter: Any, request: Any, suffix: str) -> int:
    from facefilter.inference.files import OutputOptions, apply_to_files, summary

    options = OutputOptions(compare=command.compare, crop_only=command.crop_only,
                            sheet=command.sheet)  # fmt: skip
    assert command.inputs is not None
    report = apply_to_files(photo_filter, request, command.inputs, command.output, options,
                            suffix=suffix)  # fmt: skip
    fallbacks = report.whole if command.detect == "auto" else []  # `never` asked for it
    for path in fallbacks[:3]:
        note = (f"note: {path}: no face found; small enough to be a face crop, so its centre "
                "square was translated as one (--detect always to refuse)")  # fmt: skip
        print(note, file=sys.stderr)
    if len(fallbacks) > 3:
        print(f"note: {len(fallbacks)} image(s) in all were taken as face crops (their centre "
              "squares)", file=sys.stderr)  # fmt: skip
    print(summary(report, command.output))
    if report.failures:
        print(f"{len(report.failures)} file(s) failed (listed above)", file=sys.stderr)
    return 1 if report.failures else 0


def build_photo_filter(command: Apply, flt: Any, video: bool) -> Any:
    from facefilter.face import create_detector
    from facefilter.face.detect import DEFAULT_ROTATIONS
    from facefilter.inference import FaceOptions, PhotoFilter

    detector = None
    if command.detect != "never":
        detector = create_detector(
            command.detector,
            model_path=command.yunet_model,
            upsample=command.upsample,
            rotations=() if video else DEFAULT_ROTATIONS,  # retries cost too much per frame
        )
    options = FaceOptions(
        detect=command.detect, faces=command.faces, feather=command.feather, mask=command.mask,
        debug_overlay=command.debug_overlay, blend=command.blend,
        margin=command.margin, eye_height=command.eye_height, eye_distance=command.eye_distance,
    )  # fmt: skip
    return PhotoFilter(flt, detector, options)


# --- export -----------------------------------------------------------------------------------
@dataclass
class Export:
    """Export a run's translators to ONNX (pure tensor-in tensor-out graphs).

    -o DIR writes DIR/config.json plus one file per translator: to-<target>.onnx when
    only one source reaches the target (CycleGAN), <source>-to-<target>.onnx otherwise. -o FILE.onnx
    writes one translator (choose it with --to / --from) and FILE.json beside it. Inputs
    "image" (B, 3, H, W) float32 in [-1, 1] and "strength" (B,) float32 (1: the full
    filter); output "translated", like "image". Run it with
    `facefilter apply DIR_OR_FILE ... --engine onnx`."""

    run: tyro.conf.Positional[Path]  # run directory written by `facefilter train`
    format: Literal["onnx"] = "onnx"  # the only format so far
    output: Annotated[Path, tyro.conf.arg(aliases=("-o",))] = Path("filter")  # folder or .onnx
    to: str | None = None  # only the translator towards this domain; unset: every one
    source: Annotated[str | None, tyro.conf.arg(name="from")] = None  # only from this class


def run_export(command: Export) -> int:
    from facefilter.inference.onnx import PARITY_TOLERANCE, export_onnx

    diffs = export_onnx(command.run, command.output, to=command.to, source=command.source)
    for name, diff in diffs.items():
        verdict = "ok" if diff < PARITY_TOLERANCE else "CHECK: above tolerance"
        print(f"wrote {name}: max |onnxruntime - torch| = {diff:.2e} ({verdict})")
    print(f"exported {len(diffs)} translator(s) to {command.output}")
    return 0


def given_flags(args: list[str]) -> set[str]:
    """The settings named on the command line (`--max-steps 5`, `--lr=1e-3`, `--no-flip`),
    as field names: `--resume` takes every other one from the run's config.json."""
    names = {arg[2:].split("=", 1)[0].replace("-", "_") for arg in args if arg.startswith("--")}
    return names | {name.removeprefix("no_") for name in names if name.startswith("no_")}


def run_train(command: Any, given: set[str] | None = None) -> int:
    from facefilter.training.engine import train

    # prints where the run went
    train(command.train, type(command).family, command.model, given=given)
    return 0


def parser_type() -> Any:
    train: Any = Union[tuple(_train_command(name) for name in FAMILIES)]  # noqa: UP007
    train_help = "Train a filter on your data or on built-in synthetic faces."
    data_help = "Make, preview and inspect data sets."
    return Union[  # noqa: UP007
        Annotated[train, tyro.conf.subcommand("train", description=train_help, prefix_name=False)],
        Annotated[Apply, tyro.conf.subcommand("apply", prefix_name=False)],
        Annotated[Export, tyro.conf.subcommand("export", prefix_name=False)],
        Annotated[Eval, tyro.conf.subcommand("eval", prefix_name=False)],
        Annotated[Demo, tyro.conf.subcommand("demo", prefix_name=False)],
        Annotated[Vectors, tyro.conf.subcommand("vectors", prefix_name=False)],
        Annotated[Grid, tyro.conf.subcommand("grid", prefix_name=False)],
        Annotated[Lerp, tyro.conf.subcommand("lerp", prefix_name=False)],
        Annotated[
            DataCommand, tyro.conf.subcommand("data", description=data_help, prefix_name=False)
        ],
    ]


DEBUG_ENV = "FACEFILTER_DEBUG"  # 1: tracebacks for unexpected errors, as --debug


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `facefilter` console script: one line and exit 2 for a mistake
    the user can fix, 130 for Ctrl-C, and one line (traceback with --debug) for a bug."""
    args = glue_edit_values(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    args = [arg for arg in args if arg != "--debug"]
    one_line_warnings()
    try:
        return dispatch(args)
    except UserError as error:
        return fail(str(error))
    except OSError as error:
        if isinstance(error, BrokenPipeError):  # `facefilter --help | head` closed the pipe
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141  # the shell's code for a process ended by SIGPIPE
        if debug:
            raise
        return fail(os_error_message(error))
    except KeyboardInterrupt:
        print("\nfacefilter: interrupted; files already written are whole", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            raise
        return fail(internal_error(error), status=1)


def one_line_warnings() -> None:
    """facefilter's own warnings (skipped images) as `warning: ...` lines, without Python's
    file and source line; data-loading workers forked later inherit this."""
    from facefilter.data.sources import SkippedImageWarning

    default = warnings.showwarning
    if getattr(default, "one_line", False):
        return  # installed by an earlier main() in this process: do not wrap it again

    def show(
        message: Warning | str, category: type[Warning], filename: str, lineno: int,
        file: Any = None, line: str | None = None,
    ) -> None:  # fmt: skip
        if issubclass(category, SkippedImageWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    show.one_line = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def fail(message: str, status: int = 2) -> int:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    if len(lines) > 1:  # raised in a data-loading worker: torch prepends its traceback
        message = lines[-1].split("UserError: ", 1)[-1]
    print(f"facefilter: error: {message}", file=sys.stderr)
    return status


def internal_error(error: BaseException) -> str:
    """A bug: say what and where in one line, and how to get the full story."""
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    first = (str(error).splitlines() or [""])[0][:200]
    return (
        f"internal error ({type(error).__name__}{where}: {first}); this is a facefilter bug: "
        f"rerun with --debug (or {DEBUG_ENV}=1) and report the traceback to the project's "
        "issue tracker"
    )


def dispatch(args: list[str]) -> int:
    if args[:1] == ["--version"]:
        print(f"facefilter {__version__}")
        return 0
    command = tyro.cli(
        parser_type(),
        args=args,
        prog="facefilter",
        description="Trainable face filters: train on your faces, apply to any photo. "
        "(facefilter --version prints the version; --debug shows tracebacks.)",
    )
    if hasattr(type(command), "family"):
        return run_train(command, given_flags(args))
    commands: dict[type, Callable[[Any], int]] = {
        Apply: run_apply,
        Export: run_export,
        Eval: run_eval,
        Demo: run_demo,
        Vectors: run_vectors,
        Grid: run_grid,
        Lerp: run_lerp,
    }
    return commands.get(type(command), run_data)(command)
