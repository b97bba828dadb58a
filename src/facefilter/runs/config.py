"""A run's public face: `config.json` and `model.safetensors`, read and written here only.

    runs/<name>/config.json        family, its config, domains, image size, framing, version
    runs/<name>/model.safetensors  inference weights (EMA copies where kept) + inference state

An export folder holds the same config.json plus an "onnx" table (file -> direction);
a single exported FILE.onnx has it as FILE.json beside it. `read_run_config` reads all
three, so `apply`, `export`, `eval` and the demo parse a run the same way. Nothing here
is pickled: both files are safe to download and share.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facefilter import __version__
from facefilter.errors import UserError
from facefilter.models import FAMILIES, config_class
from facefilter.models.base import Family, ModelConfig
from facefilter.models.targets import Direction, Target
from facefilter.safe_io import write_text
from facefilter.sizes import ImageSize

FORMAT_VERSION = 1  # bump when the run-directory layout changes incompatibly
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_PREFIX = "state."  # model.safetensors keys of `Family.inference_state`


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    write_text(path, json.dumps(payload, indent=2) + "\n", durable=True)


@dataclass
class RunConfig:
    """config.json, typed. `extra` keeps keys this version does not use, for re-writing."""

    family: str
    model: dict[str, Any]
    domains: list[str]
    image_size: ImageSize  # config.json: a side (128), or "80x100" when not square
    train: dict[str, Any] = field(default_factory=dict)
    onnx: dict[str, dict[str, Any]] | None = None  # export table: file -> direction
    source: Path = Path(CONFIG_FILE)  # the file it was read from
    extra: dict[str, Any] = field(default_factory=dict)

    # --- what `train` recorded under "train" (the TrainConfig it ran with), typed ------
    @property
    def seed(self) -> int:
        """The training seed: `synth:` specs default to it, so held-out faces stay so."""
        return int(self.train.get("seed", 0))

    def data_spec(self, which: str = "data") -> str | None:
        """The data spec training read: `data` (one set), `data_a` or `data_b` (two)."""
        spec = self.train.get(which)
        return str(spec) if spec else None

    @property
    def changes(self) -> list[dict[str, Any]]:
        """Every resume that changed a setting, with its step (`training.resume`)."""
        return list(self.train.get("changes", []))

    @property
    def framing(self) -> dict[str, float] | None:
        """Where faces sit in the training crops (recorded by `train`), if known."""
        framing = self.train.get("framing")
        return dict(framing) if framing else None

    def framing_of(self, domain: str | None) -> dict[str, float] | None:
        """How `domain`'s training crops were framed (runs before per-domain framings, and
        directions from any face, have the one framing)."""
        framings = self.train.get("framings") or {}
        return dict(framings[domain]) if domain in framings else self.framing

    def model_config(self) -> ModelConfig:
        return config_from_dict(config_class(self.family), self.model, self.source)

    def onnx_directions(self) -> dict[str, Direction]:
        """Export file name -> the direction it translates (empty for a run directory)."""
        return {name: Direction(entry["source"], Target.parse(entry["target"]))
                for name, entry in (self.onnx or {}).items()}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        payload = {
            **self.extra,
            "facefilter_version": __version__,
            "format_version": FORMAT_VERSION,
            "family": self.family,
            "model": self.model,
            "domains": self.domains,
            "image_size": self.image_size.json(),
            "normalization": {"range": [-1.0, 1.0], "layout": "RGB, (B, 3, H, W)"},
            "train": self.train,
        }
        if self.onnx is not None:
            payload["onnx"] = self.onnx
        return payload


def run_config(family: Family, train: Mapping[str, Any] | None = None) -> RunConfig:
    """The config.json of a trained `family`."""
    return RunConfig(family.registry_name, dataclasses.asdict(family.config), family.domains,
                     family.size, dict(train or {}))  # fmt: skip


def config_from_dict(
    cls: type[ModelConfig], values: Mapping[str, Any], source: Path
) -> ModelConfig:
    """Rebuild a config dataclass from JSON (lists back to tuples where the field is one)."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise UserError(
            f"{source}: unknown model settings {unknown} (written by a newer facefilter?); "
            "upgrade facefilter or retrain"
        )
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if not fits(value, hints[key]):
            raise UserError(
                f"{source}: model setting {key!r} is {value!r}, not of type "
                f"{describe(hints[key])}; restore the file or retrain"
            )
    fixed = {
        k: tuple(v) if isinstance(v, list) and _is_tuple(hints[k]) else v for k, v in values.items()
    }
    older = {k: v for k, v in cls.legacy_defaults.items() if k not in values}
    return cls(**older, **fixed)


def fits(value: Any, hint: Any) -> bool:
    """Does a JSON value fit a config field's type hint (ints for floats, lists for tuples)?"""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint is tuple or origin is tuple:
        inner = args[0] if args else Any
        return isinstance(value, list | tuple) and all(fits(v, inner) for v in value)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is type(None):
        return value is None
    return not isinstance(hint, type) or isinstance(value, hint)


def describe(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _is_tuple(hint: Any) -> bool:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_tuple(arg) for arg in typing.get_args(hint))
    return hint is tuple or typing.get_origin(hint) is tuple


def config_path(path: Path) -> Path:
    """Where the config of a run dir, export folder or single FILE.onnx lives (for a graph
    of a folder export, the folder's config.json)."""
    if path.suffix == ".onnx":
        if not path.is_file():
            raise UserError(f"ONNX file {path} does not exist; export one with `facefilter export`")
        beside, folder = path.with_suffix(".json"), path.parent / CONFIG_FILE
        return folder if not beside.is_file() and folder.is_file() else beside
    if not path.exists():
        raise UserError(f"run directory {path} does not exist; train one with `facefilter train`")
    return path / CONFIG_FILE


SNAPSHOTS = "checkpoints"  # RUN/checkpoints/step-005000.safetensors: `--keep-checkpoints N`


def snapshot_file(run: Path, step: int) -> Path:
    return run / SNAPSHOTS / f"step-{step:06d}.safetensors"


def kept_snapshots(run: Path) -> list[Path]:
    """RUN/checkpoints/step-*.safetensors, oldest step first (by number, not by name)."""
    files = (run / SNAPSHOTS).glob("step-*.safetensors")
    return sorted((p for p in files if p.stem[5:].isdigit()), key=lambda p: int(p.stem[5:]))


def split_snapshot(path: Path) -> tuple[Path, Path | None]:
    """`RUN@step-5000` -> (RUN, its weights kept at step 5000); a plain path -> (path, None)."""
    path = Path(path)
    name, _, tag = path.name.rpartition("@")
    found = re.fullmatch(r"step-?(\d+)", tag)
    if not found or not name or path.exists():  # runs/lr@1e-4 is a plain name
        return path, None
    run = path.with_name(name)
    file = snapshot_file(run, int(found[1]))
    if not file.is_file():
        kept = [p.stem for p in kept_snapshots(run)]
        listed = ", ".join(f"@{k}" for k in kept) or "none (train with --keep-checkpoints N)"
        raise UserError(f"{run} kept no weights at step {int(found[1])}; kept: {listed}")
    return run, file


def read_run_config(path: Path) -> RunConfig:
    """Read and check the config of a run, export folder or .onnx file; one line per fault.
    `RUN@step-5000` reads RUN's config (its weights at that step are for `load_family`)."""
    path = split_snapshot(Path(path))[0]
    file = config_path(path)
    if not file.is_file():
        what = f"has no {file.name} beside it; export it again" if path.suffix == ".onnx" else (
            f"is not a facefilter run: it has no {CONFIG_FILE}"
        )  # fmt: skip
        raise UserError(f"{path} {what}")
    try:
        raw = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{file} is not valid JSON ({error}); restore it or retrain") from None
    if not isinstance(raw, dict) or "family" not in raw:
        raise UserError(f"{file} is not a facefilter run config (no 'family' key)")
    if raw.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{file} has format version {raw.get('format_version')!r}; this facefilter "
            f"({__version__}) reads version {FORMAT_VERSION}: use the facefilter that wrote it"
        )
    if raw["family"] not in FAMILIES:
        raise UserError(
            f"{file} is a {raw['family']!r} model, which this facefilter does not know; "
            f"known families: {', '.join(FAMILIES)}"
        )
    try:
        known = {f.name for f in dataclasses.fields(RunConfig)} - {"source", "extra"}
        fields = {k: raw[k] for k in known if k in raw}
        extra = {k: v for k, v in raw.items() if k not in known}
        config = RunConfig(**fields, source=file, extra=extra)
        config.image_size = ImageSize.parse(config.image_size)
    except TypeError as error:
        raise UserError(f"{file} lacks a required key ({error}); restore it or retrain") from None
    except UserError as error:
        raise UserError(f"{file}: {error}; restore it or retrain") from None
    check_shapes(config, file)
    return narrowed(config, path)


def check_shapes(config: RunConfig, file: Path) -> None:
    """The JSON types of config.json's sections (a hand-edited file fails here, in one line)."""
    expected = {
        "model": isinstance(config.model, dict),
        "domains": isinstance(config.domains, list)
        and all(isinstance(d, str) for d in config.domains),
        "train": isinstance(config.train, dict),
        "onnx": config.onnx is None or (isinstance(config.onnx, dict) and all(
            isinstance(e, dict) and {"source", "target"} <= set(e) for e in config.onnx.values())),
    }  # fmt: skip
    for key, ok in expected.items():
        if not ok:
            raise UserError(f"{file}: {key!r} has the wrong shape ({getattr(config, key)!r:.60}); "
                            "restore the file or retrain")  # fmt: skip


def narrowed(config: RunConfig, path: Path) -> RunConfig:
    """One graph taken out of a folder export: only its own entry of the folder's table.
    (A single-file export has a FILE.json of its own with its one entry, so it may be
    renamed; a graph read through the folder's config.json must keep its name.)"""
    if path.suffix != ".onnx":
        return config
    if config.onnx is None:  # a run's own config.json beside a stray .onnx file
        raise UserError(
            f"{path} has no {path.with_suffix('.json').name} beside it; export it again"
        )
    if config.source.name != CONFIG_FILE:
        return config
    if path.name not in config.onnx:
        raise UserError(f"{path} is not listed in {config.source}; export it again")
    return dataclasses.replace(config, onnx={path.name: config.onnx[path.name]})


def write_run_config(path: Path, config: RunConfig) -> None:
    write_json(path, config.to_dict())
