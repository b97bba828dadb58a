"""The `emoji:` source: every face in the table draws, items, the cache, limit=, errors, the CLI.

Reads Debian's fonts-noto-color-emoji (the Makefile's `system` target installs it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from conftest import TINY_CYCLEGAN
from facefilter.cli.main import main
from facefilter.data import emoji
from facefilter.data.sources import open_source
from facefilter.data.spec import parse_spec
from facefilter.errors import UserError

SIZE = 32
PLAIN_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # no colour glyphs


@pytest.fixture(scope="module")
def font_file() -> Path:
    found = [path for path in emoji.KNOWN_FONTS if path.is_file()]
    if not found:
        pytest.fail("Noto Color Emoji is missing, and these tests draw with it: "
                    "apt-get install fonts-noto-color-emoji")  # fmt: skip
    return found[0]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory, font_file) -> Path:
    """One cache for the module: the faces are drawn once, by the first test that opens them."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def isolated_cache(shared_cache, monkeypatch) -> Path:
    """Never the user's ~/.cache: every test caches into the module's folder."""
    monkeypatch.setenv(emoji.CACHE_ENV, str(shared_cache))
    return shared_cache


def test_every_face_in_the_table_draws_in_colour_and_apart(font_file) -> None:
    font = emoji.open_font(font_file, parse_spec("emoji:"))
    assert len({face.codepoint for face in emoji.FACES}) == len(emoji.FACES)
    assert len({face.name for face in emoji.FACES}) == len(emoji.FACES)
    drawn = {}
    for face in emoji.FACES:
        picture = emoji.render_face(
            font, face, str(font_file)
        )  # raises on an empty or colourless glyph
        assert picture.mode == "RGB" and picture.width == picture.height > 100, face
        corners = [picture.getpixel(xy) for xy in [(0, 0), (picture.width - 1, 0)]]
        assert corners == [emoji.BACKGROUND] * 2, face  # the margin is background
        drawn.setdefault(hashlib.sha256(picture.tobytes()).hexdigest(), []).append(face.name)
    # a glyph the font lacks would draw as one shared placeholder
    assert [names for names in drawn.values() if len(names) > 1] == []


def test_items_are_faces_in_range_the_same_every_open_and_split() -> None:
    source = open_source("emoji:", SIZE)
    assert (source.name, source.class_names, source.attr_names) == ("emoji", ["emoji"], [])
    assert len(source) == len(emoji.FACES) and source.names[0] == "grinning face"  # type: ignore[attr-defined]
    item = source[5]
    assert set(item) == {"image", "label", "index"} and (item["label"], item["index"]) == (0, 5)
    image = item["image"]
    assert image.shape == (3, SIZE, SIZE) and image.dtype == torch.float32
    assert -1 <= image.min() < 0 < image.max() <= 1
    assert torch.equal(image[:, 0, 0], torch.ones(3))  # the white background, in [-1, 1]
    again = open_source("emoji:", SIZE, "test")
    assert len(again) == len(source) and torch.equal(again[5]["image"], image)
    identities = source.identities()
    assert identities is not None and len(set(identities)) == len(source)
    with pytest.raises(IndexError):
        source[len(source)]


def test_a_font_path_limit_name_and_a_non_square_size(font_file) -> None:
    source = open_source(f"emoji:{font_file}?limit=7&name=smiley", "40x60", "val")
    assert (source.name, len(source)) == ("smiley", 7)
    assert source.names == [face.name for face in emoji.FACES[:7]]  # type: ignore[attr-defined]
    assert source[6]["image"].shape == (3, 60, 40)  # the middle of the 60 px square
    assert len(open_source("emoji:?limit=100000", SIZE)) == len(emoji.FACES)


def test_the_cache_is_written_once_and_read_after(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(emoji.CACHE_ENV, str(tmp_path))
    first = open_source("emoji:?limit=3", SIZE)
    (folder,) = (tmp_path / "emoji").iterdir()
    index = json.loads((folder / emoji.INDEX_FILE).read_text())
    assert [row["name"] for row in index["faces"]] == [face.name for face in emoji.FACES]
    assert len(list(folder.glob("*.png"))) == len(emoji.FACES)  # every face, whatever limit=
    assert [path.name for path in tmp_path.glob("emoji/.*")] == []  # no temporary left

    def no_drawing(*args: object) -> None:
        raise AssertionError("drew a face the cache holds")

    monkeypatch.setattr(emoji, "render_face", no_drawing)
    second = open_source("emoji:?limit=3", SIZE)
    assert all(torch.equal(first[i]["image"], second[i]["image"]) for i in range(3))
    (folder / emoji.INDEX_FILE).write_text("{")  # a broken cache is drawn again
    with pytest.raises(AssertionError, match="drew a face"):
        open_source("emoji:", SIZE)


def test_an_unwritable_cache_warns_and_goes_on(tmp_path, monkeypatch) -> None:
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv(emoji.CACHE_ENV, str(tmp_path / "file"))
    with pytest.warns(UserWarning, match=f"not cached .*{emoji.CACHE_ENV}"):
        assert len(open_source("emoji:?limit=2", SIZE)) == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("emoji:{tmp}/none.ttf", r"none\.ttf does not exist; give a font file such as"),
        ("emoji:{tmp}", r"is a folder; give a font file"),
        ("emoji:{tmp}/text.ttf", r"cannot open .*text\.ttf as a colour emoji font .*NotoColor"),
        ("emoji:?limit=0", r"limit=0 in emoji:\?limit=0: must be a whole number >= 1"),
        ("emoji:?limit=some", r"limit=some .* whole number"),
        ("emoji:?count=3", r"unknown option 'count' for emoji:.*valid: limit, name"),
    ],
)
def test_bad_input_is_one_line_naming_the_fix(tmp_path, spec, message) -> None:
    (tmp_path / "text.ttf").write_text("not a font")
    with pytest.raises(UserError, match=message) as raised:
        open_source(spec.format(tmp=tmp_path), SIZE)
    assert "\n" not in str(raised.value)


def test_a_missing_system_font_names_the_package(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(emoji, "KNOWN_FONTS", (tmp_path / "NotoColorEmoji.ttf",))
    with pytest.raises(UserError) as raised:
        open_source("emoji:", SIZE)
    assert str(raised.value) == emoji.MISSING_FONT
    assert "apt-get install fonts-noto-color-emoji" in emoji.MISSING_FONT


@pytest.mark.skipif(not PLAIN_FONT.is_file(), reason="needs Debian's fonts-dejavu-core")
def test_a_font_without_colour_faces_is_refused() -> None:
    with pytest.raises(UserError, match=r"draws no colour glyph for U\+1F600 \(grinning face\)"):
        open_source(f"emoji:{PLAIN_FONT}", SIZE)


def test_train_photo_to_emoji_from_the_cli(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    code = main(
        ["train", "cyclegan-lite", "--data-a", "synth:photo?count=4", "--data-b",
         "emoji:?limit=4", "--size", "32", "--batch-size", "2", "--max-steps", "2",
         "--num-workers", "0", "--no-progress", "--out", str(run), *TINY_CYCLEGAN]
    )  # fmt: skip
    assert code == 0
    assert (run / "model.safetensors").is_file()
    capsys.readouterr()
    assert main(["apply", str(run), "--list-targets"]) == 0
    assert sorted(capsys.readouterr().out.split()) == ["emoji", "photo"]
