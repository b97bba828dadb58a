"""int8 graphs for onnxruntime: `facefilter export RUN --quantize int8`.

Static quantization in QDQ form (onnxruntime's `quantize_static`): weights int8 per
output channel, activations uint8 with ranges calibrated on the faces the graph will
be given, the run's own training faces of the direction's source (a few hundred,
chosen by seed; `--calibration-data SPEC` names others). An int8 graph is a quarter of
the fp32 file and runs on the CPU's int8 units (VNNI, AMX) where it has them; it is
checked against the PyTorch model on the calibration faces, by mean and largest
difference, and refused past `INT8_TOLERANCE`, since bits no longer match.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facefilter.data.sources import open_source
from facefilter.errors import UserError
from facefilter.models.targets import Direction
from facefilter.runs.config import RunConfig
from facefilter.safe_io import atomic_write
from facefilter.sizes import ImageSize

QUANTIZE = ("none", "int8")
INT8_TOLERANCE = 0.1  # mean |int8 - torch| in [-1, 1] units past which a graph is refused
CHECK_FACES = 32  # calibration faces the int8 graph is compared on


@dataclass(frozen=True)
class Calibration:
    """Which faces calibrate an int8 graph: a data spec (None: the run's own) and how many."""

    count: int = 200
    data: str | None = None
    seed: int = 0

    def check(self) -> None:
        if not 1 <= self.count <= 100_000:
            raise UserError(f"--calibration-count {self.count}: give 1 to 100000 faces")


def calibration_spec(config: RunConfig, direction: Direction, calibration: Calibration) -> str:
    """The faces `direction` is given: --calibration-data, else the run's training data of
    the direction's source (a two-set run: that set; otherwise the run's one set)."""
    if calibration.data is not None:
        return calibration.data
    data_a, data_b = config.data_spec("data_a"), config.data_spec("data_b")
    if data_a and data_b:
        source = direction.source or next(d for d in config.domains if d != str(direction.target))
        return data_a if source == config.domains[0] else data_b
    spec = config.data_spec()
    if spec is None:
        raise UserError("the run's config.json records no training data to calibrate int8 "
                        "on; give --calibration-data SPEC")  # fmt: skip
    return spec


def calibration_faces(spec: str, size: ImageSize, calibration: Calibration) -> np.ndarray:
    """(N, 3, H, W) float32 in [-1, 1]: `count` faces of `spec`, chosen by seed."""
    try:
        source = open_source(spec, size, "train", seed=calibration.seed)
    except UserError as error:
        raise UserError(f"cannot open the calibration faces ({error}); give "
                        "--calibration-data SPEC, e.g. a folder of the faces this filter "
                        "is for") from None  # fmt: skip
    count = min(calibration.count, len(source))
    chosen = np.random.default_rng(calibration.seed).choice(len(source), count, replace=False)
    return np.stack([source[int(i)]["image"].numpy() for i in sorted(chosen)])


def feeds(faces: np.ndarray, names: tuple[str, str]) -> Iterator[dict[str, np.ndarray]]:
    """One face at a time at full strength, under the graph's (image, strength) names."""
    image, strength = names
    for face in faces:
        yield {image: face[None], strength: np.ones(1, np.float32)}


def quantize_file(path: Path, faces: np.ndarray, names: tuple[str, str]) -> None:
    """Replace the fp32 graph at `path` by its int8 form, calibrated on `faces` fed to its
    inputs `names` (image, strength)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = feeds(faces, names)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), quiet_root_logger():
        warnings.simplefilter("ignore")  # onnxruntime's advice on pre-processing
        prepared = Path(tmp) / "prepared.onnx"
        # Symbolic shape inference cannot follow the dynamic height and width; ONNX's does
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        atomic_write(path, lambda out: quantize_static(
            str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
        ))  # fmt: skip


@contextlib.contextmanager
def quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer logs through the root logger ("Axis 1 is out-of-range for
    weight ..." for every per-channel scale it skips): not the user's business."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def int8_differences(
    module: nn.Module, run: Callable[[np.ndarray, np.ndarray], np.ndarray], faces: np.ndarray
) -> tuple[float, float]:
    """(mean, max) |int8 graph - torch| on up to CHECK_FACES of the calibration faces;
    `run(images, strength)` runs the int8 graph."""
    images = faces[:CHECK_FACES]
    strength = np.ones(len(images), np.float32)
    with torch.no_grad():
        expected = module.cpu().eval()(torch.from_numpy(images), torch.from_numpy(strength))
    difference = np.abs(run(images, strength) - expected.numpy())
    return float(difference.mean()), float(difference.max())


def check_int8(path: Path, mean: float) -> None:
    """Refuse an int8 graph too far from the model, and delete it (an export folder is
    discarded whole; a single -o FILE.onnx must not be left holding the refused graph)."""
    if not mean < INT8_TOLERANCE:
        path.unlink(missing_ok=True)
        raise UserError(f"{path.name}: the int8 graph differs from the model by {mean:.3f} on "
                        f"average (over {INT8_TOLERANCE}); nothing was written: export it "
                        "without --quantize, or calibrate on other faces")  # fmt: skip
