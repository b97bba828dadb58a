"""Synthetic faces as a torch Dataset (`SynthFaces`) and as files in CelebA's layout
(`write_dataset`), with attributes optionally forced or filtered (see `edits`)."""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from facefilter.errors import UserError
from facefilter.pixels import from_pixels
from facefilter.safe_io import (
    free_megabytes,
    refuse_to_replace,
    replace_folder,
    write_bytes,
    write_text,
)
from facefilter.synth.edits import check_forced, force_attributes, where_mask
from facefilter.synth.params import SYNTH_ATTRIBUTES, FaceParams, sample_params, sample_params_at
from facefilter.synth.render import check_style_and_size, render
from facefilter.synth.styles import STYLES

_DATASET_CHUNK = 256  # faces a dataset renders (and caches) together
MAX_COUNT = 1_000_000  # faces per style: their ids and parameters are held in memory
SPLITS = {"train": 0, "val": 1, "test": 2}


def split_of(index: int) -> str:
    """The deterministic partition: id % 10 == 8 is val, == 9 is test, the rest train."""
    return "val" if index % 10 == 8 else "test" if index % 10 == 9 else "train"


class SynthFaces(Dataset):
    """`count` synthetic faces of `style`; item i is face `ids[i]` of `seed` in every
    style, so two styles with the same arguments are paired item by item.

    `where="Male,-Eyeglasses"` keeps the faces of the first `count` whose sampled
    attributes match (as `celeba:` filters); `force={"Male": False}` then sets
    attributes on the faces kept (the spec's `set=`, the CLI's `--set`): same people,
    same pose and backdrop, the attribute drawn as forced. Filtering comes first, so
    `where="Male", force={"Male": False}` is these men as women. Faces are rendered
    lazily, `_DATASET_CHUNK` at a time, and cached as uint8.
    """

    def __init__(self, style: str, size: int, count: int = 2000, seed: int = 0,
                 split: str | None = None, *, force: Mapping[str, bool] | None = None,
                 where: str | None = None, limit: int | None = None) -> None:  # fmt: skip
        check_style_and_size(style, size)
        if not 1 <= count <= MAX_COUNT:
            raise UserError(f"synthetic face count {count} must be 1 to {MAX_COUNT:,}")
        if split is not None and split not in SPLITS:
            raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)} or none")
        self.style, self.size, self.seed = style, size, seed
        self.forced = check_forced(force)
        ids = [i for i in range(count) if split is None or split_of(i) == split]
        params = sample_params_at(ids, seed)  # cheap; images are not
        if where:
            kept = where_mask(params.attributes, where, split)
            ids = [i for i, keep in zip(ids, kept.tolist(), strict=True) if keep]
            params = params.rows(kept.nonzero()[:, 0])
        if limit is not None and limit < len(ids):  # the first `limit` left: a small set
            ids, params = ids[:limit], params.rows(torch.arange(limit))
        self.ids = ids
        self.attr_names = list(SYNTH_ATTRIBUTES)
        self._attrs = force_attributes(params, self.forced).attributes  # (N, A) in {0, 1}
        self._cache: dict[int, Tensor] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def attribute_table(self) -> Tensor:
        """(N, A) float in {0, 1}: every face's attributes (as forced), without rendering."""
        return self._attrs.float()

    def _chunk(self, chunk: int) -> Tensor:
        if chunk not in self._cache:
            rows = slice(chunk * _DATASET_CHUNK, (chunk + 1) * _DATASET_CHUNK)
            sampled = sample_params_at(self.ids[rows], self.seed)
            forced = dataclasses.replace(sampled, attributes=self._attrs[rows])
            self._cache[chunk] = to_uint8(render_forced(sampled, forced, self.style, self.size))
        return self._cache[chunk]

    def __getitem__(self, item: int) -> dict[str, Tensor | int]:
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range for {len(self)} faces")
        pixels = self._chunk(item // _DATASET_CHUNK)[item % _DATASET_CHUNK]
        return {
            "image": from_pixels(pixels),  # (3, S, S) in [-1, 1]
            "attrs": self._attrs[item].clone(),
            "index": self.ids[item],
        }


def render_forced(sampled: FaceParams, forced: FaceParams, style: str, size: int) -> Tensor:
    """`render(forced)`, except that faces whose attributes forcing left alone come from
    `render(sampled)`: a face's pixels depend slightly on its batch (feature regions span
    the batch, and soft shading reaches their edges), and this keeps those faces
    byte-identical to the run without forcing. (N, 3, S, S) in [0, 1]"""
    changed = (forced.attributes != sampled.attributes).any(dim=1)  # (N,)
    if not changed.any():
        return render(sampled, style, size)
    if changed.all():
        return render(forced, style, size)
    images = render(sampled, style, size)
    rows = changed.nonzero()[:, 0]
    images[rows] = render(forced.rows(rows), style, size)
    return images


def to_uint8(images: Tensor) -> Tensor:
    """(N, 3, H, W) in [0, 1] -> uint8, rounding to nearest."""
    return images.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


PNG_LEVEL = 1  # zlib level: 2.6x faster to encode than PIL's 6, files ~10% larger (noise)
WRITERS = 2  # PNG encoding releases the GIL: threads write one chunk while the next renders
# Bytes per pixel of a written face (measured at 128 px, plus a margin): the disk a set needs
PNG_BYTES_PER_PIXEL = {"photo": 2.0, "anime": 0.9, "cartoon": 0.6}
TABLES = ("list_attr_celeba.txt", "list_eval_partition.txt")


def png_bytes(image: Tensor) -> bytes:
    """(3, H, W) uint8 -> PNG bytes. OpenCV's libpng encodes about 1.4x faster than PIL
    (and releases the GIL, so the writer threads overlap); PIL where OpenCV is not
    installed. Neither writes a timestamp, so equal pixels give equal bytes. Encoding in
    memory leaves the writing to Python, whose errors name their cause (a full disk)."""
    pixels = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
    try:
        import cv2
    except ImportError:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=PNG_LEVEL)
        return buffer.getvalue()
    # zlib's run-length strategy: faster than level 1's default and smaller on all three
    # styles (photo 28 vs 31 KB at 128 px, anime 12.4 vs 12.5, cartoon 7.0 vs 7.5)
    options = [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL,
               cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]  # fmt: skip
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels[:, :, ::-1]), options)
    if not ok:
        raise UserError("OpenCV could not encode a synthetic face as PNG")
    return encoded.tobytes()


def save_png(image: Tensor, path: Path) -> None:
    write_bytes(path, png_bytes(image))


def write_dataset(out: Path, count: int, size: int, seed: int, styles: Sequence[str],
                  force: Mapping[str, bool] | None = None) -> None:  # fmt: skip
    """Write `<out>/<style>/000001.png ...` (1-based, like CelebA), the attributes as
    `<out>/list_attr_celeba.txt` and the split as `<out>/list_eval_partition.txt`.
    `force` sets attributes after sampling (`SynthFaces`): the same faces as without it,
    and the table says what is drawn. The set is written beside `out` and swapped in
    whole: an earlier set there is replaced, a failure leaves it (or nothing) behind."""
    if not 1 <= count <= MAX_COUNT:
        raise UserError(f"synthetic face count {count} must be 1 to {MAX_COUNT:,}")
    if not styles:
        raise UserError(f"no styles given; choose from {', '.join(STYLES)}")
    for style in styles:
        check_style_and_size(style, size)
    forced = check_forced(force)
    out = Path(os.path.abspath(out))
    refuse_to_replace(out, "--out", "a synthetic set", earlier_set)
    # a file takes at least a 4 KB block on the usual file systems (ext4, tmpfs)
    per_face = [max(4096, size * size * PNG_BYTES_PER_PIXEL[style]) for style in styles]
    need, free = count * sum(per_face) / 2**20, free_megabytes(out)
    if need > free:
        raise UserError(f"{count} faces x {len(styles)} style(s) at {size} px need about "
                        f"{need:,.0f} MB, and {out.parent} has {free:,} MB free; "
                        "lower --count or --size, or write elsewhere")  # fmt: skip
    replace_folder(out, lambda tmp: write_faces(tmp, count, size, seed, styles, forced))


def earlier_set(out: Path) -> bool:
    """Whether `out` holds a synthetic set and nothing else: its tables and style folders."""
    return all((out / t).is_file() for t in TABLES) and all(
        e.name in TABLES or (e.is_dir() and e.name in STYLES) for e in out.iterdir()
    )


def write_faces(out: Path, count: int, size: int, seed: int, styles: Sequence[str],
                forced: dict[str, bool]) -> None:  # fmt: skip
    """The set's files in `out`, rendering a chunk while the last one is written (at most
    two chunks of images in memory)."""
    for style in styles:
        (out / style).mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.png" for i in range(count)]
    rows: list[str] = []
    with ThreadPoolExecutor(WRITERS) as writers:
        waiting: list[Future[None]] = []
        try:
            for start in range(0, count, _DATASET_CHUNK):
                sampled = sample_params(min(_DATASET_CHUNK, count - start), seed, start)
                params = force_attributes(sampled, forced)
                submitted = []
                for style in styles:
                    images = to_uint8(render_forced(sampled, params, style, size))
                    submitted += [writers.submit(save_png, image, out / style / names[start + i])
                                  for i, image in enumerate(images)]  # fmt: skip
                for job in waiting:
                    job.result()  # a failed write (disk full, permissions) raises here
                waiting = submitted
                for offset, attrs in enumerate(params.attributes.long().tolist()):
                    rows.append(names[start + offset] + "".join(f" {2 * a - 1:2d}" for a in attrs))
            for job in waiting:
                job.result()
        except BaseException:
            writers.shutdown(cancel_futures=True)  # the rest would fail the same way
            raise
    header = [str(count), " ".join(SYNTH_ATTRIBUTES)]
    write_text(out / TABLES[0], "\n".join(header + rows) + "\n")
    partition = [f"{name} {SPLITS[split_of(i)]}" for i, name in enumerate(names)]
    write_text(out / TABLES[1], "\n".join(partition) + "\n")
