"""Flag groups that several commands share, declared once: tyro lays each group's fields
out as plain flags (`--detector`, `--engine`, `--edit-focus`), with the help written here."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import tyro

from facefilter.errors import UserError
from facefilter.face.detect import DetectorSettings

if TYPE_CHECKING:
    from facefilter.inference import Filter

EditDetail = Literal["keep", "decode"]


@dataclass(frozen=True)
class Runtime:
    """Which engine runs a filter, and on what."""

    engine: Literal["torch", "onnx"] = "torch"  # onnx: run with onnxruntime
    device: str | None = None  # torch engine: cpu, cuda, cuda:1 ...; GPU when there is one
    # torch engine: bf16 where the CPU (AMX, AVX512-BF16) or GPU computes it natively
    precision: Literal["fp32", "bf16"] = "fp32"
    # CPU threads a translation uses; unset: one a core (a browser on the same machine, as
    # in benchmarks/live_page.py, leaves the filter more frames a second with 1)
    threads: int | None = None

    def load(self, run: Path, overrides: Mapping[str, Any] | None = None) -> Filter:
        from facefilter.inference import Filter

        return Filter.load(run, engine=self.engine, device=self.device, overrides=overrides,
                           precision=self.precision, threads=self.threads)  # fmt: skip


@dataclass(frozen=True)
class EditSettings:
    """Feature editors' inference settings (a run's own where unset)."""

    edit_detail: EditDetail | None = None  # editors: keep (photo + edit), decode; unset: the run's
    edit_focus: float | None = None  # editors: 0 edits everywhere; unset: the run's

    def overrides(self) -> dict[str, Any]:
        """The settings given, to override the run's (`Filter.load(..., overrides=)`)."""
        given = {"edit_detail": self.edit_detail, "edit_focus": self.edit_focus}
        return {name: value for name, value in given.items() if value is not None}


# The groups as fields of a command: `detection: Detection = DetectorSettings()`.
Detection = Annotated[DetectorSettings, tyro.conf.OmitArgPrefixes]
Running = Annotated[Runtime, tyro.conf.OmitArgPrefixes]
Editing = Annotated[EditSettings, tyro.conf.OmitArgPrefixes]


def check_numbers(command: Any) -> None:
    """One line for a number flag that is NaN or infinite, in any command: no value of a
    weight, rate, strength, size or time is meaningful there, and NaN passes every range
    check (`nan < 0` is false) to train NaN weights or draw black tiles."""
    if not dataclasses.is_dataclass(command):
        return
    for item in dataclasses.fields(command):
        value = getattr(command, item.name)
        values = value if isinstance(value, tuple) else (value,)
        for number in values:
            if isinstance(number, float) and not math.isfinite(number):
                flag = "--" + item.name.replace("_", "-")
                raise UserError(f"{flag} {number}: give a finite number")
        check_numbers(value)
