"""The `synth:` data source: built-in synthetic faces behind `open_source`.

    synth:photo                              one style
    synth:photo,anime,cartoon                several styles, one class per style
    synth:photo?count=500&seed=3             faces 0..499 of seed 3 (before any filter)
    synth:photo?where=Male,-Eyeglasses       only faces drawn with (without) them
    synth:anime?limit=300                    the first 300 faces of each split (after where=)
    synth:photo?set=Eyeglasses:1,Male:-1     the same faces with attributes forced (1 / -1)
    synth:photo?where=Male&set=Male:-1       filter first, then force: these men, as women

Several styles with the same options are the same faces, paired item by item.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from torch import Tensor

from facefilter.data.celeba import where_domain_name
from facefilter.data.images import center_crop
from facefilter.data.spec import ImageSource, SourceSpec, int_option
from facefilter.errors import UserError
from facefilter.memory import refuse_over_memory
from facefilter.sizes import ImageSize
from facefilter.synth.dataset import MAX_COUNT, SynthFaces
from facefilter.synth.edits import parse_set_option
from facefilter.synth.styles import STYLES

OPTIONS = ("count", "seed", "where", "set", "limit")
_DEFAULT_COUNT = 2000


class SynthSource(ImageSource):
    """Built-in synthetic faces; with several styles, item i of class c is face i in style c."""

    def __init__(
        self,
        styles: Sequence[str],
        size: int | ImageSize,
        count: int,
        seed: int,
        split: str,
        *,
        force: dict[str, bool] | None = None,
        where: str | None = None,
        limit: int | None = None,
    ) -> None:
        self.size = ImageSize.parse(size)  # rendered square at the longer side, then cropped
        self._per_style = [
            SynthFaces(
                s,
                self.size.side,
                count=count,
                seed=seed,
                split=split,
                force=force,
                where=where,
                limit=limit,
            )
            for s in styles
        ]
        faces_per_style = {len(faces) for faces in self._per_style}
        assert len(faces_per_style) == 1, "every style renders the same faces"
        self._faces_per_style = faces_per_style.pop()
        name = styles[0] if len(styles) == 1 else "+".join(styles)
        if where:  # as celeba: names a filter: "Male", "not-Male"; other styles prefix theirs
            filtered = where_domain_name(where)
            name = filtered if name == "photo" else f"{name}-{filtered}"
        super().__init__(name, styles, self._per_style[0].attr_names)

    def __len__(self) -> int:
        return self._faces_per_style * len(self._per_style)

    def identities(self) -> list[Hashable]:
        forced = tuple(sorted(self._per_style[0].forced.items()))
        return [
            (faces.style, faces.seed, i, forced) for faces in self._per_style for i in faces.ids
        ]

    def attribute_table(self) -> Tensor:
        return self._per_style[0].attribute_table().repeat(len(self._per_style), 1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} faces")
        style_index, face_index = divmod(index, self._faces_per_style)
        face = self._per_style[style_index][face_index]
        image = face["image"]
        assert isinstance(image, Tensor)
        return {
            "image": image if self.size.square else center_crop(image, self.size),  # (3, H, W)
            "label": style_index,
            "attrs": face["attrs"],  # (A,) float in {0, 1}
            "index": index,
        }


def open_synth(spec: SourceSpec, size: ImageSize, split: str, seed: int) -> ImageSource:
    styles = [style.strip() for style in spec.path.split(",")]
    for style in styles:
        if style not in STYLES:
            raise UserError(f"unknown synthetic style {style!r}; valid: {', '.join(STYLES)}")
    if len(set(styles)) != len(styles):
        raise UserError(f"synth:{spec.path} names a style twice")
    count = int_option(spec, "count", _DEFAULT_COUNT, minimum=1)
    synth_seed = int_option(spec, "seed", seed, minimum=0)
    assert count is not None and synth_seed is not None
    if count > MAX_COUNT:
        raise UserError(f"count={count} in {spec}: at most {MAX_COUNT:,} synthetic faces")
    # each face's parameters (~0.8 KB) and, once drawn, its pixels stay cached
    refuse_over_memory(len(styles) * count * (800 + 3 * size.width * size.height),
                       f"count={count} in {spec} at {size}", "lower count=")  # fmt: skip
    set_text = spec.options.get("set")
    force = parse_set_option(set_text, f"set={set_text} in {spec}") if set_text else None
    where = spec.options.get("where")
    limit = int_option(spec, "limit", None, minimum=1)
    return SynthSource(styles, size, count, synth_seed, split, force=force, where=where,
                       limit=limit)  # fmt: skip
