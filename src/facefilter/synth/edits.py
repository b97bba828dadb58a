"""Synthetic ground truth for attribute edits: force attributes (`set`), filter on them
(`where`).

Forcing happens after sampling and changes attributes only, so a forced face is the
same person (identity, pose, light, backdrop, noise) with the attribute drawn on or
off, and a face that already had the forced values is left untouched, pixel for
pixel. Forcing follows `FaceParams.with_attribute`: the attributes it implies follow
(a beard makes a man, a hair colour replaces the others).

Values follow CelebA's table: 1 present, -1 absent (0 is refused: it could as well
mean "leave as drawn"). Syntax:

    CLI:   facefilter data synth --set Eyeglasses=1 --set Male=-1
    spec:  synth:photo?set=Eyeglasses:1,Male:-1
    spec:  synth:photo?where=Male,-Eyeglasses     (the same filter as celeba:)

`where` filters on the faces' sampled attributes and `set` then forces, so
`synth:photo?where=Male&set=Male:-1` is "these men, as women".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor

from facefilter.attributes import check_attribute, parse_where
from facefilter.errors import UserError
from facefilter.synth.params import SYNTH_ATTRIBUTES, FaceParams

_VALUES = {"1": True, "-1": False}  # CelebA's convention


def _parse_term(term: str, separator: str, shown: str) -> tuple[str, bool]:
    """`Male=-1` (separator "=") -> ("Male", False); `shown` is how errors quote it."""
    name, found, value = (part.strip() for part in term.partition(separator))
    if not found or not name:
        raise UserError(
            f"{shown}: write NAME{separator}1 or NAME{separator}-1, e.g. Eyeglasses{separator}1"
        )
    if name not in SYNTH_ATTRIBUTES:
        raise UserError(
            f"{shown}: unknown attribute {name!r}; synthetic faces draw "
            f"{', '.join(SYNTH_ATTRIBUTES)}"
        )
    if value not in _VALUES:
        raise UserError(
            f"{shown}: {value!r} is not a value for {name}; write 1 (present) or -1 (absent)"
        )
    return name, _VALUES[value]


def _collect(terms: Iterable[tuple[str, bool]], shown: str) -> dict[str, bool]:
    forced: dict[str, bool] = {}
    for name, value in terms:
        if name in forced:
            raise UserError(f"{shown} sets {name} twice; keep one")
        forced[name] = value
    return forced


def parse_set_flags(flags: Sequence[str]) -> dict[str, bool]:
    """The CLI's `--set Eyeglasses=1 --set Male=-1` -> {"Eyeglasses": True, "Male": False}."""
    return _collect((_parse_term(flag, "=", f"--set {flag}") for flag in flags), "--set")


def parse_set_option(text: str, shown: str) -> dict[str, bool]:
    """A spec's `set=Eyeglasses:1,Male:-1` -> {"Eyeglasses": True, "Male": False}."""
    return _collect((_parse_term(term, ":", shown) for term in text.split(",")), shown)


def check_forced(force: Mapping[str, bool] | None) -> dict[str, bool]:
    """The `force=` of the Python API: known names, real booleans (not 1 / -1)."""
    forced = dict(force or {})
    for name, value in forced.items():
        if name not in SYNTH_ATTRIBUTES:
            raise UserError(
                f"force: unknown attribute {name!r}; synthetic faces draw "
                f"{', '.join(SYNTH_ATTRIBUTES)}"
            )
        if not isinstance(value, bool):
            raise UserError(f"force: {name}={value!r} must be True or False")
    return forced


def force_attributes(params: FaceParams, forced: Mapping[str, bool]) -> FaceParams:
    """`params` with every attribute of `forced` set, in the order given. Only the faces
    whose value differs change, so the others keep all their attributes."""
    done: list[tuple[str, bool]] = []
    for name, value in forced.items():
        differs = params.attr(name) != float(value)  # (N,)
        edited = params.with_attribute(name, value)
        attributes = torch.where(differs[:, None], edited.attributes, params.attributes)
        params = dataclasses.replace(params, attributes=attributes)
        for earlier, wanted in done:
            if (params.attr(earlier) != float(wanted)).any():
                raise UserError(
                    f"setting {name}={_celeba(value)} undoes {earlier}={_celeba(wanted)} "
                    "(attributes stay consistent: beards only on men, one hair colour, "
                    "no bangs on a bald head); drop one of them"
                )
        done.append((name, value))
    return params


def _celeba(value: bool) -> str:
    return "1" if value else "-1"


def where_mask(attributes: Tensor, where: str, split: str | None) -> Tensor:
    """(N,) bool: the faces whose attributes (N, A) satisfy every term of `where`
    ("Male,-Eyeglasses", parsed as `celeba:` parses it); one clear error when none do."""
    names = list(SYNTH_ATTRIBUTES)
    mask = torch.ones(attributes.shape[0], dtype=torch.bool)
    counts = []
    for name, present in parse_where(where):
        column = check_attribute(name, names, "synthetic faces")
        holds = attributes[:, column].bool() == present
        mask &= holds
        counts.append(f"{'' if present else '-'}{name}: {int(holds.sum())}")
    if not mask.any():
        total = attributes.shape[0]
        detail = ", ".join(f"{count} of {total}" for count in counts)
        where_split = f"split {split!r}" if split else "all faces"
        raise UserError(
            f"where={where} selects no synthetic faces in {where_split} "
            f"({detail}, together: 0); loosen the filter or raise count="
        )
    return mask
