"""Attribute vectors: where an attribute lies in an autoencoder's code space.

For an attribute A, the vector is the mean code of N faces that have A minus the mean
code of N faces that lack it (the feature-changer write-up sums the N differences and
divides by N, which is the same mean difference). Adding it to a face's code adds A;
subtracting it removes A.

Faces are picked in one seeded order shared by every attribute, so the attributes
share most of their faces and one pass of the encoder over their union serves all of
them (at most N / (share of the rarest attribute) faces, not 2 N per attribute).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from facefilter.errors import UserError

PICK_SEED = 0  # which faces stand for an attribute: fixed, so vectors repeat exactly
BATCH = 64  # faces encoded at once


@dataclass
class VectorFit:
    """Vectors for the attributes `names`, row by row."""

    names: list[str]
    vectors: Tensor  # (A, D) mean code with the attribute minus mean code without
    counts: Tensor  # (A, 2) long: faces with and without it that were averaged; 0: no vector


def pick_faces(table: Tensor, count: int, seed: int = PICK_SEED) -> list[tuple[Tensor, Tensor]]:
    """Per attribute (column of the (N, A) 0/1 `table`), up to `count` indices of faces
    that have it and up to `count` that lack it, in one shared seeded order."""
    order = torch.randperm(table.shape[0], generator=torch.Generator().manual_seed(seed))
    present = table[order] > 0.5  # (N, A), rows in the shared order
    return [(order[present[:, a]][:count], order[~present[:, a]][:count])
            for a in range(table.shape[1])]  # fmt: skip


def check_count(table: Tensor, names: Sequence[str], chosen: Sequence[str], count: int) -> None:
    """An explicit --count must be met on both sides of every chosen attribute."""
    present = (table > 0.5).sum(0)  # (A,)
    total = table.shape[0]
    for name in chosen:
        have = int(present[list(names).index(name)])
        fewest = min(have, total - have)
        if fewest < count:
            raise UserError(
                f"--count {count}: {have} of the {total} faces have {name} and {total - have} "
                f"lack it; lower --count to {fewest}, leave --count out (up to 1000, fewer "
                "where the data has fewer), or give more faces"
            )


def check_names(wanted: Sequence[str], names: Sequence[str], where: str) -> None:
    for name in wanted:
        if name not in names:
            raise UserError(f"unknown attribute {name!r} in {where}; valid: {', '.join(names)}")


@torch.no_grad()
def fit_vectors(
    encode: Callable[[Tensor], Tensor],
    image_of: Callable[[int], Tensor],
    table: Tensor,
    names: Sequence[str],
    count: int,
    chosen: Sequence[str] | None = None,
) -> VectorFit:
    """Vectors for `chosen` attributes (all of `names` by default).

    `encode` maps images (B, 3, H, W) to codes (B, D); `image_of(i)` is face i as
    (3, H, W); `table` is (N, A) in {0, 1} with the columns `names`. An attribute that
    no face (or every face) has gets no vector (count 0).
    """
    chosen = list(names) if chosen is None else list(chosen)
    picks = pick_faces(table, count)
    wanted = [i for i, name in enumerate(names) if name in chosen]
    needed = sorted({int(i) for a in wanted for side in picks[a] for i in side})
    codes: dict[int, Tensor] = {}
    for start in range(0, len(needed), BATCH):
        indices = needed[start : start + BATCH]
        encoded = encode(torch.stack([image_of(i) for i in indices])).float().cpu()
        codes.update(zip(indices, encoded, strict=True))
    if not codes:
        raise UserError("no face has (or lacks) any chosen attribute; nothing to average")
    dim = next(iter(codes.values())).shape[0]
    vectors, counts = torch.zeros(len(names), dim), torch.zeros(len(names), 2, dtype=torch.long)
    for a in wanted:
        with_it, without = picks[a]
        if len(with_it) and len(without):
            mean_with = torch.stack([codes[int(i)] for i in with_it]).mean(0)
            mean_without = torch.stack([codes[int(i)] for i in without]).mean(0)
            vectors[a] = mean_with - mean_without
            counts[a] = torch.tensor([len(with_it), len(without)])
    return VectorFit(list(names), vectors, counts)
