"""What a filter turns a face into, and the directions a model offers.

A `Target` is either a domain or class (`anime`, `photo`, `Young`) or an attribute
edit (`+Smiling`, `-Eyeglasses`); both are values of one type, so `apply`, `export`,
`eval` and the demo ask every family the same question. A `Direction` is one
translation a model can run: from a source (or from any face, for attribute edits)
to a target. Each family declares its directions:

- CycleGAN: its two domains, each from the other;
- trVAE: any class to any other class;
- a makeover GAN: one direction;
- a feature autoencoder: attribute edits, from any face.

`resolve` picks the direction a user asked for, or says in one line which exist.
This module knows nothing of networks, so the ONNX engine resolves without torch models.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from facefilter.errors import UserError

ALL_TARGETS = "all"  # `--to all`: every target reachable from the source, side by side
_NAME = re.compile(r"[A-Za-z0-9][\w.-]*")


@dataclass(frozen=True)
class Target:
    """A domain or class (`sign` 0), or an attribute to add (+1) or remove (-1)."""

    name: str
    sign: int = 0

    def __post_init__(self) -> None:
        if self.sign not in (-1, 0, 1):
            raise ValueError(f"Target.sign must be -1, 0 or 1, got {self.sign}")

    @classmethod
    def parse(cls, text: str | Target) -> Target:
        """`anime` -> a domain; `+Smiling` / `-Eyeglasses` -> an attribute edit."""
        if isinstance(text, Target):
            return text
        stripped = text.strip()
        sign = {"+": 1, "-": -1}.get(stripped[:1], 0)
        name = stripped[1:] if sign else stripped
        if not _NAME.fullmatch(name):
            raise UserError(
                f"target {text!r} is not a name: give a domain or class (anime) or an "
                "attribute edit (+Smiling, -Eyeglasses)"
            )
        return cls(name, sign)

    @property
    def is_edit(self) -> bool:
        return self.sign != 0

    def __str__(self) -> str:
        return {1: "+", -1: "-", 0: ""}[self.sign] + self.name


@dataclass(frozen=True)
class Direction:
    """One translation a model offers: faces of `source` (None: any face) to `target`."""

    source: str | None
    target: Target

    def __str__(self) -> str:
        return f"{self.source or 'any face'} -> {self.target}"


def targets_of(directions: Sequence[Direction]) -> list[str]:
    """The distinct targets, in the family's order (what `--list-targets` prints)."""
    return list(dict.fromkeys(str(d.target) for d in directions))


def resolve(
    directions: Sequence[Direction], target: str | Target, source: str | None = None
) -> Direction:
    """The one direction towards `target` (from `source`); UserError listing the valid ones."""
    wanted = Target.parse(target)
    towards = [d for d in directions if d.target == wanted]
    if not towards:
        raise UserError(
            f"unknown target {str(wanted)!r}; this model offers {', '.join(targets_of(directions))}"
        )
    sources = [d.source for d in towards if d.source is not None]
    if source is not None:
        chosen = [d for d in from_source(directions, source) if d.target == wanted]
        if not chosen:
            raise UserError(
                f"no translation from {source!r} to {str(wanted)!r}; {wanted} is reached "
                f"from {', '.join(sources)}"
            )
        return chosen[0]
    if len(towards) > 1:
        raise UserError(
            f"this model cannot guess the input's class: pass --from <class> "
            f"(one of {', '.join(sources)}) to reach {wanted}"
        )
    return towards[0]


def from_source(directions: Sequence[Direction], source: str | None) -> list[Direction]:
    """The directions that start from `source` (all when None); UserError for a source
    the model does not know."""
    if source is None:
        return list(directions)
    known = sorted({d.source for d in directions if d.source is not None})
    if known and source not in known:
        raise UserError(f"unknown source {source!r}; this model translates from {', '.join(known)}")
    return [d for d in directions if d.source in (source, None)]


def expand(
    directions: Sequence[Direction], target: str, source: str | None = None
) -> list[Direction]:
    """`--to all`: one direction per target reached from `source`; else the one asked for."""
    if target != ALL_TARGETS:
        return [resolve(directions, target, source)]
    chosen = from_source(directions, source)
    if not chosen:
        raise UserError(f"--to all: nothing is reached from {source!r}; check --from")
    return [resolve(chosen, name, source) for name in targets_of(chosen)]
