"""Export translators to ONNX and run them with onnxruntime (`apply --engine onnx`).

Layout of an export (`facefilter export RUN -o DIR`):

    DIR/config.json          the run's config.json plus an "onnx" table: file -> direction
    DIR/to-anime.onnx        two-domain families: one file per target
    DIR/photo-to-anime.onnx  class-conditioned families: one file per (source, target)

`-o FILE.onnx` exports one direction (pick it with --to / --from) and writes its
config beside it as FILE.json. Each graph is pure tensor-in tensor-out: input "image"
(B, 3, H, W) float32 in [-1, 1], output "translated" of the same shape; the batch axis
is always dynamic, height and width too where the architecture allows (fully
convolutional families).
"""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facefilter.checkpoint import CONFIG_FILE, load_model, read_run_config, write_json
from facefilter.errors import UserError
from facefilter.models.base import Family
from facefilter.pipeline import ALL_TARGETS, from_model_batch, resolve_targets, to_model_batch

OPSET = 17  # onnxruntime 1.16+ runs it; InstanceNorm and reflection pad export cleanly
INPUT_NAME, OUTPUT_NAME = "image", "translated"
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Direction:
    source: str | None
    target: str

    @property
    def file_name(self) -> str:
        prefix = f"{self.source}-" if self.source is not None else ""
        return f"{prefix}to-{self.target}.onnx"


def directions(family: Family, to: str | None, source: str | None) -> list[Direction]:
    """Which translators to export: every one the family has, unless --to / --from narrow."""
    for name in (source, None if to in (None, ALL_TARGETS) else to):
        if name is not None:
            family.check_domain(name)
    targets = resolve_targets(family.domains, to or ALL_TARGETS, source)
    if family.data_kind == "unpaired":
        chosen = [Direction(None, t) for t in targets if t != source]
    else:
        sources = [source] if source is not None else family.domains
        chosen = [Direction(s, t) for s in sources for t in targets if s != t]
    if not chosen:
        raise UserError(f"--from {source} --to {to}: nothing to export; choose another --to")
    return chosen


def accepts_any_size(module: nn.Module, size: int) -> bool:
    """True when `module` maps other (non-square) sizes to the same size: dynamic H, W."""
    probe = torch.zeros(1, 3, size, size + size // 2)
    try:
        with torch.no_grad():
            out = module(probe)
    except RuntimeError:
        return False  # e.g. a fully connected bottleneck fixes the size
    return tuple(out.shape) == tuple(probe.shape)


def export_module(module: nn.Module, path: Path, size: int) -> bool:
    """Write `module` as ONNX to `path`; returns whether height and width are dynamic."""
    module = copy.deepcopy(module).cpu().eval()
    dynamic_size = accepts_any_size(module, size)
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_size else {0: "batch"}
    example = torch.zeros(2, 3, size, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            module, (example,), str(path), dynamo=False, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
        )  # fmt: skip
    return dynamic_size


def session(path: Path | bytes) -> Any:
    """An onnxruntime CPU session for a model file (or its bytes)."""
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise UserError("--engine onnx needs onnxruntime: pip install onnxruntime") from error
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no "unused initializer" chatter
    source = str(path) if isinstance(path, Path) else path
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def parity(module: nn.Module, path: Path, size: int, batch: int = 2) -> float:
    """Max |torch - onnxruntime| on a random batch in [-1, 1]."""
    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        expected = copy.deepcopy(module).cpu().eval()(images).numpy()
    got = session(path).run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})[0]
    return float(np.abs(got - expected).max())


def export_onnx(
    run: Path, output: Path, *, to: str | None = None, source: str | None = None
) -> dict[str, float]:
    """Export the translators of `run` (see the module docstring); returns file -> parity."""
    family = load_model(run)
    config = read_run_config(run)
    chosen = directions(family, to, source)
    single = output.suffix == ".onnx"
    if single and len(chosen) != 1:
        names = ", ".join(d.file_name for d in chosen)
        raise UserError(
            f"-o {output} is one file but the run has {len(chosen)} translators ({names}); "
            "pick one with --to (and --from), or give a folder"
        )
    folder = output.parent if single else output
    folder.mkdir(parents=True, exist_ok=True)
    table, diffs = {}, {}
    for direction in chosen:
        path = output if single else folder / direction.file_name
        module = family.export_module(direction.target, direction.source)
        dynamic = export_module(module, path, family.image_size)
        diffs[path.name] = parity(module, path, family.image_size)
        table[path.name] = {"source": direction.source, "target": direction.target,
                            "dynamic_size": dynamic, "opset": OPSET}  # fmt: skip
    config_path = output.with_suffix(".json") if single else folder / CONFIG_FILE
    write_json(config_path, {**config, "onnx": table})
    return diffs


@dataclass
class OnnxFilter:
    """An exported translator run by onnxruntime: uint8 (S, S, 3) crops in and out."""

    session: Any
    source: str | None
    target: str
    size: int

    def __call__(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        if not len(crops):
            return []
        images = to_model_batch(crops)  # (B, 3, S, S) float32 in [-1, 1]
        return from_model_batch(self.session.run([OUTPUT_NAME], {INPUT_NAME: images})[0])


def read_export(path: Path) -> tuple[dict[str, Any], Path]:
    """The config of a run, export folder or single .onnx file, and the folder its files are in."""
    if path.suffix == ".onnx":
        if not path.is_file():
            raise UserError(f"ONNX file {path} does not exist; export one with `facefilter export`")
        meta = path.with_suffix(".json")
        if not meta.is_file():
            raise UserError(f"{path} has no {meta.name} beside it; export it again")
        try:
            return json.loads(meta.read_text()), path.parent
        except json.JSONDecodeError as error:
            raise UserError(f"{meta} is not valid JSON ({error}); re-export") from None
    return read_run_config(path), path


def load_onnx_filters(
    path: Path, to: str, source: str | None = None
) -> tuple[list[OnnxFilter], dict[str, Any]]:
    """onnxruntime translators for `to` from an export, or from a run (exported on the fly)."""
    config, folder = read_export(path)
    domains, size = list(config["domains"]), int(config["image_size"])
    for name in (source, None if to == ALL_TARGETS else to):
        if name is not None and name not in domains:
            raise UserError(f"unknown domain {name!r}; this model knows {', '.join(domains)}")
    wanted = [Direction(source, t) for t in resolve_targets(domains, to, source)]
    if "onnx" not in config:
        family = load_model(path)
        return [exported_now(family, d, size) for d in wanted], config
    if path.suffix == ".onnx":  # a single-file export: the file named, whatever it was renamed to
        return [OnnxFilter(session(path), d.source, d.target, size) for d in wanted], config
    filters = []
    for direction in wanted:
        match = [name for name, entry in config["onnx"].items()
                 if entry["target"] == direction.target
                 and entry["source"] in (direction.source, None)]  # fmt: skip
        if not match:
            have = ", ".join(config["onnx"])
            raise UserError(f"{path} has no ONNX translator for {direction} (it has {have})")
        model_file = folder / match[0]
        if not model_file.is_file():
            raise UserError(f"{model_file} is listed in {folder} but missing; re-export")
        filters.append(OnnxFilter(session(model_file), direction.source,
                                  direction.target, size))  # fmt: skip
    return filters, config


def exported_now(family: Family, direction: Direction, size: int) -> OnnxFilter:
    """Export one translator of a loaded run to a temporary file, open it in onnxruntime."""
    module = family.export_module(direction.target, direction.source)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / direction.file_name
        export_module(module, path, size)
        model_bytes = path.read_bytes()
    return OnnxFilter(session(model_bytes), direction.source, direction.target, size)
