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

An edit may carry its own amount (`+Smiling=1.5`: one and a half attribute vectors),
and edits combine into one direction (`combine`: `--edit +Smiling=1.5 --edit
-Eyeglasses` is one output with both). `resolve` picks the direction a user asked
for, or says in one line which exist.
This module knows nothing of networks, so the ONNX engine resolves without torch models.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from facefilter.errors import UserError

ALL_TARGETS = "all"  # `--to all`: every target reachable from the source, side by side
_NAME = re.compile(r"[A-Za-z0-9][\w.+-]*")  # "+" inside: a filter-named domain, not-Male+Young


@dataclass(frozen=True)
class Target:
    """A domain or class (`sign` 0), or an attribute to add (+1) or remove (-1) by
    `amount` attribute vectors (1 unless written `+Smiling=1.5`)."""

    name: str
    sign: int = 0
    amount: float = 1.0

    def __post_init__(self) -> None:
        if self.sign not in (-1, 0, 1):
            raise ValueError(f"Target.sign must be -1, 0 or 1, got {self.sign}")

    @classmethod
    def parse(cls, text: str | Target) -> Target:
        """`anime` -> a domain; `+Smiling` / `-Eyeglasses` / `+Smiling=1.5` -> an edit."""
        if isinstance(text, Target):
            return text
        stripped = text.strip()
        sign = {"+": 1, "-": -1}.get(stripped[:1], 0)
        name, equals, amount_text = (stripped[1:] if sign else stripped).partition("=")
        if not _NAME.fullmatch(name):
            raise UserError(
                f"target {text!r} is not a name: give a domain or class (anime) or an "
                "attribute edit (+Smiling, -Eyeglasses, +Smiling=1.5)"
            )
        if not equals:
            return cls(name, sign)
        if not sign:
            raise UserError(
                f"target {text!r}: an amount is for attribute edits (+{name}={amount_text}); "
                "for a domain use --strength"
            )
        return cls(name, sign, _amount(amount_text, text))

    @property
    def is_edit(self) -> bool:
        return self.sign != 0

    @property
    def unit(self) -> Target:
        """The same target at amount 1: what a model offers."""
        return replace(self, amount=1.0) if self.amount != 1.0 else self

    def __str__(self) -> str:
        amount = f"={self.amount:g}" if self.amount != 1.0 else ""
        return {1: "+", -1: "-", 0: ""}[self.sign] + self.name + amount


def _amount(text: str, shown: str) -> float:
    try:
        amount = float(text)
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount) or amount <= 0:
        raise UserError(
            f"target {shown!r}: the amount {text!r} must be a number > 0 "
            "(+Smiling=1.5 adds more smile; -Smiling removes it)"
        )
    return amount


@dataclass(frozen=True)
class Direction:
    """One translation: faces of `source` (None: any face) to `target`, and for attribute
    edits applied together (`--edit +Smiling --edit -Eyeglasses`), the edits in `also`."""

    source: str | None
    target: Target
    also: tuple[Target, ...] = ()

    @property
    def targets(self) -> tuple[Target, ...]:
        return (self.target, *self.also)

    @property
    def units(self) -> tuple[Direction, ...]:
        """Each target on its own at amount 1: the directions a model offers."""
        return tuple(Direction(self.source, target.unit) for target in self.targets)

    def __str__(self) -> str:
        return f"{self.source or 'any face'} -> {' '.join(str(t) for t in self.targets)}"


def targets_of(directions: Sequence[Direction]) -> list[str]:
    """The distinct targets, in the family's order (what `--list-targets` prints)."""
    return list(dict.fromkeys(str(d.target) for d in directions))


def resolve(
    directions: Sequence[Direction], target: str | Target, source: str | None = None
) -> Direction:
    """The one direction towards `target` (from `source`); UserError listing the valid ones.
    An edit's amount (`+Smiling=1.5`) is kept on the direction returned."""
    wanted = Target.parse(target)
    towards = [d for d in directions if d.target == wanted.unit]
    if not towards:
        raise UserError(_unknown(wanted, directions))
    sources = [d.source for d in towards if d.source is not None]
    if source is not None:
        chosen = [d for d in from_source(directions, source) if d.target == wanted.unit]
        if not chosen:
            raise UserError(
                f"no translation from {source!r} to {str(wanted)!r}; {wanted.unit} is reached "
                f"from {', '.join(sources)}"
            )
        return replace(chosen[0], target=wanted)
    if len(towards) > 1:
        raise UserError(
            f"this model cannot guess the input's class: pass --from <class> "
            f"(one of {', '.join(sources)}) to reach {wanted}"
        )
    return replace(towards[0], target=wanted)


def _unknown(wanted: Target, directions: Sequence[Direction]) -> str:
    """Why no direction reaches `wanted`, with what the model offers instead."""
    if not directions:
        return (
            f"this model offers no targets yet, so not {str(wanted)!r}: an attribute editor "
            "gets its edits from `facefilter vectors RUN --data SPEC`"
        )
    edits = sorted({d.target.name for d in directions if d.target.is_edit})
    if wanted.is_edit and not edits:
        return (
            f"this model has no attribute vectors, so no edit such as {str(wanted)!r}; it "
            f"translates to {', '.join(targets_of(directions))} (edits need a dcae or pgae run)"
        )
    if wanted.is_edit:
        return (
            f"unknown attribute {wanted.name!r}; this model edits {', '.join(edits)} "
            "(+NAME adds, -NAME removes)"
        )
    return f"unknown target {str(wanted)!r}; this model offers {', '.join(targets_of(directions))}"


def combine(directions: Sequence[Direction]) -> Direction:
    """Several attribute edits as one direction (`--edit +Smiling=1.5 --edit -Eyeglasses`)."""
    if not directions:
        raise UserError("no edit given; write --edit +ATTRIBUTE or --edit -ATTRIBUTE")
    targets = [t for d in directions for t in d.targets]
    for target in targets:
        if not target.is_edit:
            raise UserError(
                f"--edit {target}: {target.name} is a domain or class, not an attribute edit; "
                f"use --to {target}"
            )
    names = [t.name for t in targets]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"--edit names {twice[0]} twice; give each attribute once")
    return Direction(None, targets[0], tuple(targets[1:]))


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
