"""From data specs to the batches a family's `train_step` receives.

Batch order is a pure function of (seed, step): the sample at global position p
of a stream is `permutation(epoch = p // N)[p % N]`, each epoch's permutation
drawn from its own seeded generator. A run resumed at step k therefore sees the
same batches as one that never stopped, with no sampler state to save, and with
several processes each takes its own slice of the same global batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from facefilter.data.sources import ImageSource, open_source
from facefilter.errors import UserError
from facefilter.models.base import STYLE_PREFIX, DataKind
from facefilter.sizes import ImageSize

SAMPLE_COUNT = 4  # images per domain in the periodic sample grid


class Stream:
    """An endless, seeded shuffle of range(n): epoch e uses permutation(seed, e)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed

    @lru_cache(maxsize=4)  # noqa: B019 - a handful of epochs, one stream per run
    def permutation(self, epoch: int) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=generator)

    def __getitem__(self, position: int) -> int:
        return int(self.permutation(position // self.n)[position % self.n])


class StepBatches:
    """Batch sampler: the index lists of this process's share of steps start, start+1, ..."""

    def __init__(
        self, streams: Sequence[Stream], batch_size: int, start_step: int, rank: int, world: int
    ) -> None:
        self.streams, self.batch_size = list(streams), batch_size
        self.start_step, self.rank, self.world = start_step, rank, world

    def __iter__(self) -> Iterator[list[Any]]:
        step = self.start_step
        while True:
            first = (step * self.world + self.rank) * self.batch_size
            positions = range(first, first + self.batch_size)
            if len(self.streams) == 1:
                yield [self.streams[0][p] for p in positions]
            else:
                yield [tuple(s[p] for s in self.streams) for p in positions]
            step += 1


class UnpairedPairs(Dataset):
    """Item (i, j) is image i of domain A with image j of domain B."""

    def __init__(self, a: ImageSource, b: ImageSource) -> None:
        self.a, self.b = a, b

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, index: tuple[int, int]) -> dict[str, Tensor]:
        return {"real_a": self.a[index[0]]["image"], "real_b": self.b[index[1]]["image"]}


class Picked(Dataset):
    """From each item of a source, what one data kind's batches hold: "image", and "label"
    (a tensor) and / or "attrs" ((A,) in {0, 1}; (0,) where the source has no table)."""

    def __init__(self, source: ImageSource, keys: tuple[str, ...]) -> None:
        self.source, self.keys = source, keys
        self.attr_names = source.attr_names

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.source[index]
        picked = {"image": item["image"]}
        if "label" in self.keys:
            picked["label"] = torch.tensor(item["label"])
        if "attrs" in self.keys:
            picked["attrs"] = item.get("attrs", torch.zeros(0))
        return picked

    def attribute_table(self) -> Tensor:
        """(N, A) float in {0, 1}, read without decoding images."""
        table = self.source.attribute_table()
        assert table is not None, "only sources with an attribute table are asked for it"
        return table

    def sample(self, count: int) -> dict[str, Tensor]:
        """`count` items spread over the set, batched: the sample grids' faces."""
        items = [self[i] for i in spread_indices(len(self), count)]
        return {key: torch.stack([it[key] for it in items]) for key in ("image", *self.keys)}


@dataclass
class TrainingData:
    dataset: Dataset
    streams: list[Stream]
    domains: list[str]
    sample_batch: dict[str, Tensor]  # fixed held-out batch for the sample grids
    epoch_size: int  # images per epoch (of domain A for unpaired data)

    def loader(
        self, batch_size: int, start_step: int, workers: int, rank: int = 0, world: int = 1
    ) -> DataLoader:
        sampler = StepBatches(self.streams, batch_size, start_step, rank, world)
        return DataLoader(
            self.dataset,
            batch_sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def batches(
        self, batch_size: int, start_step: int, workers: int, rank: int = 0, world: int = 1
    ) -> Iterator[dict[str, Tensor]]:
        """The loader's batches, from `start_step` on. A mistake a data-loading worker
        finds (an unreadable image) is raised as the one-line UserError it was: torch
        re-raises it with the worker's traceback as its message."""
        batches = iter(self.loader(batch_size, start_step, workers, rank, world))
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except UserError as error:
                raise UserError(worker_message(str(error))) from None
            yield batch


def worker_message(report: str) -> str:
    """The message of a UserError as torch reports it from a worker ("Caught UserError in
    DataLoader worker process 0. Original Traceback ... UserError: MESSAGE")."""
    lines = [line for line in report.strip().splitlines() if line.strip()]
    return lines[-1].split("UserError: ", 1)[-1] if len(lines) > 1 else report


def build_training_data(
    kind: DataKind,
    *,
    size: int | ImageSize,
    seed: int,
    data: str | None = None,
    data_a: str | None = None,
    data_b: str | None = None,
) -> TrainingData:
    """Open the sources a family of `kind` trains on, with a held-out sample batch."""
    if kind == "unpaired":
        if data_a is None or data_b is None:
            raise UserError(
                "this family trains on two domains: pass --data-a SPEC and --data-b SPEC"
            )
        return _unpaired_data(data_a, data_b, size, seed)
    if data is None:
        what = {
            "attributes": "faces with an attribute table (e.g. synth:photo or celeba:DIR)",
            "labels": "faces with attributes or classes (e.g. synth:photo,anime,cartoon "
            "or celeba:DIR)",
        }.get(kind, "labelled classes (e.g. classes:DIR)")
        raise UserError(f"this family trains on {what}: pass --data SPEC")
    if kind == "attributes":
        return _attribute_data(data, size, seed)
    if kind == "labels":
        return _label_data(data, size, seed)
    return _class_data(data, size, seed)


def _unpaired_data(data_a: str, data_b: str, size: int | ImageSize, seed: int) -> TrainingData:
    a, b = (
        open_source(data_a, size, "train", seed=seed),
        open_source(data_b, size, "train", seed=seed),
    )
    if a.name == b.name:
        raise UserError(f"--data-a and --data-b are both named {a.name!r}; name one apart "
                        "with ?name=NAME, e.g. --data-b 'faces?name=anime'")  # fmt: skip
    # Identical sets only: one inside the other is a use (men -> attractive men).
    same = a.identities() if len(a) == len(b) else None
    if same is not None and set(same) == set(b.identities() or ()):
        raise UserError(
            f"--data-a {data_a} and --data-b {data_b} select the same {len(a)} faces; filter "
            "the two sides apart (e.g. where=Male and where=-Male)"
        )
    held_a = held_out(data_a, size, seed, a)
    held_b = held_out(data_b, size, seed, b)
    sample = {
        "real_a": torch.stack([held_a[i]["image"] for i in spread_indices(len(held_a))]),
        "real_b": torch.stack([held_b[i]["image"] for i in spread_indices(len(held_b))]),
    }
    streams = [Stream(len(a), seed), Stream(len(b), seed + 1)]
    return TrainingData(UnpairedPairs(a, b), streams, [a.name, b.name], sample, len(a))


def _class_data(data: str, size: int | ImageSize, seed: int) -> TrainingData:
    source = open_source(data, size, "train", seed=seed)
    if len(source.class_names) < 2:
        raise UserError(
            f"{data} gives one class ({source.class_names[0]}); this family needs two or more, "
            "e.g. synth:photo,anime,cartoon or classes:DIR with one sub-folder per class"
        )
    held = Picked(held_out(data, size, seed, source), ("label",))
    return TrainingData(Picked(source, ("label",)), [Stream(len(source), seed)],
                        source.class_names, held.sample(SAMPLE_COUNT * len(source.class_names)),
                        len(source))  # fmt: skip


def _attribute_data(data: str, size: int | ImageSize, seed: int) -> TrainingData:
    source = open_source(data, size, "train", seed=seed)
    if source.attribute_table() is None:
        raise UserError(
            f"{data} has no attribute table; an attribute editor learns from one: "
            "synth:photo, or celeba:DIR (list_attr_celeba.txt beside the images)"
        )
    if len(source.attr_names) < 2:
        raise UserError(f"{data} has {len(source.attr_names)} attribute(s); give at least two")
    held = Picked(held_out(data, size, seed, source), ("attrs",))
    return TrainingData(Picked(source, ("attrs",)), [Stream(len(source), seed)],
                        source.attr_names, held.sample(2 * SAMPLE_COUNT), len(source))  # fmt: skip


def _label_data(data: str, size: int | ImageSize, seed: int) -> TrainingData:
    source = open_source(data, size, "train", seed=seed)
    styles = source.class_names if len(source.class_names) > 1 else []
    if not source.attr_names and not styles:
        raise UserError(
            f"{data} has neither an attribute table nor classes, so there is nothing to "
            "learn; give celeba:DIR, synth:photo,anime,cartoon or classes:DIR"
        )
    keys = ("attrs", "label")
    held = Picked(held_out(data, size, seed, source), keys)
    domains = [*source.attr_names, *(STYLE_PREFIX + name for name in styles)]
    return TrainingData(Picked(source, keys), [Stream(len(source), seed)], domains,
                        held.sample(2 * SAMPLE_COUNT), len(source))  # fmt: skip


def held_out(spec: str, size: int | ImageSize, seed: int, train: ImageSource) -> ImageSource:
    """The validation split, or the training set when the source has no held-out images."""
    try:
        held = open_source(spec, size, "val", seed=seed)
    except UserError:
        return train
    return held if len(held) > 0 else train


def spread_indices(n: int, count: int = SAMPLE_COUNT) -> list[int]:
    """`count` indices spread evenly over range(n), so every class shows up."""
    count = min(count, n)
    return [i * n // count for i in range(count)]
