"""Reading a CelebA-style folder: where the files are, the attribute table, the partition.

Accepted layouts (found by looking, not by a fixed path):
- the official release: `list_attr_celeba.txt`, `list_eval_partition.txt` and
  `img_align_celeba/`, either side by side or under `Anno/`, `Eval/`, `Img/`;
- the Kaggle copy: `list_attr_celeba.csv`, `list_eval_partition.csv` and
  `img_align_celeba/img_align_celeba/`;
- what `facefilter data` writes for synthetic faces: one sub-folder of images per
  style beside `list_attr_celeba.txt` and `list_eval_partition.txt`; with several
  styles, point at one of them (`celeba:out/photo`).
The attribute and partition files are looked for at PATH, in its sub-folders, then
beside PATH; the image folder is the folder (breadth-first from PATH, up to three
levels down) holding the first file the attribute table lists, and two such folders
at the same depth are an error unless exactly one is an `*align*` folder. Without a
partition file every split gets all images.

This module only reads tables and selects rows; `sources.py` turns the selection into
a dataset.
"""

from __future__ import annotations

import csv
import functools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facefilter.attributes import check_attribute, parse_where
from facefilter.errors import UserError

ATTRIBUTE_FILES = ("list_attr_celeba.txt", "list_attr_celeba.csv")
PARTITION_FILES = ("list_eval_partition.txt", "list_eval_partition.csv")
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}  # the partition file's 0 / 1 / 2
_IMAGE_FOLDER_DEPTH = 3  # Kaggle's img_align_celeba/img_align_celeba/ is two levels down


@dataclass(frozen=True)
class CelebaTable:
    """The whole attribute table of one CelebA-style folder."""

    image_folder: Path
    attribute_file: Path
    file_names: list[str]  # as listed, relative to image_folder
    attr_names: list[str]  # the attribute file's columns
    attrs: np.ndarray  # (N, len(attr_names)) bool, True where the attribute is present
    partition: np.ndarray | None  # (N,) int8 split code per image, None without a file


@dataclass(frozen=True)
class CelebaSelection:
    """The rows one `celeba:` spec selects, with labels ready for a dataset."""

    paths: list[Path]
    labels: list[int]  # index into class_names
    attrs: np.ndarray  # (n, A) bool
    class_names: list[str]


def read_celeba(root: Path) -> CelebaTable:
    """Find and parse the attribute table, partition and image folder under `root`."""
    if root.is_file() and root.name in ATTRIBUTE_FILES:
        root = root.parent  # the user pointed at the attribute file itself
    if not root.is_dir():
        raise UserError(f"{root}: not a folder; point celeba: at the CelebA folder")
    attribute_file = _find_file(root, ATTRIBUTE_FILES)
    if attribute_file is None:
        raise UserError(
            f"{root}: no {' or '.join(ATTRIBUTE_FILES)} there or in its sub-folders; "
            "point celeba: at the CelebA folder"
        )
    stat = attribute_file.stat()
    file_names, attr_names, attrs = _read_attribute_file_once(
        attribute_file.resolve(), stat.st_mtime_ns, stat.st_size
    )
    partition_file = _find_file(root, PARTITION_FILES)
    partition = None
    if partition_file is not None:
        partition = _partition_codes(partition_file, file_names)
    image_folder = _find_image_folder(root, file_names[0], attribute_file)
    return CelebaTable(image_folder, attribute_file, file_names, attr_names, attrs, partition)


@functools.lru_cache(maxsize=2)
def _read_attribute_file_once(
    path: Path, mtime_ns: int, size: int
) -> tuple[list[str], list[str], np.ndarray]:
    """`read_attribute_file`, parsed once per file version: training opens the train and
    val splits of one table, and CelebA's takes seconds to parse."""
    del mtime_ns, size  # part of the cache key only: an edited file is read again
    file_names, attr_names, attrs = read_attribute_file(path)
    attrs.setflags(write=False)  # shared between callers, so nobody may change it
    return file_names, attr_names, attrs


def _find_file(root: Path, names: tuple[str, ...]) -> Path | None:
    """The first of `names` at `root`, in its direct sub-folders (sorted), or beside `root`.

    Beside: `celeba:out/photo` names one image folder of several that share the table
    in `out/` (what `facefilter data` writes for several styles).
    """
    children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in [root, *children, root.parent]:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _find_image_folder(root: Path, first_name: str, attribute_file: Path) -> Path:
    """The folder holding the table's first image, breadth-first from `root`."""
    level = list(dict.fromkeys([root, attribute_file.parent]))
    for _depth in range(_IMAGE_FOLDER_DEPTH + 1):
        holders = [folder for folder in level if (folder / first_name).is_file()]
        # The official release may hold img_align_celeba/ beside the in-the-wild img_celeba/.
        aligned = [folder for folder in holders if "align" in folder.name]
        if len(holders) == 1 or len(aligned) == 1:
            return holders[0] if len(holders) == 1 else aligned[0]
        if holders:
            raise UserError(
                f"{root}: several folders hold {first_name} "
                f"({', '.join(folder.name for folder in holders)}); point celeba: at one, "
                f"e.g. celeba:{holders[0]}"
            )
        level = [
            child
            for folder in level
            for child in sorted(folder.iterdir())
            if child.is_dir() and not child.name.startswith(".")
        ]
    raise UserError(
        f"{root}: no folder under it holds {first_name} (the first image {attribute_file.name} "
        "lists); put the images in a sub-folder such as img_align_celeba/"
    )


def _table_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for every non-blank line of a txt (whitespace) or csv table."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        if path.suffix == ".csv":
            for line_number, row in enumerate(csv.reader(handle), start=1):
                if any(field.strip() for field in row):
                    yield line_number, [field.strip() for field in row]
        else:
            for line_number, line in enumerate(handle, start=1):
                if line.strip():
                    yield line_number, line.split()


def read_attribute_file(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Parse list_attr_celeba.txt (count line, names line, rows) or .csv (header, rows).

    Returns file names, attribute names and a (N, A) bool array (1 -> True; -1 or 0 ->
    False). A malformed line raises `UserError` naming the file and the line.
    """
    rows = _table_rows(path)
    declared_count = None
    if path.suffix != ".csv":
        line_number, fields = next(rows, (1, []))
        if len(fields) != 1 or not fields[0].isdigit():
            raise UserError(f"{path} line {line_number}: expected the image count, got {fields}")
        declared_count = int(fields[0])
    _, header = next(rows, (2, []))
    attr_names = header[1:] if path.suffix == ".csv" else header
    if not attr_names:
        raise UserError(f"{path}: no attribute names in the header line")
    file_names: list[str] = []
    line_numbers: list[int] = []
    values: list[str] = []
    for line_number, fields in rows:
        if len(fields) != len(attr_names) + 1:
            raise UserError(
                f"{path} line {line_number}: expected a file name and {len(attr_names)} "
                f"values, found {len(fields) - 1} values after {fields[0]}"
            )
        file_names.append(fields[0])
        line_numbers.append(line_number)
        values.extend(fields[1:])
    if not file_names:
        raise UserError(f"{path}: the attribute table lists no images")
    if declared_count is not None and declared_count != len(file_names):
        raise UserError(
            f"{path} line 1: says {declared_count} images but the table lists "
            f"{len(file_names)}; the file is truncated or malformed"
        )
    return file_names, attr_names, _parse_signs(path, values, attr_names, line_numbers)


def _parse_signs(
    path: Path, values: list[str], attr_names: list[str], line_numbers: list[int]
) -> np.ndarray:
    """The value strings ("1", "-1", "0") of every row -> (N, A) bool, True for "1"."""
    # One C-level pass: about 3x faster than np.asarray(values) for CelebA's 8M values.
    # A bad token stops it: recent NumPy raises, older versions warn and return less.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            numbers = np.fromstring(" ".join(values), dtype=np.int8, sep=" ")
    except ValueError:
        numbers = np.zeros(0, dtype=np.int8)
    valid_strings = ("1", "-1", "0")
    if numbers.size != len(values) or not np.isin(numbers, (-1, 0, 1)).all():
        position = next(i for i, value in enumerate(values) if value not in valid_strings)
        row, column = divmod(position, len(attr_names))
        raise UserError(
            f"{path} line {line_numbers[row]}: {values[position]!r} for "
            f"{attr_names[column]}; attribute values must be 1 or -1"
        )
    return numbers.reshape(-1, len(attr_names)) == 1  # (N, A)


def _partition_codes(path: Path, file_names: list[str]) -> np.ndarray:
    code_of: dict[str, int] = {}
    for line_number, fields in _table_rows(path):
        if path.suffix == ".csv" and line_number == 1 and not fields[-1].isdigit():
            continue  # the csv header: image_id,partition
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise UserError(f"{path} line {line_number}: expected '<file> <0|1|2>', got {fields}")
        code_of[fields[0]] = int(fields[1])
    missing = [name for name in file_names if name not in code_of]
    if missing:
        raise UserError(
            f"{path}: {len(missing)} images of the attribute table have no split "
            f"(first: {missing[0]}); use a matching partition file or remove it"
        )
    return np.array([code_of[name] for name in file_names], dtype=np.int8)


def select_rows(
    table: CelebaTable,
    split: str,
    where: str | None = None,
    condition: str | None = None,
    limit: int | None = None,
) -> CelebaSelection:
    """The rows of `split` that satisfy every `where` term, first `limit` of them, labelled.

    Without `condition` there is one class; with `condition=Young` class 0 is
    "not-Young" and class 1 "Young".
    """
    origin = table.attribute_file.name
    keep = np.ones(len(table.file_names), dtype=bool)
    if table.partition is not None:
        keep &= table.partition == SPLIT_CODES[split]
    if where:
        keep &= _where_mask(table, keep, parse_where(where), where, split)
    rows = np.flatnonzero(keep)[:limit]
    class_names = ["all"]
    labels = np.zeros(len(rows), dtype=np.int64)
    if condition:
        column = check_attribute(condition, table.attr_names, origin)
        class_names = [f"not-{condition}", condition]
        labels = table.attrs[rows, column].astype(np.int64)
        for label, class_name in enumerate(class_names):
            if not (labels == label).any():
                raise UserError(
                    f"condition={condition}: no {class_name} images among the {len(rows)} "
                    f"selected in split {split!r}; a two-class source needs both"
                )
    return CelebaSelection(
        paths=[table.image_folder / table.file_names[row] for row in rows],
        labels=labels.tolist(),
        attrs=table.attrs[rows],
        class_names=class_names,
    )


def _where_mask(
    table: CelebaTable, in_split: np.ndarray, terms: list[tuple[str, bool]], where: str, split: str
) -> np.ndarray:
    mask = np.ones(len(table.file_names), dtype=bool)
    counts = []
    for name, present in terms:
        column = check_attribute(name, table.attr_names, table.attribute_file.name)
        holds = table.attrs[:, column] == present
        mask &= holds
        counts.append(f"{'' if present else '-'}{name}: {int((holds & in_split).sum())}")
    total = int(in_split.sum())
    together = int((mask & in_split).sum())
    if together == 0:
        detail = ", ".join(f"{count} of {total}" for count in counts)
        raise UserError(
            f"where={where} selects no images in split {split!r} "
            f"({detail}, together: 0); loosen the filter"
        )
    return mask


def where_domain_name(where: str) -> str:
    """A readable domain name for a filter: "Male,-Eyeglasses" -> "Male+not-Eyeglasses"."""
    return "+".join(name if present else f"not-{name}" for name, present in parse_where(where))
