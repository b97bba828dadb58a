"""`Filter`: a trained model loaded once, ready to translate tensors or face crops.

    flt = Filter.load("runs/p2a")                 # or an export folder, or FILE.onnx
    flt.targets()                                 # ["anime", "photo"]
    flt.translate_crops(crops, flt.resolve("anime"), strength=0.7)

Two engines run the same translator graphs: `torch` (the run's inference networks
only: no discriminators, no optimizers; EMA weights where the family keeps them) and
`onnx` (onnxruntime over an export, or over a run exported on the fly). Everything
that applies a filter (files, video, webcam, the demo, eval) goes through this class.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from facefilter.data.framing import align_config
from facefilter.errors import UserError
from facefilter.face import AlignConfig
from facefilter.inference.precision import Precision, check_precision, in_precision, run_in
from facefilter.models import offers, require
from facefilter.models.capabilities import EditsCodes, Translates
from facefilter.models.targets import Direction, Target, combine, expand, resolve, targets_of
from facefilter.pixels import from_pixels, to_pixels
from facefilter.provenance import Provenance
from facefilter.runs.config import RunConfig, read_run_config
from facefilter.runs.weights import load_filter
from facefilter.sizes import ImageSize

Engine = Literal["torch", "onnx"]
ENGINES: tuple[str, ...] = ("torch", "onnx")


class Backend(Protocol):
    """Runs one direction on a float batch (B, 3, S, S) in [-1, 1] with strengths (B,)."""

    device: torch.device

    @property
    def family(self) -> Translates | None:
        """The trained model, where there is one (not for an ONNX export)."""

    def run(self, direction: Direction, images: Tensor, strength: Tensor) -> Tensor: ...


class TorchBackend:
    """The family's translator modules, built once per direction, on `device`."""

    def __init__(
        self, family: Translates, device: torch.device, precision: Precision = "fp32"
    ) -> None:
        self.family, self.device, self.precision = family, device, precision
        self.modules: dict[Direction, nn.Module] = {}

    @torch.no_grad()
    def run(self, direction: Direction, images: Tensor, strength: Tensor) -> Tensor:
        if direction not in self.modules:
            module = self.family.translator(direction).to(self.device).eval()
            self.modules[direction] = in_precision(module, self.precision)
        module = self.modules[direction]
        out: Tensor = run_in(module, images.to(self.device), strength.to(self.device),
                             self.precision)  # fmt: skip
        return out


class OnnxBackend:
    """onnxruntime sessions, one per direction, opened on first use."""

    device = torch.device("cpu")

    def __init__(
        self, files: dict[Direction, Path], family: Translates | None, size: ImageSize,
        family_name: str = "", marks: dict[Direction, str] | None = None,
    ) -> None:  # fmt: skip
        self.files, self.family, self.size = files, family, size
        self.marks = marks or {}  # the export's id each graph must carry
        self.family_name = family_name or (family.registry_name if family else "")
        self.sessions: dict[Direction, object] = {}
        self.threads: int | None = None  # onnxruntime's threads a run; None: one a core

    def run(self, direction: Direction, images: Tensor, strength: Tensor) -> Tensor:
        from facefilter.inference.onnx import INPUT_NAME, OUTPUT_NAME, STRENGTH_NAME

        if self.family is None:  # an export holds one graph per offered direction
            direction, strength = self._exported(direction, strength)
        session = self.sessions.get(direction) or self._open(direction)
        feeds = {INPUT_NAME: images.cpu().numpy(), STRENGTH_NAME: strength.cpu().numpy()}
        return torch.from_numpy(session.run([OUTPUT_NAME], feeds)[0])  # type: ignore[attr-defined]

    def _exported(self, direction: Direction, strength: Tensor) -> tuple[Direction, Tensor]:
        """The exported graph for `direction`: an edit's amount is a factor of its strength
        (z + strength * amount * v), but edits applied together need one graph of their own."""
        if direction.also:
            raise UserError(
                f"an ONNX export runs one edit at a time, not "
                f"{' '.join(map(str, direction.targets))}; combine edits with the run directory "
                "(--engine torch, or --engine onnx on it)"
            )
        return direction.units[0], strength * direction.target.amount

    def _open(self, direction: Direction) -> object:
        from facefilter.inference.onnx import check_graph, exported_bytes, session

        if self.family is not None:  # a run directory: export this direction on the fly
            opened = session(exported_bytes(self.family.translator(direction), self.size),
                             self.threads)  # fmt: skip
        else:
            path = self.files[direction]
            if not path.is_file():
                raise UserError(f"{path} is listed in {path.parent} but missing; re-export")
            opened = session(path, self.threads)
            target, mark = str(direction.target), self.marks.get(direction)
            check_graph(opened, path, self.size, self.family_name, target, mark)
        self.sessions[direction] = opened
        return opened


class Filter:
    """A trained filter: its run config, directions, framing, and one engine to run them."""

    def __init__(
        self, config: RunConfig, directions: Sequence[Direction], backend: Backend, name: str = ""
    ) -> None:
        self.config = config
        # what the user loaded: the run folder (or RUN@step-N, the export, FILE.onnx)
        self.name = name or config.source.parent.name
        self.size = config.image_size  # width x height
        self.directions = list(directions)
        self.backend = backend
        # The trained model itself, where there is one (not for an ONNX export).
        self.family: Translates | None = backend.family
        model = self.family.config if self.family is not None else config.model_config()
        self.adds_changes = model.adds_changes()  # paste the change back, not the crop

    @classmethod
    def load(
        cls, path: Path | str, engine: Engine = "torch", device: str | None = None,
        overrides: Mapping[str, Any] | None = None, precision: Precision = "fp32",
        threads: int | None = None,
    ) -> Filter:  # fmt: skip
        """From a run directory, an export folder or an exported FILE.onnx. `overrides`
        replaces settings that only change inference (e.g. a feature editor's edit_focus);
        `precision` bf16 runs the torch engine in bf16 where the device computes it;
        `threads` caps the CPU threads a translation uses: onnxruntime's for this filter,
        torch's for the whole process (torch has one pool; every filter then shares it)."""
        if threads is not None and threads < 1:
            raise UserError(f"--threads {threads} must be 1 or more (unset: one a core)")
        flt = cls._load(path, engine, device, overrides, precision)
        if threads is not None:
            torch.set_num_threads(threads)
            if isinstance(flt.backend, OnnxBackend):
                flt.backend.threads = threads
        return flt

    @classmethod
    def _load(
        cls, path: Path | str, engine: Engine, device: str | None,
        overrides: Mapping[str, Any] | None, precision: Precision,
    ) -> Filter:  # fmt: skip
        path = Path(path)
        loaded = Path(os.path.abspath(path)).name  # `.` and `runs/p2a/` named too
        if engine not in ENGINES:
            raise UserError(f"unknown engine {engine!r}; choose {' or '.join(ENGINES)}")
        config = read_run_config(path)
        require(config.family, Translates, path)
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        if config.onnx is not None and overrides:
            flag = "--" + next(iter(overrides)).replace("_", "-")
            raise UserError(f"{path} is an ONNX export, whose settings are built in; apply the "
                            f"run directory to change {flag}")  # fmt: skip
        if engine == "torch":
            if config.onnx is not None:
                raise UserError(f"{path} is an ONNX export; run it with --engine onnx")
            chosen = pick_device(device)  # a bad --device is refused before the model loads
            check_precision(precision, engine, chosen)
            family = load_filter(path, overrides=overrides)
            family.to(chosen)
            torch_backend = TorchBackend(family, chosen, precision)
            return cls(config, family.directions(), torch_backend, loaded)
        check_precision(precision, engine, None)
        if device not in (None, "cpu"):
            raise UserError(f"--device {device}: the onnx engine runs on the CPU; drop --device")
        if config.onnx is None:  # a run directory: graphs exported as they are first used
            family = load_filter(path, overrides=overrides)
            backend = OnnxBackend({}, family, config.image_size)
            return cls(config, family.directions(), backend, loaded)
        folder = path.parent if path.suffix == ".onnx" else path
        files = {d: (path if path.suffix == ".onnx" else folder / name)
                 for name, d in config.onnx_directions().items()}  # fmt: skip
        marks = {d: config.onnx[name]["export"] for name, d in config.onnx_directions().items()
                 if isinstance(config.onnx[name].get("export"), str)}  # fmt: skip
        backend = OnnxBackend(files, None, config.image_size, config.family, marks)
        return cls(config, list(files), backend, loaded)

    @property
    def precision(self) -> str:
        """What the translators compute in: the torch engine's (fp32, bf16), or an export's
        graphs' as its table records them (int8; graphs exported before it: fp32)."""
        if self.config.onnx is not None:
            kinds = {str(entry.get("precision", "fp32")) for entry in self.config.onnx.values()}
            return ", ".join(sorted(kinds))
        return str(getattr(self.backend, "precision", "fp32"))

    def label(self, targets: Iterable[str], whole: bool = False) -> Provenance:
        """The "made by a filter" label of what this filter makes towards `targets` (all of
        them named, comma-separated); `whole`: the picture is the model's output entire."""
        return Provenance(f"{self.name} ({self.config.family})", ", ".join(targets), whole)

    # --- what the filter offers ------------------------------------------------------
    def targets(self) -> list[str]:
        return targets_of(self.directions)

    def resolve(self, target: str | Target, source: str | None = None) -> Direction:
        return resolve(self.directions, target, source)

    def no_targets(self) -> str:
        """Why this filter offers nothing yet (a feature editor before its vectors)."""
        run = self.config.source.parent
        if offers(self.config.family, EditsCodes):
            return (f"{run} offers no targets yet: a feature editor gets its edits from "
                    f"`facefilter vectors {run} --data SPEC`")  # fmt: skip
        return f"{run} offers no targets; retrain it"

    def target_or_only(self, target: str | None) -> str:
        """`target`, or the one target of a one-way model (makeover) when none is given."""
        offered = self.targets()
        if not offered:
            raise UserError(self.no_targets())
        if target is not None:
            return target
        if len(offered) != 1:
            raise UserError(f"--to is required: one of {', '.join(offered)}, or all "
                            "(--list-targets lists them)")  # fmt: skip
        return offered[0]

    def expand(self, target: str, source: str | None = None) -> list[Direction]:
        """The directions `--to TARGET` (or `--to all`) names."""
        return expand(self.directions, target, source)

    def combine(self, edits: Sequence[str]) -> Direction:
        """One direction that applies every edit together (`--edit +Smiling=1.5 --edit -Bangs`)."""
        return combine([self.resolve(edit) for edit in edits])

    def align_config(self, source: str | None = None, **override: float | None) -> AlignConfig:
        """The framing the model was trained on for faces of `source` (its domain's; None:
        the run's), with any `override` (margin, eye_height, ...)."""
        framing = dict(self.config.framing_of(source) or {})
        for key in ("eye_height", "eye_distance"):
            if override.get(key) is not None:
                framing[key] = float(override[key])  # type: ignore[arg-type]
        return align_config(framing or None, self.size, margin=override.get("margin"))

    # --- translating -----------------------------------------------------------------
    def translate(self, images: Tensor, direction: Direction, strength: float = 1.0) -> Tensor:
        """(B, 3, H, W) float in [-1, 1] -> the same faces in `direction.target`."""
        missing = [unit for unit in direction.units if unit not in self.directions]
        if missing:
            offered = ", ".join(self.targets()) or "nothing yet"
            raise UserError(f"this filter does not offer {missing[0]}; it offers {offered}")
        check_strength(strength)
        strengths = torch.full((images.shape[0],), float(strength))
        return self.backend.run(direction, images, strengths).clamp(-1, 1)

    def translate_crops(
        self, crops: Sequence[np.ndarray], direction: Direction, strength: float = 1.0
    ) -> list[np.ndarray]:
        """uint8 (H, W, 3) RGB crops at the model's size -> translated crops, one batch."""
        if not len(crops):
            return []
        pixels = torch.from_numpy(np.stack(crops)).to(self.backend.device)  # (B, S, S, 3)
        images = from_pixels(pixels.permute(0, 3, 1, 2))  # (B, 3, S, S) in [-1, 1]
        translated = to_pixels(self.translate(images, direction, strength))
        return list(translated.permute(0, 2, 3, 1).cpu().numpy())


MAX_STRENGTH = 10.0  # beyond it a change only saturates (and float32 overflows near 1e38)


def check_strength(strength: float) -> None:
    if not (math.isfinite(strength) and 0 <= strength <= MAX_STRENGTH):
        raise UserError(f"--strength {strength} must be a number >= 0 and at most "
                        f"{MAX_STRENGTH:g} (0: unchanged, 1: the full filter)")  # fmt: skip


def pick_device(device: str | None) -> torch.device:
    """`device`, or the GPU when there is one; one line for a device that is not there."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise UserError(f"--device {device!r} is not a device; use cpu, cuda or cuda:N") from None
    if chosen.type not in ("cpu", "cuda"):
        raise UserError(f"--device {device}: choose cpu, cuda or cuda:N")
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA GPU on this machine; use --device cpu")
    if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():
        raise UserError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s)")
    return chosen
