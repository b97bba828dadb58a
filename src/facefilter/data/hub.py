"""The `hf:` data source: a Hugging Face `datasets` set, from the hub or saved on disk.

    hf:huggan/selfie2anime?image=imageB&name=anime   a hub set (OWNER/NAME), downloaded once
    hf:selfie2anime-hf?image=imageA&name=selfie      a copy written by `save_to_disk`
    hf:faces.parquet    hf:parquet-folder            parquet (splits from file names: train-*)
    hf:photos                                        a folder of images (datasets' imagefolder:
                                                     class sub-folders, metadata.csv columns)
    hf:PATH?where=Male,-Eyeglasses&label=style:anime&limit=500

An existing path wins over a hub name. Options, besides name=:

    split=NAME          the set's split to read for every facefilter split. Without it:
                        train -> train; val -> validation, val, valid or test; test -> test,
                        validation, val or valid; else train, with a warning. A set saved
                        without splits (`Dataset.save_to_disk`) gives every split all its rows.
    image=COLUMN        the image column (default: the first; selfie2anime has imageA, imageB)
    where=A,-B          rows whose attribute A holds and B does not (celeba:'s grammar); an
                        attribute is a bool column, or an integer one holding only 0/1 or -1/1
    label=COLUMN:VALUE  rows whose class-label, text or integer column equals VALUE
    config=NAME         the hub set's configuration (subset), where it has several
    limit=N             the first N rows left after filtering

Rows are chosen from the non-image columns alone, so filtering decodes no image; items
are then read by index. The source is map-style, as every source is, so batch order is a
function of (seed, step) and resume is exact. That is why there is no streaming option:
streaming gives no random access. A hub set is read through datasets' memory-mapped Arrow
cache instead, which keeps memory flat however large the set. Images are decoded per item
by `data.images`, as files are: a broken one is skipped with one warning and replaced by
the next good row, as `FileImageSource` does.

`datasets` is imported on first use (half a second), so other kinds never pay for it.
Parquet and image folders are converted once into its cache (HF_DATASETS_CACHE).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from facefilter.attributes import check_attribute, parse_where
from facefilter.data.celeba import where_domain_name
from facefilter.data.images import (
    IMAGE_EXTENSIONS,
    BrokenImages,
    ImageError,
    decode_image,
    load_image,
    to_tensor,
)
from facefilter.data.spec import ImageSource, SourceSpec, int_option
from facefilter.errors import UserError
from facefilter.sizes import ImageSize

NEEDS_DATASETS = "hf: data needs the datasets library: pip install 'facefilter[hub]'"
HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")  # owner/name
# The set's splits each facefilter split reads, best first (train is the last resort).
SPLIT_NAMES = {
    "train": ("train",),
    "val": ("validation", "val", "valid", "test"),
    "test": ("test", "validation", "val", "valid"),
}
UNSPLIT = "all"  # the split name of a set saved without splits
_INTEGER_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


class HubImageSource(ImageSource):
    """Chosen rows of one split of a `datasets` set, each image decoded when read.

    `images` holds the chosen rows' image column alone, undecoded ({"bytes", "path"} per
    row); `rows` are their numbers in the split. A row that fails to decode is warned
    about once (the first), remembered, and replaced by the next good item (index + 1,
    + 2, ... modulo len): the same in every run and every worker. The item's "index" is
    the index of the item actually returned.
    """

    def __init__(
        self,
        images: Any,  # datasets.Dataset
        column: str,
        size: ImageSize,
        *,
        name: str,
        origin: tuple[str, str],  # (the set's real path or hub name, the split read)
        rows: Sequence[int],
        attrs: np.ndarray | None = None,  # (N, A) bool
        attr_names: Sequence[str] = (),
    ) -> None:
        super().__init__(name, [name], attr_names)
        self._images, self._column, self._origin = images, column, origin
        self._rows = [int(row) for row in rows]
        # (N, A) float in {0, 1}; 200k rows x 40 is 32 MB
        self._attrs = None if attrs is None else torch.from_numpy(attrs.astype(np.float32))
        self.size = size
        self._broken = BrokenImages()

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        candidate, image = self._broken.first_good(index, len(self), self._decode, self.name)
        item = {"image": to_tensor(image, self.size), "label": 0, "index": candidate}
        if self._attrs is not None:
            item["attrs"] = self._attrs[candidate]  # (A,) float in {0, 1}
        return item

    def attribute_table(self) -> torch.Tensor | None:
        return self._attrs

    def identities(self) -> list[Hashable]:
        # The column too: selfie2anime's imageA and imageB share their rows, not faces.
        where, split = self._origin
        return [(where, split, self._column, row) for row in self._rows]

    def _decode(self, index: int) -> Image.Image:
        value = self._images[index][self._column]  # {"bytes": ..., "path": ...} or None
        where, split = self._origin
        origin = f"{where} split {split} row {self._rows[index]}"
        return decode_value(value, origin, self.size.side)


def decode_value(value: Any, origin: str, min_side: int) -> Image.Image:
    """A row's undecoded image -> RGB: its bytes, else the file it names (imagefolder
    keeps paths to the original files)."""
    data = value.get("bytes") if isinstance(value, dict) else None
    path = value.get("path") if isinstance(value, dict) else None
    if data is not None and (data or not path):  # empty bytes are an ImageError too
        return decode_image(data, origin, min_side=min_side)
    if path and os.path.isfile(path):
        return load_image(path, min_side=min_side)
    raise ImageError(f"{origin}: " + (f"its file {path} is missing" if path else "no image"))


def open_hf(spec: SourceSpec, size: ImageSize, split: str, seed: int) -> ImageSource:
    """The rows of a `datasets` set that `spec` selects, for one facefilter split."""
    del seed  # rows keep the set's order: nothing random to seed
    datasets = _import_datasets()
    loaded, where = _load(datasets, spec)
    split_name, table = _pick_split(datasets, spec, loaded, split)
    if table.num_rows == 0:
        raise UserError(f"{spec}: split {split_name!r} has no rows; pick another with split=")
    column = _image_column(datasets, spec, table)
    if isinstance(table.features[column], datasets.Image):
        table = table.cast_column(column, datasets.Image(decode=False))  # bytes: ours to decode
    table = table.with_format(None)  # a saved set may carry a torch or numpy format
    attr_names, attrs = _attributes(datasets, table, column)
    rows = _chosen_rows(datasets, spec, table, split_name, attr_names, attrs)
    images = table.select_columns([column])
    if len(rows) < table.num_rows:
        images = images.select(rows)  # an index map over the cache: nothing is copied
    return HubImageSource(
        images,
        column,
        size,
        name=_domain_name(spec),
        origin=(where, split_name),
        rows=rows.tolist(),
        attrs=None if attrs is None else attrs[rows],
        attr_names=attr_names,
    )


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise UserError(NEEDS_DATASETS) from None
    return datasets


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


def _load(datasets: Any, spec: SourceSpec) -> tuple[Any, str]:
    """The set (a Dataset, or a DatasetDict of splits) and where it is: a real path or
    the hub name."""
    path = Path(spec.path).expanduser()
    if path.exists():
        return _load_local(datasets, spec, path), os.path.realpath(path)
    if not HUB_NAME.fullmatch(spec.path):
        raise UserError(
            f"{spec}: {path} does not exist; give a folder written by save_to_disk, parquet "
            "files or a folder of images, or a hub name such as huggan/selfie2anime"
        )
    try:
        return datasets.load_dataset(spec.path, spec.options.get("config")), spec.path
    except (OSError, ValueError, datasets.exceptions.DatasetsError) as error:
        raise UserError(
            f"{spec}: cannot load {spec.path} from the Hugging Face hub "
            f"({_first_line(error)}); check the name and the connection, or give a "
            "folder saved with save_to_disk"
        ) from None


def _load_local(datasets: Any, spec: SourceSpec, path: Path) -> Any:
    """A set on disk, its form told by what is there."""
    if "config" in spec.options:
        raise UserError(f"{spec}: config= picks a hub set's configuration; drop it for {path}")
    saved = (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()
    form = "saved" if saved else "parquet" if path.suffix == ".parquet" else _folder_form(path)
    if form is None:
        raise UserError(
            f"{spec}: {path} holds no dataset; give a folder written by save_to_disk "
            "(dataset_dict.json or state.json), parquet files or a folder of images"
        )
    try:
        if form == "saved":
            return datasets.load_from_disk(str(path))
        if path.is_file():
            return datasets.load_dataset("parquet", data_files=str(path))
        return datasets.load_dataset(form, data_dir=str(path))
    except (OSError, ValueError, datasets.exceptions.DatasetsError) as error:
        raise UserError(f"{spec}: cannot read {path} as {form} ({_first_line(error)})") from None


def _folder_form(path: Path) -> str | None:
    """The `datasets` builder for a folder: parquet files, else images (imagefolder)."""
    if not path.is_dir():
        return None
    images = False
    for _folder, _subfolders, files in os.walk(path):
        for name in map(str.lower, files):
            if name.endswith(".parquet"):
                return "parquet"
            images = images or name.endswith(IMAGE_EXTENSIONS)
    return "imagefolder" if images else None


def _pick_split(datasets: Any, spec: SourceSpec, loaded: Any, split: str) -> tuple[str, Any]:
    """(the split's name, its Dataset) for a facefilter split."""
    wanted = spec.options.get("split")
    if not isinstance(loaded, datasets.DatasetDict):
        if wanted is not None:
            raise UserError(f"split={wanted} in {spec}: the set was saved without splits; "
                            "drop split=")  # fmt: skip
        return UNSPLIT, loaded
    names = ", ".join(loaded)
    if wanted is not None:
        if wanted not in loaded:
            raise UserError(f"split={wanted} in {spec}: no such split; the set has {names}")
        return wanted, loaded[wanted]
    for candidate in SPLIT_NAMES[split]:
        if candidate in loaded:
            return candidate, loaded[candidate]
    if "train" not in loaded:
        raise UserError(f"{spec}: the set has no {split} split (it has {names}); "
                        "pick one with split=NAME")  # fmt: skip
    message = f"{spec}: the set has no {split} split (it has {names}), using train for it"
    warnings.warn(message, UserWarning, stacklevel=4)
    return "train", loaded["train"]


def _describe(feature: Any) -> str:
    dtype = getattr(feature, "dtype", None)
    return f"{dtype} values" if isinstance(dtype, str) else type(feature).__name__


def _image_column(datasets: Any, spec: SourceSpec, table: Any) -> str:
    # datasets.Image, or the {"bytes", "path"} struct it is stored as (parquet written
    # without datasets' metadata)
    features = table.features
    images = [name for name, feature in features.items()
              if isinstance(feature, datasets.Image)
              or (isinstance(feature, dict) and set(feature) == {"bytes", "path"})]  # fmt: skip
    found = f"image columns: {', '.join(images) or 'none'}; all: {', '.join(features)}"
    wanted = spec.options.get("image")
    if wanted is None:
        if not images:
            raise UserError(f"{spec}: the set has no image column ({found})")
        return images[0]
    if wanted not in features:
        raise UserError(f"image={wanted} in {spec}: no such column ({found})")
    if wanted not in images:
        raise UserError(f"image={wanted} in {spec}: column {wanted!r} holds "
                        f"{_describe(features[wanted])}, not images ({found})")  # fmt: skip
    return wanted


def _read_columns(table: Any, names: list[str]) -> dict[str, Any]:
    """Whole non-image columns as pyarrow arrays (no image column is touched)."""
    if not names:
        return {}
    arrow = table.select_columns(names).with_format("arrow")[:]
    return {name: arrow.column(name) for name in names}


def _attributes(datasets: Any, table: Any, image: str) -> tuple[list[str], np.ndarray | None]:
    """The attribute columns and an (N, A) bool table, True where 1 (or True): bool
    columns, and integer ones holding only 0/1 or -1/1 (CelebA writes -1/1)."""
    candidates = [name for name, feature in table.features.items()
                  if name != image and isinstance(feature, datasets.Value)
                  and feature.dtype in ("bool", *_INTEGER_TYPES)]  # fmt: skip
    values = {name: column.to_numpy() for name, column in
              _read_columns(table, candidates).items() if column.null_count == 0}  # fmt: skip
    names = [name for name, column in values.items()
             if np.isin(column, (0, 1)).all() or np.isin(column, (-1, 1)).all()]  # fmt: skip
    if not names:
        return [], None
    return names, np.stack([values[name] == 1 for name in names], axis=1)  # (N, A)


def _chosen_rows(
    datasets: Any,
    spec: SourceSpec,
    table: Any,
    split_name: str,
    attr_names: list[str],
    attrs: np.ndarray | None,
) -> np.ndarray:
    """The rows where= and label= keep, first limit= of them; one line when none is kept."""
    keep = np.ones(table.num_rows, dtype=bool)
    counts: list[str] = []
    where = spec.options.get("where")
    if where:
        if attrs is None:
            columns = ", ".join(table.features)
            raise UserError(f"where={where} in {spec}: the set has no attribute columns "
                            f"(bool, 0/1 or -1/1); columns: {columns}")  # fmt: skip
        for name, present in parse_where(where):
            holds = attrs[:, check_attribute(name, attr_names, str(spec))] == present
            keep &= holds
            counts.append(f"{'' if present else '-'}{name}: {int(holds.sum())}")
    label = spec.options.get("label")
    if label:
        holds = _label_holds(datasets, spec, table, label)
        keep &= holds
        counts.append(f"label {label}: {int(holds.sum())}")
    if not keep.any():
        raise UserError(
            f"{spec} selects no rows of split {split_name!r} ({', '.join(counts)} of "
            f"{table.num_rows}; together: 0); loosen where= or label="
        )
    return np.flatnonzero(keep)[: int_option(spec, "limit", None, minimum=1)]


def _label_holds(datasets: Any, spec: SourceSpec, table: Any, text: str) -> np.ndarray:
    """(N,) bool: rows whose column equals the value of `label=COLUMN:VALUE`."""
    column, colon, value = text.partition(":")
    if not (colon and column and value):
        raise UserError(f"label={text} in {spec}: write label=COLUMN:VALUE, e.g. label=label:anime")
    feature = table.features.get(column)
    if feature is None:
        raise UserError(f"label={text} in {spec}: no column {column!r}; columns: "
                        f"{', '.join(table.features)}")  # fmt: skip
    values = _read_columns(table, [column])[column].to_numpy(zero_copy_only=False)  # (N,)
    if isinstance(feature, datasets.ClassLabel):
        if value not in feature.names:
            raise UserError(f"label={text} in {spec}: {column} has no class {value!r}; its "
                            f"classes: {', '.join(feature.names)}")  # fmt: skip
        return np.asarray(values == feature.str2int(value), dtype=bool)
    dtype = getattr(feature, "dtype", None)
    if dtype in ("string", "large_string"):
        return np.asarray(values == value, dtype=bool)
    if dtype in _INTEGER_TYPES and re.fullmatch(r"-?\d+", value):
        return np.asarray(values == int(value), dtype=bool)
    raise UserError(
        f"label={text} in {spec}: column {column!r} holds {_describe(feature)}; label= "
        "compares a class-label, text or integer column with a value (bool: where=)"
    )


def _domain_name(spec: SourceSpec) -> str:
    """The label= value and the where= filter, else the set's own name (the path's or the
    hub name's last part); name= replaces it (`open_source`)."""
    label, where = spec.options.get("label"), spec.options.get("where")
    parts = [label.partition(":")[2]] if label else []
    parts += [where_domain_name(where)] if where else []
    own = Path(os.path.abspath(Path(spec.path).expanduser())).name.removesuffix(".parquet")
    return "-".join(parts) or own
