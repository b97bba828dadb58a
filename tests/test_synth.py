"""The built-in synthetic face renderer: determinism, pairing, attributes, files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from PIL import Image

from facefilter.data.attributes import CELEBA_ATTRIBUTES
from facefilter.data.preview import write_preview
from facefilter.data.synth import (
    STYLES,
    SYNTH_ATTRIBUTES,
    FaceParams,
    SynthFaces,
    render,
    sample_params,
    write_dataset,
)
from facefilter.data.synth_params import HAIR_COLOURS
from facefilter.errors import UserError


def _column(attrs: torch.Tensor, name: str) -> torch.Tensor:
    return attrs[:, SYNTH_ATTRIBUTES.index(name)].bool()


def _assert_consistent(attrs: torch.Tensor) -> None:
    hair = torch.stack([_column(attrs, c) for c in HAIR_COLOURS], dim=1)
    assert (hair.sum(dim=1) == 1).all(), "exactly one hair colour"
    assert not (_column(attrs, "Bald") & _column(attrs, "Bangs")).any()
    beard = _column(attrs, "Mustache") | _column(attrs, "Goatee")
    assert torch.equal(_column(attrs, "No_Beard"), ~beard)
    assert not (beard & ~_column(attrs, "Male")).any(), "beards only on men"


def test_attribute_names_follow_celeba_order() -> None:
    assert len(SYNTH_ATTRIBUTES) >= 12
    positions = [CELEBA_ATTRIBUTES.index(a) for a in SYNTH_ATTRIBUTES]
    assert positions == sorted(positions)


@pytest.mark.parametrize("style", STYLES)
def test_same_seed_same_bytes_other_seed_other_faces(style: str) -> None:
    first = render(sample_params(3, seed=7), style, 32)
    again = render(sample_params(3, seed=7), style, 32)
    other = render(sample_params(3, seed=8), style, 32)
    assert torch.equal(first, again)
    assert (first - other).abs().mean() > 0.02


def test_a_slice_samples_the_same_rows_as_a_bigger_batch() -> None:
    whole = sample_params(30, seed=5)
    part = sample_params(10, seed=5, start=10)
    for field in dataclasses.fields(FaceParams):
        assert torch.equal(getattr(part, field.name), getattr(whole, field.name)[10:20]), field.name


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("size", [32, 256])
def test_render_is_finite_and_in_range(style: str, size: int) -> None:
    images = render(sample_params(2, seed=1), style, size)
    assert images.shape == (2, 3, size, size) and images.dtype == torch.float32
    assert torch.isfinite(images).all()
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.std() > 0.05  # a picture, not a blank


def _centroids(params: FaceParams, name: str, style: str, size: int = 64) -> torch.Tensor:
    """(N, 2) centroid of the pixels that change with attribute `name`: where the skin
    is (Pale_Skin) or where the head is (Wearing_Hat)."""
    with_it = render(params.with_attribute(name, True), style, size)
    without = render(params.with_attribute(name, False), style, size)
    skin = ((with_it - without).abs().amax(dim=1) > 0.08).float()  # (N, S, S)
    ys, xs = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing="ij")
    total = skin.sum(dim=(1, 2)).clamp(min=1.0)
    return torch.stack([(skin * xs).sum((1, 2)) / total, (skin * ys).sum((1, 2)) / total], dim=1)


def test_pairs_share_geometry_across_styles() -> None:
    """The hat and the skin sit in the same place (skin: anime only, as cartoon draws
    no neck and photo and anime do)."""
    params = sample_params(8, seed=3)
    checks = (("Wearing_Hat", ("anime", "cartoon"), 0.35), ("Pale_Skin", ("anime",), 0.65))
    for name, styles, ratio in checks:
        photo = _centroids(params, name, "photo")
        for style in styles:
            drawn = _centroids(params, name, style)
            same_person = (drawn - photo).norm(dim=1).mean()
            other_person = (drawn - photo.roll(1, dims=0)).norm(dim=1).mean()
            # the same face in another style sits where it sat; another face does not
            assert same_person < ratio * other_person, (name, style, same_person, other_person)


@pytest.mark.parametrize("style", STYLES)
def test_every_attribute_is_visible_at_64_px(style: str) -> None:
    """Flipping an attribute must change at least 12 of the 4096 pixels by more than 0.1
    on average over four faces: about the size of a pair of lips at 64 px, the smallest
    feature drawn. (Nothing else changes: noise and pose are fixed by the seed.)"""
    params = sample_params(4, seed=0)
    for name in SYNTH_ATTRIBUTES:
        off = render(params.with_attribute(name, False), style, 64)
        on = render(params.with_attribute(name, True), style, 64)
        changed = ((off - on).abs().amax(dim=1) > 0.1).float().sum(dim=(1, 2))  # (4,)
        assert changed.mean() >= 12, (name, changed.tolist())


def test_attributes_are_consistent_and_balanced() -> None:
    attrs = sample_params(600, seed=2).attributes
    _assert_consistent(attrs)
    rates = attrs.mean(dim=0)
    for name, rate in zip(SYNTH_ATTRIBUTES, rates.tolist(), strict=True):
        assert 0.05 < rate < 0.95, (name, rate)
    for name in ("Male", "Smiling", "Young", "No_Beard"):
        assert 0.3 < rates[SYNTH_ATTRIBUTES.index(name)] < 0.75, name


@pytest.mark.parametrize("name", SYNTH_ATTRIBUTES)
def test_with_attribute_sets_it_and_stays_consistent(name: str) -> None:
    params = sample_params(40, seed=4)
    for value in (False, True):
        edited = params.with_attribute(name, value)
        assert (edited.attr(name) == float(value)).all()
        _assert_consistent(edited.attributes)
        assert torch.equal(edited.face_width, params.face_width)  # same identity


def test_dataset_splits_partition_and_pair_across_styles() -> None:
    ids = {
        split: SynthFaces("cartoon", 32, count=25, split=split).ids
        for split in ("train", "val", "test")
    }
    together = sorted(ids["train"] + ids["val"] + ids["test"])
    assert together == list(range(25)), "disjoint and covering"
    assert ids["val"] == [8, 18] and ids["test"] == [9, 19]
    anime, photo = (
        SynthFaces("anime", 32, count=25, split="val"),
        SynthFaces("photo", 32, count=25, split="val"),
    )
    assert len(anime) == 2 and anime.attr_names == list(SYNTH_ATTRIBUTES)
    item, twin = anime[1], photo[1]
    assert item["index"] == twin["index"] == 18
    assert torch.equal(item["attrs"], twin["attrs"])
    image = item["image"]
    assert isinstance(image, torch.Tensor) and image.shape == (3, 32, 32)
    assert image.min() >= -1.0 and image.max() <= 1.0
    whole = SynthFaces("anime", 32, count=25)
    assert torch.equal(whole[18]["image"], image), (
        "a split item is the same face as in the whole set"
    )
    with pytest.raises(IndexError):
        anime[2]


def _read(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_write_dataset_files_and_format(tmp_path: Path) -> None:
    write_dataset(tmp_path / "a", count=12, size=32, seed=3, styles=("photo", "cartoon"))
    write_dataset(tmp_path / "b", count=12, size=32, seed=3, styles=("photo", "cartoon"))
    files = _read(tmp_path / "a")
    assert files == _read(tmp_path / "b"), "same seed, same bytes"
    assert "photo/000001.png" in files and "cartoon/000012.png" in files
    assert Image.open(tmp_path / "a" / "photo" / "000012.png").size == (32, 32)
    lines = files["list_attr_celeba.txt"].decode().splitlines()
    assert lines[0] == "12" and lines[1].split() == list(SYNTH_ATTRIBUTES)
    assert lines[2].startswith("000001.png ") and len(lines) == 14
    values = torch.tensor([[int(v) for v in line.split()[1:]] for line in lines[2:]])
    assert set(values.flatten().tolist()) <= {-1, 1}
    _assert_consistent((values > 0).float())
    assert torch.equal((values > 0).float(), sample_params(12, seed=3).attributes)
    partition = files["list_eval_partition.txt"].decode().splitlines()
    assert partition[0] == "000001.png 0" and partition[8] == "000009.png 1"
    assert partition[9] == "000010.png 2" and len(partition) == 12


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"styles": ("oil",)}, "photo, anime, cartoon"),
        ({"size": 31}, "32 to 256"),
        ({"size": 257}, "32 to 256"),
        ({"count": 0}, "at least 1"),
    ],
)
def test_write_dataset_rejects_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    arguments = {"out": tmp_path, "count": 2, "size": 32, "seed": 0, "styles": ("photo",), **kwargs}
    with pytest.raises(UserError, match=message):
        write_dataset(**arguments)
    with pytest.raises(UserError):
        SynthFaces("oil", 32)


def test_preview_writes_a_labelled_sheet(tmp_path: Path) -> None:
    out = tmp_path / "preview.png"
    write_preview(out, size=32, seed=0, identities=3)
    sheet = Image.open(out)
    assert sheet.width > 4 * 32 and sheet.height > (len(STYLES) + len(SYNTH_ATTRIBUTES)) * 32
