"""Spec parsing and every data source kind, on tiny layouts built in tmp_path."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from conftest import write_images
from facefilter import synth
from facefilter.data.sources import SkippedImageWarning, open_source, unpaired_pair
from facefilter.data.spec import SourceSpec, parse_spec
from facefilter.errors import UserError

SIZE = 16
ATTRS = ["Eyeglasses", "Male", "Smiling", "Young"]


def _save(path: Path, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 24), (value, 255 - value, 0)).save(path)
    return path


def _row(i: int) -> list[int]:
    """Face i's attributes: Eyeglasses every 4th, Male odd, Smiling first 4, Young every 3rd."""
    return [int(i % 4 == 0), i % 2, int(i < 4), int(i % 3 == 0)]


def _partition(i: int) -> int:
    return 0 if i < 5 else 1 if i < 7 else 2  # 5 train, 2 val, 1 test


def _make_celeba(root: Path, flavour: str, count: int = 8) -> Path:
    """A tiny CelebA in the official (txt), Kaggle (csv) or synth-writer layout.

    The synth writer puts one folder per style beside the tables: photo/ and anime/.
    """
    image_dirs = {
        "txt": [root / "img_align_celeba"],
        "csv": [root / "img_align_celeba" / "img_align_celeba"],
        "synth": [root / "photo", root / "anime"],
    }[flavour]
    names = [f"{i + 1:06d}.{'png' if flavour == 'synth' else 'jpg'}" for i in range(count)]
    for image_dir in image_dirs:
        for i, name in enumerate(names):
            _save(image_dir / name, value=i * 20)
    signs = [[1 if v else -1 for v in _row(i)] for i in range(count)]
    if flavour == "csv":
        lines = ["image_id," + ",".join(ATTRS)]
        lines += [f"{n}," + ",".join(map(str, s)) for n, s in zip(names, signs, strict=True)]
        parts = ["image_id,partition"] + [f"{n},{_partition(i)}" for i, n in enumerate(names)]
        suffix = "csv"
    else:
        lines = [str(count), " ".join(ATTRS) + " "]
        rows = zip(names, signs, strict=True)
        lines += [f"{n}  " + " ".join(f"{v:2d}" for v in s) for n, s in rows]
        parts = [f"{n} {_partition(i)}" for i, n in enumerate(names)]
        suffix = "txt"
    (root / f"list_attr_celeba.{suffix}").write_text("\n".join(lines) + "\n")
    (root / f"list_eval_partition.{suffix}").write_text("\n".join(parts) + "\n")
    return root


# ---- spec parsing ---------------------------------------------------------------------


def test_parse_spec_kinds_options_and_bare_paths() -> None:
    assert parse_spec("synth:photo") == SourceSpec("synth", "photo", {})
    spec = parse_spec("celeba:/data/celeba?where=Male,-Eyeglasses&limit=10")
    assert (spec.kind, spec.path) == ("celeba", "/data/celeba")
    assert spec.options == {"where": "Male,-Eyeglasses", "limit": "10"}
    assert str(spec) == "celeba:/data/celeba?where=Male,-Eyeglasses&limit=10"
    assert parse_spec("photos/selfies") == SourceSpec("folder", "photos/selfies", {})
    assert parse_spec(r"C:\photos").kind == "folder"  # a drive letter is not a kind
    assert parse_spec("unpaired:x?side=B").options == {"side": "B"}


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("flickr:/data", "'flickr'.*synth, folder, unpaired, celeba, classes"),
        ("folder:/x?side=A", "'side'.*folder.*valid: limit"),
        ("classes:/x?limit=3", "'limit' for classes: .*; valid: name"),
        ("celeba:/x?where", "'where'.*no value"),
        ("celeba:/x?limit=1&limit=2", "'limit' appears twice"),
        ("folder:", "names no path"),
        ("synth:", "names no style"),
    ],
)
def test_parse_spec_rejects_bad_specs_by_name(spec: str, named: str) -> None:
    with pytest.raises(UserError, match=named):
        parse_spec(spec)


# ---- folder ---------------------------------------------------------------------------


def test_folder_source_items_and_domain_name(tmp_path: Path) -> None:
    root = tmp_path / "selfies"
    for name in ["a.png", "b.JPG", "nested/c.png"]:
        _save(root / name)
    source = open_source(f"folder:{root}/", SIZE)
    assert (source.name, source.class_names, source.attr_names, len(source)) == (
        "selfies",
        ["selfies"],
        [],
        3,
    )
    item = source[2]
    assert item["image"].shape == (3, SIZE, SIZE) and item["image"].dtype == torch.float32
    assert item["image"].min() >= -1 and item["image"].max() <= 1
    assert item["label"] == 0 and item["index"] == 2 and "attrs" not in item
    assert torch.equal(source[1]["image"], source[1]["image"])  # deterministic, no augmentation
    assert len(open_source(str(root), SIZE)) == 3  # bare path
    assert len(open_source(f"folder:{root}?limit=2", SIZE)) == 2


def test_folder_split_subfolders_with_val_test_fallback(tmp_path: Path) -> None:
    for name in ["train/a.png", "train/b.png", "test/c.png"]:
        _save(tmp_path / "faces" / name)
    spec = f"folder:{tmp_path / 'faces'}"
    assert len(open_source(spec, SIZE, "train")) == 2
    assert len(open_source(spec, SIZE, "test")) == 1
    assert len(open_source(spec, SIZE, "val")) == 1  # no val/: test/ stands in
    assert open_source(spec, SIZE, "val").name == "faces"
    flat = tmp_path / "flat"
    _save(flat / "a.png")
    assert all(len(open_source(f"folder:{flat}", SIZE, s)) == 1 for s in ("train", "val", "test"))
    with pytest.raises(UserError, match="unknown split 'dev'"):
        open_source(spec, SIZE, "dev")


def test_folder_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="nowhere does not exist"):
        open_source(f"folder:{tmp_path / 'nowhere'}", SIZE)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    extensions = r"\.jpg, \.jpeg, \.png, \.webp, \.bmp"
    with pytest.raises(UserError, match=r"no images in .*empty.*" + extensions):
        open_source(f"folder:{tmp_path / 'empty'}", SIZE)
    _save(tmp_path / "one.png")
    with pytest.raises(UserError, match=r"one\.png is not a folder"):
        open_source(f"folder:{tmp_path / 'one.png'}", SIZE)


def test_corrupt_files_are_skipped_deterministically_with_one_warning(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    _save(root / "a_good.png", value=10)
    good_jpeg = root / "b_cut.jpg"
    _save(good_jpeg)
    good_jpeg.write_bytes(good_jpeg.read_bytes()[:40])  # truncated
    (root / "c_empty.jpg").write_bytes(b"")
    (root / "d_text.png").write_text("not an image")
    _save(root / "e_good.png", value=200)
    with pytest.warns(SkippedImageWarning, match=r"1 empty .*c_empty\.jpg"):
        source = open_source(f"folder:{root}", SIZE)
    assert len(source) == 4  # the zero-byte file is dropped up front
    with pytest.warns(SkippedImageWarning, match="b_cut.jpg") as caught:
        item = source[1]  # b_cut -> d_text (bad too) -> e_good
    assert len(caught) == 1
    assert item["index"] == 3 and source.skipped_files == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning for known-bad files
        assert torch.equal(source[2]["image"], item["image"])
    assert source[0]["index"] == 0


def test_dataloader_workers_collate_items(tmp_path: Path) -> None:
    root = _make_celeba(tmp_path / "celeba", "txt")
    source = open_source(f"celeba:{root}", SIZE)
    batch = next(iter(DataLoader(source, batch_size=2, num_workers=1)))
    assert batch["image"].shape == (2, 3, SIZE, SIZE) and batch["attrs"].shape == (2, len(ATTRS))


# ---- unpaired -------------------------------------------------------------------------


def _make_unpaired(root: Path) -> Path:
    counts = {"trainA": 3, "trainB": 2, "testA": 1, "testB": 2}
    for folder, count in counts.items():
        for i in range(count):
            _save(root / folder / f"{i}.png")
    return root


def test_unpaired_sides_splits_and_domain_names(tmp_path: Path) -> None:
    root = _make_unpaired(tmp_path / "selfie2anime")
    side_a, side_b = unpaired_pair(f"unpaired:{root}")
    assert (side_a, side_b) == (f"unpaired:{root}?side=A", f"unpaired:{root}?side=B")
    a, b = open_source(side_a, SIZE), open_source(side_b, SIZE)
    assert (a.name, len(a), b.name, len(b)) == ("selfie", 3, "anime", 2)
    assert len(open_source(side_a, SIZE, "test")) == 1
    assert len(open_source(side_b, SIZE, "val")) == 2
    assert open_source(f"unpaired:{root}", SIZE).name == "selfie"  # side A by default
    generic = _make_unpaired(tmp_path / "mydata")
    assert [open_source(s, SIZE).name for s in unpaired_pair(f"unpaired:{generic}")] == ["A", "B"]


def test_unpaired_bad_inputs(tmp_path: Path) -> None:
    root = tmp_path / "horse2zebra"
    _save(root / "trainA" / "0.png")
    with pytest.warns(UserWarning, match="no testA/, using trainA/"):
        assert len(open_source(f"unpaired:{root}", SIZE, "test")) == 1
    with pytest.raises(UserError, match="no trainB/ folder"):
        open_source(f"unpaired:{root}?side=B", SIZE)
    with pytest.raises(UserError, match="side=C"):
        open_source(f"unpaired:{root}?side=C", SIZE)
    with pytest.raises(UserError, match="not an unpaired"):
        unpaired_pair(f"folder:{root}")
    with pytest.raises(UserError, match="already picks side B"):
        unpaired_pair(f"unpaired:{root}?side=B")


# ---- celeba ---------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["txt", "csv", "synth"])
def test_celeba_layouts_splits_and_attributes(tmp_path: Path, flavour: str) -> None:
    root = _make_celeba(tmp_path / "celeba", flavour)
    if flavour == "synth":
        root = root / "photo"  # one style folder; the tables sit beside it
    train = open_source(f"celeba:{root}", SIZE)
    assert (train.name, train.class_names, train.attr_names) == (root.name, [root.name], ATTRS)
    split_sizes = [len(open_source(f"celeba:{root}", SIZE, s)) for s in ("train", "val", "test")]
    assert split_sizes == [5, 2, 1]
    for index in range(len(train)):
        item = train[index]
        assert item["attrs"].dtype == torch.float32
        assert item["attrs"].tolist() == _row(index) and item["label"] == 0
    test_item = open_source(f"celeba:{root}", SIZE, "test")[0]
    assert test_item["attrs"].tolist() == _row(7)


def test_celeba_official_anno_eval_img_layout(tmp_path: Path) -> None:
    root = _make_celeba(tmp_path / "CelebA", "txt")
    for folder, name in [("Anno", "list_attr_celeba.txt"), ("Eval", "list_eval_partition.txt")]:
        (root / folder).mkdir()
        (root / name).rename(root / folder / name)
    (root / "Img").mkdir()
    (root / "img_align_celeba").rename(root / "Img" / "img_align_celeba")
    assert len(open_source(f"celeba:{root}", SIZE, "val")) == 2


def test_celeba_where_filter_limit_and_domain_name(tmp_path: Path) -> None:
    root = _make_celeba(tmp_path / "celeba", "csv")
    # Train rows 0..4: Male = 1, 3; Eyeglasses = 0, 4.
    male = open_source(f"celeba:{root}?where=Male,-Eyeglasses", SIZE)
    assert male.name == "Male+not-Eyeglasses" and len(male) == 2
    assert all(male[i]["attrs"][1] == 1 and male[i]["attrs"][0] == 0 for i in range(len(male)))
    female = open_source(f"celeba:{root}?where=-Male", SIZE)
    assert female.name == "not-Male" and len(female) == 3
    assert len(open_source(f"celeba:{root}?where=-Male&limit=2", SIZE)) == 2


def test_celeba_condition_makes_two_classes(tmp_path: Path) -> None:
    root = _make_celeba(tmp_path / "celeba", "txt")
    source = open_source(f"celeba:{root}?condition=Smiling", SIZE)
    assert source.class_names == ["not-Smiling", "Smiling"]
    assert [source[i]["label"] for i in range(len(source))] == [1, 1, 1, 1, 0]
    with pytest.raises(UserError, match="no not-Smiling images"):
        open_source(f"celeba:{root}?condition=Smiling&where=Smiling", SIZE)


def test_celeba_where_selecting_nothing_reports_counts(tmp_path: Path) -> None:
    root = _make_celeba(tmp_path / "celeba", "txt")
    # Train rows 0..4: Eyeglasses 0, 4 (both not Male); Male 1, 3.
    expected = r"Male: 2 of 5, Eyeglasses: 2 of 5, together: 0"
    with pytest.raises(UserError, match=expected):
        open_source(f"celeba:{root}?where=Male,Eyeglasses", SIZE)


def test_celeba_unknown_attribute_suggests_close_names(tmp_path: Path) -> None:
    root = _make_celeba(tmp_path / "celeba", "txt")
    # A near miss gets the suggestion and, like a far miss, every valid name.
    near = r"'Smilng'; did you mean Smiling\? valid \(4 in .*\): Eyeglasses, Male, Smiling, Young"
    with pytest.raises(UserError, match=near):
        open_source(f"celeba:{root}?where=Smilng", SIZE)
    with pytest.raises(
        UserError, match=r"'Zzz'; valid \(4 in .*\): Eyeglasses, Male, Smiling, Young"
    ):
        open_source(f"celeba:{root}?condition=Zzz", SIZE)


def test_celeba_without_partition_uses_all_images_everywhere(tmp_path: Path) -> None:
    root = _make_celeba(tmp_path / "celeba", "txt")
    (root / "list_eval_partition.txt").unlink()
    assert all(len(open_source(f"celeba:{root}", SIZE, s)) == 8 for s in ("train", "val", "test"))


@pytest.mark.parametrize(
    ("line", "replacement", "expected"),
    [
        (3, "000001.jpg 1 -1 1", r"line 3: expected a file name and 4 values, found 3 values"),
        (4, "000002.jpg 1 -1 1 2", r"line 4: '2' for Young"),
        (5, "000003.jpg 1 -1 yes 1", r"line 5: 'yes' for Smiling"),
        (1, "eight", r"line 1: expected the image count"),
        (1, "9", r"line 1: says 9 images but the table lists 8"),
    ],
)
def test_celeba_malformed_attribute_file_names_file_and_line(
    tmp_path: Path, line: int, replacement: str, expected: str
) -> None:
    root = _make_celeba(tmp_path / "celeba", "txt")
    attr_file = root / "list_attr_celeba.txt"
    lines = attr_file.read_text().splitlines()
    lines[line - 1] = replacement
    attr_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"list_attr_celeba\.txt " + expected):
        open_source(f"celeba:{root}", SIZE)


def test_celeba_several_image_folders_must_be_chosen(tmp_path: Path) -> None:
    root = _make_celeba(tmp_path / "synthetic", "synth")
    with pytest.raises(UserError, match=r"several folders hold 000001\.png \(anime, photo\)"):
        open_source(f"celeba:{root}", SIZE)
    assert open_source(f"celeba:{root / 'anime'}", SIZE).name == "anime"
    official = _make_celeba(tmp_path / "official", "txt")
    _save(official / "img_celeba" / "000001.jpg")  # the in-the-wild images, same names
    assert open_source(f"celeba:{official}", SIZE, "test")[0]["attrs"].tolist() == _row(7)


def test_celeba_missing_pieces(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="nowhere does not exist"):
        open_source(f"celeba:{tmp_path / 'nowhere'}", SIZE)
    (tmp_path / "bare").mkdir()
    with pytest.raises(UserError, match=r"no list_attr_celeba\.txt or list_attr_celeba\.csv"):
        open_source(f"celeba:{tmp_path / 'bare'}", SIZE)
    root = _make_celeba(tmp_path / "celeba", "txt")
    (root / "img_align_celeba" / "000001.jpg").unlink()
    with pytest.raises(UserError, match=r"no folder under it holds 000001\.jpg"):
        open_source(f"celeba:{root}", SIZE)


def test_celeba_missing_image_files_are_dropped_with_a_warning(tmp_path: Path) -> None:
    root = _make_celeba(tmp_path / "celeba", "txt")
    (root / "img_align_celeba" / "000003.jpg").unlink()
    with pytest.warns(SkippedImageWarning, match=r"1 empty .* or missing .*000003\.jpg"):
        source = open_source(f"celeba:{root}", SIZE)
    assert len(source) == 4
    assert [source[i]["attrs"].tolist() for i in range(4)] == [_row(i) for i in (0, 1, 3, 4)]


# ---- classes --------------------------------------------------------------------------


def test_classes_labels_follow_sorted_folder_names(tmp_path: Path) -> None:
    root = tmp_path / "moods"
    for name in ["sad/0.png", "happy/0.png", "happy/1.png", "angry/x/0.png"]:
        _save(root / name)
    source = open_source(f"classes:{root}", SIZE)
    assert source.name == "moods" and source.class_names == ["angry", "happy", "sad"]
    assert [source[i]["label"] for i in range(len(source))] == [0, 1, 1, 2]


def test_classes_with_split_subfolders(tmp_path: Path) -> None:
    root = tmp_path / "styles"
    for name in ["train/a/0.png", "train/a/1.png", "train/b/0.png", "val/a/0.png", "val/b/0.png"]:
        _save(root / name)
    assert len(open_source(f"classes:{root}", SIZE, "train")) == 3
    val = open_source(f"classes:{root}", SIZE, "test")  # no test/: val/ stands in
    assert val.class_names == ["a", "b"] and [val[i]["label"] for i in range(2)] == [0, 1]


def test_classes_bad_inputs(tmp_path: Path) -> None:
    root = tmp_path / "one"
    _save(root / "only" / "0.png")
    with pytest.raises(UserError, match=r"1 class folder\(s\) \['only'\].*at least two"):
        open_source(f"classes:{root}", SIZE)
    (root / "hollow").mkdir()
    (root / "hollow" / "readme.txt").write_text("x")
    with pytest.raises(UserError, match=r"class folder .*hollow has no images"):
        open_source(f"classes:{root}", SIZE)


# ---- synth ----------------------------------------------------------------------------


SYNTH_SIZE = 32  # the renderer's smallest size


def test_synth_single_style() -> None:
    source = open_source("synth:anime?count=6", SYNTH_SIZE, seed=3)
    assert (source.name, source.class_names, len(source)) == ("anime", ["anime"], 6)
    assert source.attr_names == list(synth.SYNTH_ATTRIBUTES)
    item = source[5]
    assert item["image"].shape == (3, SYNTH_SIZE, SYNTH_SIZE) and item["label"] == 0
    assert item["index"] == 5 and item["attrs"].shape == (len(synth.SYNTH_ATTRIBUTES),)
    reference = synth.SynthFaces("anime", SYNTH_SIZE, count=6, seed=3, split="train")[5]
    assert torch.equal(item["image"], reference["image"])
    other_seed = open_source("synth:anime?count=6&seed=4", SYNTH_SIZE, seed=3)[5]
    assert not torch.equal(item["image"], other_seed["image"])


def test_synth_several_styles_are_classes_of_the_same_faces() -> None:
    # count=20: the renderer's val split holds faces 8 and 18.
    source = open_source("synth:photo,anime,cartoon?count=20&seed=1", SYNTH_SIZE, split="val")
    assert source.name == "photo+anime+cartoon"
    assert source.class_names == ["photo", "anime", "cartoon"] and len(source) == 3 * 2
    assert [source[i]["label"] for i in range(6)] == [0, 0, 1, 1, 2, 2]
    photo, cartoon = source[1], source[1 + 2 * 2]  # face 18 in two styles
    assert torch.equal(photo["attrs"], cartoon["attrs"])
    assert not torch.equal(photo["image"], cartoon["image"])
    single = synth.SynthFaces("cartoon", SYNTH_SIZE, count=20, seed=1, split="val")[1]
    assert torch.equal(cartoon["image"], single["image"])


def test_synth_bad_specs() -> None:
    with pytest.raises(UserError, match="unknown synthetic style 'sketch'; valid: photo"):
        open_source("synth:sketch", SYNTH_SIZE)
    with pytest.raises(UserError, match="names a style twice"):
        open_source("synth:photo,photo", SYNTH_SIZE)
    with pytest.raises(UserError, match="count=0"):
        open_source("synth:photo?count=0", SYNTH_SIZE)


def test_synth_where_and_set_keep_styles_paired() -> None:
    """where= filters on the sampled attributes, set= then forces; every style is the same
    faces, item by item, and the same as SynthFaces with those arguments."""
    spec = "synth:photo,cartoon?count=30&seed=2&where=Male,-Eyeglasses&set=Smiling:1,Male:-1"
    source = open_source(spec, SYNTH_SIZE, split="train")
    columns = {name: synth.SYNTH_ATTRIBUTES.index(name) for name in ("Male", "Smiling")}
    where, force = "Male,-Eyeglasses", {"Smiling": True, "Male": False}
    faces = synth.SynthFaces("cartoon", SYNTH_SIZE, 30, 2, "train", where=where, force=force)
    sampled = synth.sample_params(30, seed=2)
    men_without_glasses = (sampled.attr("Male") > 0) & (sampled.attr("Eyeglasses") == 0)
    assert faces.ids == [i for i in men_without_glasses.nonzero()[:, 0].tolist() if i % 10 < 8]
    half = len(faces)
    assert len(source) == 2 * half and source.class_names == ["photo", "cartoon"]
    for i in range(half):
        photo, cartoon = source[i], source[half + i]
        assert torch.equal(photo["attrs"], cartoon["attrs"])
        assert photo["attrs"][columns["Male"]] == 0 and photo["attrs"][columns["Smiling"]] == 1
        assert torch.equal(cartoon["image"], faces[i]["image"])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("set=Male:0", r"set=Male:0 in synth:photo\?set=Male:0: '0' is not a value for Male"),
        ("set=Male=-1", "write NAME:1 or NAME:-1, e.g. Eyeglasses:1"),
        ("set=Glasses:1", "unknown attribute 'Glasses'; synthetic faces draw Bald"),
        ("set=Male:1,Male:-1", "sets Male twice"),
        ("where=Glasses", "unknown attribute 'Glasses'"),
        ("where=Bald,-Male", r"where=Bald,-Male selects no synthetic faces .*together: 0"),
    ],
)
def test_synth_bad_where_and_set(query: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        open_source(f"synth:photo?{query}", SYNTH_SIZE)


def test_written_synthetic_faces_open_as_celeba(tmp_path: Path) -> None:
    synth.write_dataset(tmp_path / "faces", count=20, size=SYNTH_SIZE, seed=0, styles=["photo"])
    written = open_source(f"celeba:{tmp_path / 'faces'}?where=Male", SYNTH_SIZE)
    rendered = synth.SynthFaces("photo", SYNTH_SIZE, count=20, seed=0, split="train")
    male = written.attr_names.index("Male")
    males = [i for i in range(len(rendered)) if rendered[i]["attrs"][male]]
    assert written.attr_names == list(synth.SYNTH_ATTRIBUTES) and len(written) == len(males)
    first = written[0]
    assert torch.equal(first["attrs"], rendered[males[0]]["attrs"])
    assert torch.allclose(first["image"], rendered[males[0]]["image"], atol=1e-6)


def test_any_spec_takes_a_domain_name(tmp_path):
    faces = write_images(tmp_path / "faces", 3)
    assert open_source(f"{faces}?name=selfies", 32).name == "selfies"
    named = open_source("synth:photo?where=-Male&count=8&name=female", 32)
    assert named.name == "female" and named.class_names == ["female"]
    with pytest.raises(UserError, match="names one domain, but the spec gives 2 classes"):
        open_source("synth:photo,anime?count=8&name=both", 32)
    for bad in ("not-x", "-x", "a+b", "2x"):
        with pytest.raises(UserError, match=f"name={re.escape(bad)} in .* a domain name is"):
            open_source(f"synth:photo?name={bad}", 32)


def test_data_report_lists_unreadable_files_and_does_not_count_them(tmp_path, capsys):
    from facefilter.cli.main import main

    faces = write_images(tmp_path / "faces", 3)
    (faces / "broken.png").write_bytes(b"not a png")
    assert main(["data", "report", str(faces), "--out", str(tmp_path / "r.png")]) == 0
    captured = capsys.readouterr()
    assert f"{faces}: 3 image(s)" in captured.out
    assert "unreadable: 1 of the files examined, not counted" in captured.out
    assert str(faces / "broken.png") in captured.out and "Warning" not in captured.err


def test_skipped_image_warnings_are_one_plain_line(capsys, monkeypatch):
    from facefilter.cli.main import one_line_warnings

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after
    one_line_warnings()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("faces: skipping unreadable image (x.png)", SkippedImageWarning, stacklevel=1)
    assert capsys.readouterr().err == "warning: faces: skipping unreadable image (x.png)\n"


def test_one_line_warnings_are_installed_once_per_process(monkeypatch):
    from facefilter.cli.main import one_line_warnings

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after
    one_line_warnings()
    installed = warnings.showwarning
    one_line_warnings()  # a second main() in the same process (tests call it hundreds of times)
    assert warnings.showwarning is installed


class Refusing(torch.utils.data.Dataset):
    """A data set whose every image is a mistake the user must fix."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        raise UserError(f"image {index} is unreadable; replace it")


def test_a_mistake_a_loading_worker_finds_is_its_own_one_line() -> None:
    from facefilter.data.loading import Stream, TrainingData

    data = TrainingData(Refusing(), [Stream(4, 0)], ["faces"], {}, 4)
    with pytest.raises(UserError) as caught:
        next(data.batches(2, 0, workers=1))  # torch reports it with the worker's traceback
    assert str(caught.value).endswith("is unreadable; replace it")
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)
