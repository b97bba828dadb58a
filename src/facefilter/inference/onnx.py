"""Export translators to ONNX, check them against PyTorch, open them in onnxruntime.

Layout of an export (`facefilter export RUN -o DIR`):

    DIR/config.json          the run's config.json plus an "onnx" table: file -> direction
    DIR/to-anime.onnx        one file per direction; named by the target alone when the
    DIR/photo-to-anime.onnx  target fixes the source (CycleGAN), else by source and target;
    DIR/add-Smiling.onnx     an attribute edit (remove-Smiling.onnx takes it away)

`-o FILE.onnx` exports one direction (pick it with --to / --from) and writes its
config beside it as FILE.json. Each graph is pure tensor-in tensor-out: inputs
"image" (B, 3, H, W) float32 in [-1, 1] and "strength" (B,) float32 (0 returns the
input, 1 the full filter), output "translated" like "image". The batch axis is always
dynamic, height and width too where the architecture allows (fully convolutional families).
Running an export is `facefilter.inference.Filter`'s job, not this module's.
"""

from __future__ import annotations

import copy
import json
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facefilter.errors import UserError
from facefilter.inference.quantize import (
    QUANTIZE,
    Calibration,
    calibration_faces,
    calibration_spec,
    check_int8,
    int8_differences,
    quantize_file,
)
from facefilter.models import require
from facefilter.models.capabilities import Translates
from facefilter.models.targets import ALL_TARGETS, Direction, Target, from_source
from facefilter.runs.config import CONFIG_FILE, read_run_config, write_json
from facefilter.runs.weights import load_filter
from facefilter.safe_io import atomic_write, refuse_to_replace, replace_folder
from facefilter.sizes import ImageSize

OPSET = 17  # onnxruntime 1.16+ runs it; InstanceNorm and reflection pad export cleanly
INPUT_NAME, STRENGTH_NAME, OUTPUT_NAME = "image", "strength", "translated"
PARITY_TOLERANCE = 1e-4


def file_name(direction: Direction, directions: Sequence[Direction]) -> str:
    """`to-anime.onnx` when only one direction reaches the target, else `photo-to-anime.onnx`;
    `add-Smiling.onnx` and `remove-Eyeglasses.onnx` for attribute edits."""
    target = direction.target
    if target.is_edit:
        return f"{'add' if target.sign > 0 else 'remove'}-{target.name}.onnx"
    same_target = [d for d in directions if d.target == direction.target]
    prefix = f"{direction.source}-" if direction.source and len(same_target) > 1 else ""
    return f"{prefix}to-{direction.target}.onnx"


def chosen_directions(family: Translates, to: str | None, source: str | None) -> list[Direction]:
    """Which translators to export: all the family has, unless --to / --from narrow it."""
    chosen = from_source(family.directions(), source)
    if to is None or to == ALL_TARGETS:
        return chosen
    wanted = Target.parse(to)
    if wanted.amount != 1.0:
        raise UserError(
            f"--to {to}: export the edit itself ({wanted.unit}); its amount is a strength, "
            f"given when applying (--edit {wanted} works on the exported graph)"
        )
    towards = [d for d in chosen if d.target == wanted]
    return towards or [family.resolve(to, source)]  # resolve says why there is none


def accepts_any_size(module: nn.Module, size: ImageSize) -> bool:
    """True when `module` maps another size (twice as wide) to the same size: dynamic H, W."""
    probe = torch.zeros(1, 3, size.height, 2 * size.width)
    try:
        with torch.no_grad():
            out = module(probe, torch.ones(1))
    except RuntimeError:
        return False  # e.g. a fully connected bottleneck fixes the size
    return tuple(out.shape) == tuple(probe.shape)


def export_module(
    module: nn.Module, path: Path, size: int | ImageSize, labels: dict[str, str] | None = None
) -> bool:
    """Write translator `module` as ONNX to `path` atomically; returns whether H, W are
    dynamic. `labels` go into the graph's metadata (family, direction), so a graph
    paired with the wrong config is caught when it is opened."""
    module = copy.deepcopy(module).cpu().eval()
    size = ImageSize.parse(size)
    dynamic_size = accepts_any_size(module, size)
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_size else {0: "batch"}
    example = (torch.zeros(2, 3, *size.hw), torch.ones(2))

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            torch.onnx.export(
                module, example, str(tmp), dynamo=False, opset_version=OPSET,
                input_names=[INPUT_NAME, STRENGTH_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: axes, STRENGTH_NAME: {0: "batch"}, OUTPUT_NAME: axes},
            )  # fmt: skip
        if labels:
            import onnx

            graph = onnx.load(str(tmp))
            onnx.helper.set_model_props(graph, labels)
            onnx.save(graph, str(tmp))

    atomic_write(path, write)
    return dynamic_size


def require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as error:
        hint = 'pip install "facefilter[export]"'
        raise UserError(f"ONNX export and the onnx engine need onnxruntime: {hint}") from error
    return onnxruntime


def session(path: Path | bytes, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for a model file (or its bytes); `threads`: at most this
    many for one run (None: onnxruntime's choice, one a core)."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: no "unused initializer" chatter
    # onnxruntime's threads spin for a while after each run, waiting for the next; between
    # runs the pipeline's own work (torch, OpenCV, dlib) needs those cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(path) if isinstance(path, Path) else path
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped Fail/InvalidGraph
        where = path if isinstance(path, Path) else "the exported graph"
        raise UserError(
            f"{where} is not a loadable ONNX model ({error}); export it again"
        ) from None


def check_graph(
    opened: Any, path: Path, size: ImageSize, family: str, target: str, mark: str | None = None
) -> None:
    """One line when an exported graph does not fit the config beside it (the wrong file,
    a graph of another size or family, or a file exported for another direction)."""
    inputs = {i.name: i.shape for i in opened.get_inputs()}
    outputs = {o.name for o in opened.get_outputs()}
    if set(inputs) != {INPUT_NAME, STRENGTH_NAME} or OUTPUT_NAME not in outputs:
        raise UserError(f"{path} is not a facefilter translator (inputs {sorted(inputs)}, "
                        f"outputs {sorted(outputs)}); export it again")  # fmt: skip
    shape = inputs[INPUT_NAME]
    fixed = shape[2:] if len(shape) == 4 and all(isinstance(d, int) for d in shape[2:]) else None
    if len(shape) != 4 or shape[1] != 3 or (fixed is not None and tuple(fixed) != size.hw):
        raise UserError(f"{path} takes images shaped {shape}, its config {size} RGB; the "
                        "config beside it belongs to another export: export it again")  # fmt: skip
    labels = opened.get_modelmeta().custom_metadata_map
    saved = (labels.get("facefilter_family", family), labels.get("facefilter_target", target))
    if saved != (family, target):
        raise UserError(f"{path} is a {saved[0]} graph towards {saved[1]}, but its config "
                        f"says {family} towards {target}; export it again")  # fmt: skip
    if mark is not None and labels.get("facefilter_export", mark) != mark:
        raise UserError(f"{path} comes from another export than the config beside it "
                        "(interrupted, or mixed by hand); export it again")  # fmt: skip


def parity(module: nn.Module, path: Path, size: int | ImageSize, batch: int = 2) -> float:
    """Max |torch - onnxruntime| on a random batch in [-1, 1] at random strengths in [0, 1.5]."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, *ImageSize.parse(size).hw, generator=generator) * 2 - 1
    strength = torch.rand(batch, generator=generator) * 1.5
    with torch.no_grad():
        expected = copy.deepcopy(module).cpu().eval()(images, strength).numpy()
    feeds = {INPUT_NAME: images.numpy(), STRENGTH_NAME: strength.numpy()}
    got = session(path).run([OUTPUT_NAME], feeds)[0]
    return float(np.abs(got - expected).max())


@dataclass(frozen=True)
class Exported:
    """One graph written: its precision, how far it is from the PyTorch model (max and
    mean absolute difference: random inputs for fp32, calibration faces for int8), its
    size and the translator's parameter count."""

    precision: str
    max_diff: float
    mean_diff: float
    megabytes: float
    parameters: int

    def line(self, name: str) -> str:
        if self.precision == "fp32":
            verdict = "ok" if self.max_diff < PARITY_TOLERANCE else "CHECK: above tolerance"
            difference = f"max |onnxruntime - torch| = {self.max_diff:.2e} ({verdict})"
        else:
            difference = (f"|int8 - torch| on calibration faces: mean {self.mean_diff:.4f}, "
                          f"max {self.max_diff:.3f}")  # fmt: skip
        size = f"{self.megabytes:.2f} MB, {self.parameters / 1e6:.2f} M parameters"
        return f"wrote {name} ({self.precision}, {size}): {difference}"


def export_onnx(
    run: Path, output: Path, *, to: str | None = None, source: str | None = None,
    quantize: str = "none", calibration: Calibration | None = None,
) -> dict[str, Exported]:  # fmt: skip
    """Export a run's translators (int8 with `quantize`); returns file name -> what was
    written. A folder is built beside -o and swapped in whole, so an interrupted export
    leaves the earlier one as it was; every graph carries the export's id, which its
    config lists."""
    if quantize not in QUANTIZE:
        raise UserError(f"--quantize {quantize!r}: choose {' or '.join(QUANTIZE)}")
    calibration = calibration or Calibration()
    calibration.check()
    config = read_run_config(run)
    if config.onnx is not None:
        raise UserError(f"{run} is already an ONNX export; export from the run directory")
    require(config.family, Translates, run)
    single = output.suffix == ".onnx"
    refuse_output(run, output, single)
    require_onnxruntime()  # the parity check needs it: fail before writing anything
    family = load_filter(run)
    chosen = chosen_directions(family, to, source)
    offered = family.directions()
    if single and len(chosen) != 1:
        names = ", ".join(file_name(d, offered) for d in chosen)
        raise UserError(
            f"-o {output} is one file but the run has {len(chosen)} translators ({names}); "
            "pick one with --to (and --from), or give a folder"
        )
    mark = uuid.uuid4().hex  # this export's id: a graph from another export is caught
    table, written = {}, {}
    faces = {}  # the calibration faces of each translator, read before anything is written
    if quantize == "int8":
        for direction in chosen:
            spec = calibration_spec(config, direction, calibration)
            faces[direction] = calibration_faces(spec, family.size, calibration)

    def write(folder: Path) -> None:
        for direction in chosen:
            path = output if single else folder / file_name(direction, offered)
            module = family.translator(direction)
            labels = {"facefilter_family": family.registry_name, "facefilter_export": mark,
                      "facefilter_source": direction.source or "",
                      "facefilter_target": str(direction.target)}  # fmt: skip
            dynamic = export_module(module, path, family.size, labels)
            written[path.name] = checked(module, path, family.size, faces.get(direction))
            table[path.name] = {"source": direction.source, "target": str(direction.target),
                                "dynamic_size": dynamic, "opset": OPSET, "export": mark,
                                "precision": written[path.name].precision}  # fmt: skip
        config_file = output.with_suffix(".json") if single else folder / CONFIG_FILE
        write_json(config_file, {**config.to_dict(), "onnx": table})

    if single:
        output.parent.mkdir(parents=True, exist_ok=True)
        write(output.parent)
    else:
        replace_folder(output, write)
    return written


def checked(module: nn.Module, path: Path, size: ImageSize, faces: np.ndarray | None) -> Exported:
    """The fp32 graph at `path` checked for parity, or (with calibration `faces`) made
    int8 and checked against the model on them; a graph too far off is refused."""
    parameters = sum(p.numel() for p in module.parameters())
    if faces is None:
        difference = parity(module, path, size)
        return Exported("fp32", difference, difference, path.stat().st_size / 1e6, parameters)
    quantize_file(path, faces, (INPUT_NAME, STRENGTH_NAME))
    graph = session(path)
    mean, largest = int8_differences(
        module, lambda x, s: graph.run([OUTPUT_NAME], {INPUT_NAME: x, STRENGTH_NAME: s})[0], faces
    )
    check_int8(path, mean)
    return Exported("int8", largest, mean, path.stat().st_size / 1e6, parameters)


def refuse_output(run: Path, output: Path, single: bool) -> None:
    """One line before any work when -o would write into the run, over the run, or over a
    folder or .json that is not an earlier export (an export replaces its folder whole)."""
    home, out = run.resolve(), output.resolve()
    if out == home or out.is_relative_to(home):
        raise UserError(f"-o {output} would write into the run {run}, whose files export must "
                        f"not touch; export beside it, e.g. -o {run.name}-onnx")  # fmt: skip
    if home.is_relative_to(out):
        raise UserError(f"-o {output} holds the run {run}; export to a new folder beside it, "
                        f"e.g. -o {run.name}-onnx")  # fmt: skip
    config = output.with_suffix(".json") if single else output / CONFIG_FILE
    if single and output.is_dir():
        raise UserError(f"-o {output} is a folder; give a new .onnx file or a folder name")
    if config.exists() and not is_export(config):
        raise UserError(f"-o {output}: {config} exists and is not an earlier export's; "
                        "choose another output")  # fmt: skip
    if not single:  # (an earlier export's config was checked to be one just above)
        refuse_to_replace(output, "-o", "an export", lambda f: (f / CONFIG_FILE).exists())


def is_export(config: Path) -> bool:
    """Whether `config` is an export's config (a run's config.json has no "onnx" table)."""
    try:
        return isinstance(json.loads(config.read_text()).get("onnx"), dict)
    except (OSError, ValueError, AttributeError):
        return False


def exported_bytes(module: nn.Module, size: int | ImageSize) -> bytes:
    """Export `module` to memory (via a temporary file): `--engine onnx` on a run directory."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "translator.onnx"
        export_module(module, path, size)
        return path.read_bytes()
