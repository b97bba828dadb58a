"""The data-spec grammar and the `ImageSource` every source implements.

    kind:PATH?key=value&key2=value2      e.g. celeba:/data/celeba?where=Male,-Eyeglasses

Kept apart from `data.sources` (which opens each kind) so that sources living in
other packages, such as the built-in synthetic faces, build on it without a cycle.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset

from facefilter.errors import UserError

KIND_OPTIONS: dict[str, tuple[str, ...]] = {
    "synth": ("count", "seed", "where", "set", "limit"),
    "folder": ("limit",),
    "unpaired": ("side", "limit"),
    "celeba": ("where", "condition", "limit"),
    "classes": (),
    "hf": ("split", "image", "where", "label", "config", "limit"),
    "emoji": ("limit",),
}
OPTIONAL_PATH = ("emoji",)  # `emoji:` alone: the font where Debian installs it
SPLITS = ("train", "val", "test")
# Every kind also takes name=NAME: the domain's name in targets, sheets and exports
# (`synth:photo?where=-Male&name=female` trains a filter `--to female`).
COMMON_OPTIONS = ("name",)
NAME_PATTERN = r"[A-Za-z][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*"


@dataclass(frozen=True)
class SourceSpec:
    """A parsed spec: `celeba:/data/celeba?where=Male` -> ("celeba", "/data/celeba", {...})."""

    kind: str
    path: str
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        query = "&".join(f"{key}={value}" for key, value in self.options.items())
        return f"{self.kind}:{self.path}" + (f"?{query}" if query else "")


def parse_spec(spec: str) -> SourceSpec:
    """Split `kind:rest?key=value&key2=value2`; a bare path (no known kind) means `folder:`."""
    text = spec.strip()
    prefix, colon, rest = text.partition(":")
    if colon and prefix in KIND_OPTIONS:
        kind = prefix
    elif colon and re.fullmatch(r"[A-Za-z]\w+", prefix) and not Path(text).exists():
        # Two or more letters before ":" is a kind, not a Windows drive letter.
        raise UserError(
            f"unknown data kind {prefix!r} in {spec!r}; valid kinds: {', '.join(KIND_OPTIONS)} "
            "(a plain path means folder:)"
        )
    else:
        kind, rest = "folder", text
    path, _, query = rest.partition("?")
    if not path and kind not in OPTIONAL_PATH:
        what = "style(s), e.g. synth:photo" if kind == "synth" else f"path, e.g. {kind}:data/faces"
        raise UserError(f"data spec {spec!r} names no {what}")
    return SourceSpec(kind, path, _parse_options(query, kind, spec))


def _parse_options(query: str, kind: str, spec: str) -> dict[str, str]:
    valid = KIND_OPTIONS[kind] + COMMON_OPTIONS
    options: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        key, equals, value = pair.partition("=")
        if key not in valid:
            accepted = f"valid: {', '.join(valid)}"
            raise UserError(f"unknown option {key!r} for {kind}: in {spec!r}; {accepted}")
        if not equals or not value:
            raise UserError(f"option {key!r} in {spec!r} has no value; write {key}=VALUE")
        if key in options:
            raise UserError(f"option {key!r} appears twice in {spec!r}")
        options[key] = value
    name = options.get("name")
    if name is not None and (not re.fullmatch(NAME_PATTERN, name) or name.startswith("not-")):
        raise UserError(
            f"name={name} in {spec!r}: a domain name is letters, digits, _ and inner -, "
            "starting with a letter (not 'not-'), e.g. name=female"
        )
    return options


def int_option(spec: SourceSpec, key: str, default: int | None, minimum: int) -> int | None:
    text = spec.options.get(key)
    if text is None:
        return default
    if not re.fullmatch(r"-?\d+", text) or int(text) < minimum:
        raise UserError(f"{key}={text} in {spec}: must be a whole number >= {minimum}")
    return int(text)


class ImageSource(Dataset[dict[str, Any]], abc.ABC):
    """What every source is: a Dataset of face dicts plus the names the CLI and models need.

    `name` is the domain name ("anime", "selfies"), `class_names` has one entry per
    label value (one for a single domain), `attr_names` lists the attribute columns of
    `item["attrs"]` (empty when the source has none, and then items carry no "attrs").
    """

    def __init__(self, name: str, class_names: Sequence[str], attr_names: Sequence[str]) -> None:
        self.name = name
        self.class_names = list(class_names)
        self.attr_names = list(attr_names)

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    def attribute_table(self) -> Tensor | None:
        """(N, A) float in {0, 1}: row i is item i's attributes, read without decoding a
        single image (None when the source has no attribute table)."""
        return None

    def identities(self) -> list[Hashable] | None:
        """One key per item that names the face itself (its file, or its synthetic seed
        and number), so two sources can be compared; None when unknown."""
        return None

    def __repr__(self) -> str:
        classes = f", classes {self.class_names}" if len(self.class_names) > 1 else ""
        attrs = f", {len(self.attr_names)} attributes" if self.attr_names else ""
        return f"{type(self).__name__}({self.name!r}: {len(self)} images{classes}{attrs})"


def spec_folder(spec: str) -> Path | None:
    """The folder a spec reads its images from (None for the built-in synthetic faces)."""
    parsed = parse_spec(spec)
    if parsed.kind == "synth" or not parsed.path:
        return None
    path = Path(parsed.path).expanduser()
    return path.parent if path.is_file() else path
