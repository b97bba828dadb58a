"""`facefilter apply` and `facefilter export`: parse the flags, call the library."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import tyro

from facefilter.cli.flags import Detection, Editing, EditSettings, Running, Runtime
from facefilter.errors import UserError
from facefilter.face.detect import DetectorSettings
from facefilter.inference.photo import FaceOptions
from facefilter.pictures import check_picture_path
from facefilter.provenance import NO_LABEL, Provenance
from facefilter.safe_io import refuse_output_over_inputs

if TYPE_CHECKING:
    from facefilter.inference import PhotoFilter, Request


@dataclass
class Apply:
    """Run a filter on photos, folders of photos or videos: every face found, aligned as the
    model was trained, translated and pasted back into the photo at its original size."""

    run: tyro.conf.Positional[Path]  # run directory, export folder or exported .onnx file
    inputs: tyro.conf.Positional[Path | None] = None  # image, folder of images or video file
    to: str | None = None  # target, e.g. anime or +Smiling; `all`: every one; optional one-way
    # a feature editor's edits applied together: --edit +Smiling=1.5 --edit -Eyeglasses
    edit: Annotated[
        tuple[str, ...], tyro.conf.arg(metavar="+NAME[=AMOUNT]"), tyro.conf.UseAppendAction
    ] = ()
    output: Annotated[Path, tyro.conf.arg(aliases=("-o",))] = Path("out")  # file or folder
    source: Annotated[str | None, tyro.conf.arg(name="from")] = None  # input's class (trVAE)
    strength: float = 1.0  # 0 returns the face unchanged, 1 the full filter, >1 exaggerates
    list_targets: bool = False  # print the targets this filter offers, one a line, and stop
    crop_only: bool = False  # write the aligned (translated) faces instead of whole photos
    compare: bool = False  # write the input and the output side by side
    sheet: Path | None = None  # also write all before/after face pairs into this one PNG
    label: bool = True  # say "made by a filter" in every output (IPTC, XMP); --no-label: not
    detect_every: int = 1  # videos and webcam: frames between face detections
    smoothing: bool = True  # videos and webcam: steady faces over time; --no-smoothing: as found
    webcam: bool = False  # show the filtered camera live in a window (Esc or q quits)
    camera: int = 0  # which camera for --webcam
    face: Annotated[FaceOptions, tyro.conf.OmitArgPrefixes] = field(default_factory=FaceOptions)
    detection: Detection = field(default_factory=DetectorSettings)
    running: Running = field(default_factory=Runtime)
    editing: Editing = field(default_factory=EditSettings)


def run_apply(command: Apply) -> int:
    from facefilter.inference import PhotoFilter, Request
    from facefilter.inference.files import is_video, require_input

    if command.to is not None and command.edit:
        raise UserError("give --to or --edit, not both (--to +Smiling is --edit +Smiling)")
    if not command.list_targets and command.inputs is None and not command.webcam:
        raise UserError("give an image, folder or video to filter (or --webcam)")
    if command.detect_every < 1:
        raise UserError(f"--detect-every must be 1 or more, got {command.detect_every}")
    if command.camera < 0:
        raise UserError(f"--camera must be 0 or more (the first camera is 0), got {command.camera}")
    if command.inputs is not None and not command.list_targets:
        require_input(command.inputs)  # before the model and detector load
        refuse_output_over_inputs(command.output, [command.inputs])
        if command.sheet is not None:
            check_picture_path(command.sheet, "--sheet")
            refuse_output_over_inputs(command.sheet, [command.inputs], "--sheet")
    flt = command.running.load(command.run, command.editing.overrides())
    if command.list_targets:
        if flt.targets():
            print("\n".join(flt.targets()))
        else:
            print(flt.no_targets(), file=sys.stderr)
        return 0
    request = Request.of(flt, command.to, command.edit, command.source, command.strength)
    label = flt.label(request.targets) if command.label else None
    if not command.label and not command.webcam:
        print(NO_LABEL, file=sys.stderr)
    video = command.webcam or (command.inputs is not None and is_video(command.inputs))
    photo_filter = PhotoFilter.build(flt, command.detection, command.face, video=video)
    if command.webcam:
        from facefilter.inference.live import run_webcam

        shown = run_webcam(photo_filter, request, command.camera, compare=command.compare,
                           detect_every=command.detect_every, smooth=command.smoothing)  # fmt: skip
        print(f"showed {shown} frame(s)")
        return 0
    assert command.inputs is not None
    if video:
        from facefilter.inference.video import apply_video

        written, frames = apply_video(photo_filter, request, command.inputs, command.output,
                                      suffix=f"_{request.name}", compare=command.compare,
                                      detect_every=command.detect_every, label=label,
                                      smooth=command.smoothing)  # fmt: skip
        print(f"wrote {frames} frame(s) to {written}")
        return 0
    return apply_files(command, photo_filter, request, label)


def apply_files(
    command: Apply, photo_filter: PhotoFilter, request: Request, label: Provenance | None
) -> int:
    from facefilter.inference.files import OutputOptions, apply_to_files, summary

    options = OutputOptions(compare=command.compare, crop_only=command.crop_only,
                            sheet=command.sheet, label=label)  # fmt: skip
    assert command.inputs is not None
    report = apply_to_files(photo_filter, request, command.inputs, command.output, options,
                            suffix=f"_{request.name}")  # fmt: skip
    fallbacks = report.whole if command.face.detect == "auto" else []  # `never` asked for it
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
    # int8: onnxruntime static quantization (QDQ), a quarter of the file, calibrated on
    # the run's own training faces of each translator's source
    quantize: Literal["none", "int8"] = "none"
    calibration_count: int = 200  # faces (chosen by --seed) that calibrate an int8 graph
    calibration_data: str | None = None  # calibrate on this data spec instead of the run's
    seed: int = 0  # which calibration faces


def run_export(command: Export) -> int:
    from facefilter.inference.onnx import export_onnx
    from facefilter.inference.quantize import Calibration

    calibration = Calibration(command.calibration_count, command.calibration_data, command.seed)
    written = export_onnx(command.run, command.output, to=command.to, source=command.source,
                          quantize=command.quantize, calibration=calibration)  # fmt: skip
    for name, graph in written.items():
        print(graph.line(name))
    print(f"exported {len(written)} translator(s) to {command.output}")
    return 0
