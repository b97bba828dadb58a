"""Flag groups that several commands share, declared once: tyro lays each group's fields
out as plain flags (`--detector`, `--engine`, `--edit-focus`), with the help written here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import tyro

from facefilter.face.detect import DetectorSettings

if TYPE_CHECKING:
    from facefilter.inference import Filter

EditDetail = Literal["keep", "decode"]


@dataclass(frozen=True)
class Runtime:
    """Which engine runs a filter, and on what."""

    engine: Literal["torch", "onnx"] = "torch"  # onnx: run with onnxruntime
    device: str | None = None  # torch engine: cpu, cuda, cuda:1 ...; GPU when there is one

    def load(self, run: Path, overrides: Mapping[str, Any] | None = None) -> Filter:
        from facefilter.inference import Filter

        return Filter.load(run, engine=self.engine, device=self.device, overrides=overrides)


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
