"""The built-in synthetic face renderer: determinism, pairing, attributes, files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facefilter.attributes import CELEBA_ATTRIBUTES
from facefilter.errors import UserError
from facefilter.synth import (
    STYLES,
    SYNTH_ATTRIBUTES,
    FaceParams,
    SynthFaces,
    render,
    sample_params,
    write_dataset,
    write_preview,
)
from facefilter.synth.params import HAIR_COLOURS


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
        ({"count": 0}, "must be 1 to 1,000,000"),
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


# ---- forcing attributes: --set, force= ---------------------------------------------------


def _synth_cli(out: Path, *extra: str) -> int:
    from facefilter.cli.main import main

    return main(["data", "synth", "--out", str(out), "--count", "20", "--size", "32",
                 "--seed", "3", "--styles", "photo,anime", *extra])  # fmt: skip


def _table(folder: Path) -> torch.Tensor:
    lines = (folder / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[1].split() == list(SYNTH_ATTRIBUTES)
    return torch.tensor([[int(v) for v in line.split()[1:]] for line in lines[2:]])


def _pixels(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path), dtype=np.int16))  # (H, W, 3)


def test_cli_set_forces_attributes_on_the_same_faces(tmp_path: Path) -> None:
    assert _synth_cli(tmp_path / "plain") == 0
    assert _synth_cli(tmp_path / "set", "--set", "Eyeglasses=1", "--set", "Male=-1") == 0
    before, after = _table(tmp_path / "plain"), _table(tmp_path / "set")
    glasses, male = SYNTH_ATTRIBUTES.index("Eyeglasses"), SYNTH_ATTRIBUTES.index("Male")
    assert (after[:, glasses] == 1).all() and (after[:, male] == -1).all()
    _assert_consistent((after > 0).float())
    had_both = (before[:, glasses] == 1) & (before[:, male] == -1)
    only_glasses = (before[:, glasses] == -1) & (before[:, male] == -1)
    assert had_both.any() and only_glasses.any() and (before[:, male] == 1).any()
    assert torch.equal(before[had_both], after[had_both])
    for style in ("photo", "anime"):
        for i in range(20):
            name = f"{style}/{i + 1:06d}.png"
            plain_file, forced_file = tmp_path / "plain" / name, tmp_path / "set" / name
            if had_both[i]:  # nothing to force: the very same bytes
                assert plain_file.read_bytes() == forced_file.read_bytes(), name
                continue
            plain, forced = _pixels(plain_file), _pixels(forced_file)
            changed = (plain - forced).abs().amax(dim=2) > 0  # (H, W)
            assert changed.any(), name
            assert not changed[:3, :3].any(), f"{name}: same backdrop, pose and noise"
            if only_glasses[i]:  # the glasses, and nothing above or below the eyes
                assert not changed[:10].any() and not changed[25:].any(), name


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("Male=0", "'0' is not a value for Male; write 1 (present) or -1 (absent)"),
        ("Glasses=1", "unknown attribute 'Glasses'; synthetic faces draw Bald, Bangs"),
        ("Male", "write NAME=1 or NAME=-1"),
    ],
)
def test_cli_rejects_bad_set_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, message: str
) -> None:
    assert _synth_cli(tmp_path, "--set", flag) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not list(tmp_path.rglob("*.png"))


def test_contradicting_forces_are_refused() -> None:
    with pytest.raises(UserError, match="setting Goatee=1 undoes Male=-1"):
        SynthFaces("photo", 32, count=10, force={"Male": False, "Goatee": True})
    with pytest.raises(UserError, match="Male=-1 must be True or False"):
        SynthFaces("photo", 32, count=10, force={"Male": -1})  # type: ignore[dict-item]


def test_force_keeps_identities_and_pairs_styles() -> None:
    """Photo at 64 px: a smile narrows the eyes, which moves the bounds of the batch's eye
    region, and the soft socket shading reaches them; faces that did not smile must
    still be untouched."""
    plain = SynthFaces("photo", 64, count=40, seed=2)
    forced = SynthFaces("photo", 64, count=40, seed=2, force={"Smiling": False})
    anime = SynthFaces("anime", 64, count=40, seed=2, force={"Smiling": False})
    smiling = SYNTH_ATTRIBUTES.index("Smiling")
    assert forced.ids == plain.ids == anime.ids
    for i in range(len(plain)):
        assert forced[i]["attrs"][smiling] == 0
        assert torch.equal(forced[i]["attrs"], anime[i]["attrs"])
        unchanged = torch.equal(forced[i]["attrs"], plain[i]["attrs"])
        same_image = torch.equal(forced[i]["image"], plain[i]["image"])
        assert unchanged == same_image, i  # only the faces that smiled change


def test_where_then_set_is_these_men_as_women() -> None:
    men = SynthFaces("photo", 32, count=40, seed=2, where="Male")
    as_women = SynthFaces("photo", 32, count=40, seed=2, where="Male", force={"Male": False})
    male = SYNTH_ATTRIBUTES.index("Male")
    every = sample_params(40, seed=2).attr("Male")
    assert men.ids == as_women.ids == [i for i in range(40) if every[i] > 0]
    for i in range(len(men)):
        assert men[i]["attrs"][male] == 1 and as_women[i]["attrs"][male] == 0
        assert not torch.equal(men[i]["image"], as_women[i]["image"])
    with pytest.raises(UserError, match=r"where=Bald,-Male selects no synthetic .*together: 0"):
        SynthFaces("photo", 32, count=40, where="Bald,-Male")
