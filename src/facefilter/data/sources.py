"""Data sources: one spec string selects the faces everywhere (CLI, training, metrics).

    synth:photo                       built-in synthetic faces in one style
    synth:photo,anime?where=Male&set=Male:-1  a class per style; where= filters, set= forces
    folder:PATH  (or just PATH)       every image under PATH, one domain named after PATH
    unpaired:PATH?side=B              trainA/ trainB/ testA/ testB/ (selfie2anime, horse2zebra)
    celeba:PATH?where=Male,-Eyeglasses&condition=Smiling&limit=5000
    classes:PATH                      one sub-folder per class
    hf:OWNER/NAME?image=imageB        a Hugging Face `datasets` set: the hub, or a saved copy
    emoji:?limit=40                   Noto Color Emoji's face emoji (emoji:FONT.ttf: that font)

`open_source(spec, size, split)` returns an `ImageSource` (a torch Dataset) whose items
are `{"image": (3, S, S) float in [-1, 1], "label": int, "attrs": (A,) float in {0, 1}
(only when the source has attributes), "index": int}`. Items are deterministic: no
random augmentation here (the training loop flips whole batches, so a resumed run
sees exactly the same data).

Splits ("train", "val", "test"): `folder:` and `classes:` use `train/ val/ test/`
sub-folders when PATH has them and otherwise give every split all images; a missing
val/ falls back to test/ and the other way round. `unpaired:` maps train to trainX/
and val/test to testX/ (trainX/, with a warning, when there is no testX/). `celeba:`
follows the official partition file when present, else all images in every split.
`hf:` uses the dataset's own splits (train; validation or test for val and test), else
train with a warning (`data/hub.py`). `emoji:` gives every split all its faces, as
`folder:` does without sub-folders: the font's faces are all there is (`data/emoji.py`).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from facefilter.data import celeba
from facefilter.data.emoji import open_emoji
from facefilter.data.hub import open_hf
from facefilter.data.images import (
    IMAGE_EXTENSIONS,
    BrokenImages,
    SkippedImageWarning,
    list_images,
    load_image,
    to_tensor,
)
from facefilter.data.spec import (
    SPLITS,
    ImageSource,
    SourceSpec,
    int_option,
    parse_spec,
)
from facefilter.data.synth_source import open_synth
from facefilter.errors import UserError
from facefilter.sizes import ImageSize

_SPLIT_FALLBACKS = {"train": ("train",), "val": ("val", "test"), "test": ("test", "val")}


class FileImageSource(ImageSource):
    """Images decoded from files on each `__getitem__` (so DataLoader workers share the work).

    Broken files never stop an epoch. At construction, empty (0-byte) and missing files
    are dropped with one `SkippedImageWarning` that counts them and names the first few.
    While iterating, a file that fails to decode is warned about once (the first one,
    by name), remembered, and replaced by the next good item (index + 1, + 2, ... modulo
    len), so the substitute is the same in every run and every worker; `skipped_files`
    counts them (per process: each DataLoader worker keeps its own count). The item's
    "index" is the index of the file actually returned.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        size: int | ImageSize,
        *,
        name: str,
        class_names: Sequence[str],
        labels: Sequence[int] | None = None,
        attrs: np.ndarray | None = None,  # (N, A) bool
        attr_names: Sequence[str] = (),
    ) -> None:
        super().__init__(name, class_names, attr_names)
        label_list = list(labels) if labels is not None else [0] * len(paths)
        keep = _drop_empty_files(paths, name)
        self._paths = [str(paths[i]) for i in keep]  # str: lighter than Path for 200k items
        self._labels = [label_list[i] for i in keep]
        # (N, A) float in {0, 1}; 200k CelebA rows x 40 is 32 MB
        self._attrs = None if attrs is None else torch.from_numpy(attrs[keep].astype(np.float32))
        self.size = ImageSize.parse(size)
        self._broken = BrokenImages()

    @property
    def paths(self) -> list[Path]:
        return [Path(path) for path in self._paths]

    @property
    def skipped_files(self) -> int:
        """How many files failed to decode so far in this process."""
        return len(self._broken.indices)

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        candidate, image = self._broken.first_good(index, len(self), self._decode, self.name)
        return self._item(candidate, to_tensor(image, self.size))

    def _decode(self, index: int) -> Image.Image:
        return load_image(self._paths[index], min_side=self.size.side)

    def attribute_table(self) -> torch.Tensor | None:
        return self._attrs

    def identities(self) -> list[Hashable]:
        return [os.path.realpath(path) for path in self._paths]

    def _item(self, index: int, image: torch.Tensor) -> dict[str, Any]:
        item: dict[str, Any] = {"image": image, "label": self._labels[index], "index": index}
        if self._attrs is not None:
            item["attrs"] = self._attrs[index]  # (A,) float in {0, 1}
        return item


def _drop_empty_files(paths: Sequence[Path], name: str) -> list[int]:
    """Indices of paths that exist and are not empty; one warning for the rest."""
    keep: list[int] = []
    dropped: list[int] = []
    for index, path in enumerate(paths):
        try:
            is_good = os.stat(path).st_size > 0
        except OSError:
            is_good = False
        (keep if is_good else dropped).append(index)
    if dropped:
        first = ", ".join(str(paths[i]) for i in dropped[:3])
        warnings.warn(
            f"{name}: skipping {len(dropped)} empty (0-byte) or missing image files "
            f"(first: {first})",
            SkippedImageWarning,
            stacklevel=3,
        )
    if not keep:
        raise UserError(f"{name}: all {len(paths)} image files are empty or missing")
    return keep


def open_source(
    spec: str, size: int | ImageSize, split: str = "train", *, seed: int = 0
) -> ImageSource:
    """Open the data a spec string names, at `size` (a side, or width x height), for one
    split. A non-square size is the centre of the square crop, as the framing places it."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if isinstance(size, int) and size < 1:
        raise UserError(f"image size must be positive, got {size}")
    parsed = parse_spec(spec)
    source = _OPENERS[parsed.kind](parsed, ImageSize.parse(size), split, seed)
    name = parsed.options.get("name")
    if name is not None:
        if len(source.class_names) > 1:
            classes = ", ".join(source.class_names)
            raise UserError(f"name={name} in {spec!r} names one domain, but the spec gives "
                            f"{len(source.class_names)} classes ({classes})")  # fmt: skip
        source.name, source.class_names = name, [name]
    return source


def unpaired_pair(spec: str) -> tuple[str, str]:
    """`unpaired:PATH` -> (`unpaired:PATH?side=A`, `unpaired:PATH?side=B`), other options kept."""
    parsed = parse_spec(spec)
    if parsed.kind != "unpaired":
        raise UserError(f"{spec!r} is not an unpaired: spec; give a second data source")
    if "side" in parsed.options:
        raise UserError(f"{spec!r} already picks side {parsed.options['side']}; drop side=")
    side_a = SourceSpec("unpaired", parsed.path, {**parsed.options, "side": "A"})
    side_b = SourceSpec("unpaired", parsed.path, {**parsed.options, "side": "B"})
    return str(side_a), str(side_b)


def _existing_folder(spec: SourceSpec) -> Path:
    folder = Path(spec.path).expanduser()
    if not folder.exists():
        raise UserError(f"{spec}: {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"{spec}: {folder} is not a folder")
    return folder


def _domain_name(folder: Path) -> str:
    return Path(os.path.abspath(folder)).name  # "." and trailing "/" resolved, links kept


def _images_or_error(spec: SourceSpec, folder: Path) -> list[Path]:
    paths = list_images(folder)
    if not paths:
        raise UserError(
            f"{spec}: no images in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)}, "
            "case-insensitive, in sub-folders too)"
        )
    return paths[: int_option(spec, "limit", None, minimum=1)]


def _split_folder(spec: SourceSpec, root: Path, split: str) -> Path | None:
    """root/<split> when root has split sub-folders (val and test stand in for each other)."""
    present = [name for name in SPLITS if (root / name).is_dir()]
    if not present:
        return None
    for candidate in _SPLIT_FALLBACKS[split]:
        if candidate in present:
            return root / candidate
    raise UserError(f"{spec}: has {', '.join(present)} sub-folders but no {split}/; add one")


def _open_folder(spec: SourceSpec, size: ImageSize, split: str, seed: int) -> ImageSource:
    root = _existing_folder(spec)
    folder = _split_folder(spec, root, split) or root
    name = _domain_name(root)
    return FileImageSource(_images_or_error(spec, folder), size, name=name, class_names=[name])


def unpaired_domain_names(folder: Path) -> tuple[str, str]:
    """`selfie2anime` -> ("selfie", "anime"), `summer2winter_yosemite` -> ("summer", "winter")."""
    match = re.match(r"([A-Za-z]+)2([A-Za-z]+)", _domain_name(folder))
    if match and match.group(1) != match.group(2):
        return match.group(1), match.group(2)
    return "A", "B"


def _open_unpaired(spec: SourceSpec, size: ImageSize, split: str, seed: int) -> ImageSource:
    root = _existing_folder(spec)
    side = spec.options.get("side", "A")
    if side not in ("A", "B"):
        raise UserError(f"side={side} in {spec}: must be A or B")
    folder = root / f"{'train' if split == 'train' else 'test'}{side}"
    if not folder.is_dir() and split != "train" and (root / f"train{side}").is_dir():
        message = f"{spec}: no {folder.name}/, using train{side}/ for split {split!r}"
        warnings.warn(message, UserWarning, stacklevel=3)
        folder = root / f"train{side}"
    if not folder.is_dir():
        raise UserError(
            f"{spec}: no {folder.name}/ folder in {root}; unpaired: expects "
            "trainA/ trainB/ testA/ testB/ (as in selfie2anime)"
        )
    name = unpaired_domain_names(root)[side == "B"]
    return FileImageSource(_images_or_error(spec, folder), size, name=name, class_names=[name])


def _open_celeba(spec: SourceSpec, size: ImageSize, split: str, seed: int) -> ImageSource:
    root = Path(spec.path).expanduser()
    if not root.exists():
        raise UserError(f"{spec}: {root} does not exist")
    table = celeba.read_celeba(root)
    where = spec.options.get("where")
    selection = celeba.select_rows(
        table,
        split,
        where=where,
        condition=spec.options.get("condition"),
        limit=int_option(spec, "limit", None, minimum=1),
    )
    folder = root.parent if root.is_file() else root  # celeba:PATH/list_attr_celeba.txt
    name = celeba.where_domain_name(where) if where else _domain_name(folder)
    class_names = selection.class_names if len(selection.class_names) > 1 else [name]
    return FileImageSource(
        selection.paths,
        size,
        name=name,
        class_names=class_names,
        labels=selection.labels,
        attrs=selection.attrs,
        attr_names=table.attr_names,
    )


def _open_classes(spec: SourceSpec, size: ImageSize, split: str, seed: int) -> ImageSource:
    root = _existing_folder(spec)
    split_root = _split_folder(spec, root, split)
    layout_roots = [root / s for s in SPLITS if (root / s).is_dir()] if split_root else [root]
    # Class names from every split folder, so a label means the same class in each split.
    class_names = sorted(
        {p.name for r in layout_roots for p in r.iterdir() if p.is_dir() and p.name[0] != "."}
    )
    if len(class_names) < 2:
        raise UserError(
            f"{spec}: found {len(class_names)} class folder(s) {class_names} in {root}; "
            "classes: needs one sub-folder per class, at least two"
        )
    folder = split_root or root
    paths, labels = [], []
    for label, class_name in enumerate(class_names):
        class_folder = folder / class_name
        found = list_images(class_folder) if class_folder.is_dir() else []
        if not found:
            raise UserError(
                f"{spec}: class folder {class_folder} has no images "
                f"(looked for {', '.join(IMAGE_EXTENSIONS)})"
            )
        paths += found
        labels += [label] * len(found)
    name = _domain_name(root)
    return FileImageSource(paths, size, name=name, class_names=class_names, labels=labels)


_OPENERS: dict[str, Callable[[SourceSpec, ImageSize, str, int], ImageSource]] = {
    "synth": open_synth,
    "folder": _open_folder,
    "unpaired": _open_unpaired,
    "celeba": _open_celeba,
    "classes": _open_classes,
    "hf": open_hf,
    "emoji": open_emoji,
}
