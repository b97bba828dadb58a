"""The `hf:` data source on small `datasets` sets made from synthetic faces: every storage
form, the options, determinism, the one-line errors and the real CLI. Offline: nothing
is downloaded, and datasets' caches live in a temporary folder, never in ~."""

from __future__ import annotations

import json
import re
import sys
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_CYCLEGAN, one_line
from facefilter.cli.main import main
from facefilter.data.hub import NEEDS_DATASETS
from facefilter.data.sources import SkippedImageWarning, open_source
from facefilter.errors import UserError
from facefilter.synth.dataset import SynthFaces, png_bytes, to_uint8
from facefilter.synth.params import SYNTH_ATTRIBUTES

SIZE = 32  # faces are written at this size, so items read at it are the faces exactly
COUNT = 8  # faces per style; the flat set interleaves photo and anime: 16 rows


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Any:
    """`datasets`, offline, with its caches under a temporary folder. It reads the
    environment once, on import, so its copies are set too (another test may have
    imported it first)."""
    home = tmp_path_factory.mktemp("hf-home")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in [("HF_HOME", home), ("HF_DATASETS_CACHE", home / "datasets"),
                            ("HF_DATASETS_OFFLINE", "1"), ("HF_HUB_OFFLINE", "1")]:  # fmt: skip
            patch.setenv(name, str(value))
        datasets = pytest.importorskip("datasets")
        import huggingface_hub.constants

        patch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
        patch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield datasets


def _faces(style: str) -> tuple[list[bytes], torch.Tensor, np.ndarray]:
    """COUNT faces of a style: PNG bytes, the (N, 3, S, S) pixels in [-1, 1] and the
    (N, A) attributes as bool."""
    faces = SynthFaces(style, SIZE, count=COUNT, seed=3)
    images = torch.stack([faces[i]["image"] for i in range(COUNT)])  # (N, 3, S, S)
    pixels = to_uint8((images + 1) / 2)  # (N, 3, S, S) uint8
    return [png_bytes(p) for p in pixels], images, faces.attribute_table().numpy() == 1


@pytest.fixture(scope="module")
def made(hub, tmp_path_factory) -> dict[str, Any]:
    """One flat set in every storage form, a two-split set, a selfie2anime-like set with
    two image columns, and what they were made from."""
    root = tmp_path_factory.mktemp("hub-data")
    (photo_png, photo, attrs), (anime_png, anime, _) = _faces("photo"), _faces("anime")
    male = attrs[:, SYNTH_ATTRIBUTES.index("Male")]
    young = attrs[:, SYNTH_ATTRIBUTES.index("Young")]
    order = [(i % 2, i // 2) for i in range(2 * COUNT)]  # (style, face): photo, anime, ...
    features = hub.Features({
        "image": hub.Image(), "Male": hub.Value("bool"), "Young": hub.Value("int8"),
        "style": hub.ClassLabel(names=["photo", "anime"]), "caption": hub.Value("string"),
    })  # fmt: skip
    flat = hub.Dataset.from_dict({
        "image": [{"bytes": (photo_png, anime_png)[s][f], "path": None} for s, f in order],
        "Male": [bool(male[f]) for _, f in order],
        "Young": [1 if young[f] else -1 for _, f in order],  # CelebA's signs
        "style": [s for s, _ in order], "caption": [f"face {f}" for _, f in order],
    }, features=features)  # fmt: skip
    flat.save_to_disk(root / "flat")
    flat.to_parquet(root / "flat.parquet")
    hub.DatasetDict({"train": flat.select(range(12)), "test": flat.select(range(12, 16))}
                    ).save_to_disk(root / "split")  # fmt: skip
    pairs = hub.Dataset.from_dict(
        {"imageA": [{"bytes": b, "path": None} for b in photo_png],
         "imageB": [{"bytes": b, "path": None} for b in anime_png]},
        features=hub.Features({"imageA": hub.Image(), "imageB": hub.Image()}),
    )  # fmt: skip
    hub.DatasetDict({"train": pairs.select(range(6)), "test": pairs.select(range(6, 8))}
                    ).save_to_disk(root / "selfie2anime")  # fmt: skip
    folder = root / "folder"
    rows = ["file_name,Male"]
    for index, (style, face) in enumerate(order):
        name = f"{('photo', 'anime')[style]}/{index:02d}.png"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes((photo_png, anime_png)[style][face])
        rows.append(f"{name},{bool(male[face])}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    images = torch.stack([(photo, anime)[s][f] for s, f in order])  # (16, 3, S, S)
    return {"root": root, "images": images, "male": male[[f for _, f in order]],
            "young": young[[f for _, f in order]], "order": order}  # fmt: skip


def _spec(made: dict[str, Any], where: str, query: str = "") -> str:
    return f"hf:{made['root'] / where}" + (f"?{query}" if query else "")


@pytest.mark.parametrize("form", ["flat", "flat.parquet", "split", "folder"])
def test_every_storage_form_opens(made, form: str) -> None:
    source = open_source(_spec(made, form), 16)
    assert len(source) == (12 if form == "split" else 16)
    assert source.name == form.removesuffix(".parquet") and source.class_names == [source.name]
    item = source[3]
    assert item["image"].shape == (3, 16, 16) and item["image"].dtype == torch.float32
    assert -1 <= float(item["image"].min()) < float(item["image"].max()) <= 1
    assert item["label"] == 0 and item["index"] == 3
    assert source.attr_names == (["Male"] if form == "folder" else ["Male", "Young"])
    assert "attrs" in item and item["attrs"].shape == (len(source.attr_names),)


def test_items_are_the_faces_written_and_the_same_in_every_open(made) -> None:
    first, second = (open_source(_spec(made, "flat"), SIZE) for _ in range(2))
    for index in range(len(first)):
        assert torch.equal(first[index]["image"], made["images"][index])  # PNG is lossless
        assert torch.equal(first[index]["image"], second[index]["image"])
    assert first.identities() == second.identities()
    table = first.attribute_table()
    assert table is not None and table.shape == (16, 2)
    assert torch.equal(table, torch.tensor(np.stack([made["male"], made["young"]], 1)).float())
    assert torch.equal(first[5]["attrs"], table[5])


def test_where_label_and_limit_select_rows_without_decoding(made, monkeypatch) -> None:
    import facefilter.data.hub as hub_module

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was decoded while rows were chosen")

    monkeypatch.setattr(hub_module, "decode_value", no_decoding)
    men = open_source(_spec(made, "flat", "where=Male"), SIZE)
    assert len(men) == int(made["male"].sum()) and men.name == "Male"
    table = men.attribute_table()
    assert table is not None and bool((table[:, 0] == 1).all())
    not_young = open_source(_spec(made, "flat", "where=Male,-Young"), SIZE)
    assert len(not_young) == int((made["male"] & ~made["young"]).sum())
    anime = open_source(_spec(made, "flat", "label=style:anime&limit=3"), SIZE)
    assert len(anime) == 3 and anime.name == "anime"
    monkeypatch.undo()
    assert torch.equal(anime[1]["image"], made["images"][3])  # the second anime row: row 3
    by_text = open_source(_spec(made, "flat", "label=caption:face 2&name=two"), SIZE)
    assert len(by_text) == 2 and by_text.name == "two"


def test_image_column_and_name_pick_a_side_of_a_paired_set(made) -> None:
    selfies = open_source(_spec(made, "selfie2anime", "name=selfie"), SIZE)  # first column
    anime = open_source(_spec(made, "selfie2anime", "image=imageB&name=anime"), SIZE)
    assert (len(selfies), len(anime)) == (6, 6) and anime.name == "anime"
    assert torch.equal(selfies[0]["image"], made["images"][0])  # photo face 0
    assert torch.equal(anime[0]["image"], made["images"][1])  # anime face 0
    assert set(selfies.identities() or ()).isdisjoint(anime.identities() or ())
    assert anime.attr_names == [] and "attrs" not in anime[0]


def test_splits_map_to_the_sets_own_and_split_wins(made) -> None:
    spec = _spec(made, "split")
    assert [len(open_source(spec, 16, s)) for s in ("train", "val", "test")] == [12, 4, 4]
    assert [len(open_source(f"{spec}?split=test", 16, s)) for s in ("train", "test")] == [4, 4]
    test_rows = open_source(spec, SIZE, "test")
    assert torch.equal(test_rows[0]["image"], made["images"][12])
    assert len(open_source(_spec(made, "flat"), 16, "test")) == 16  # no splits: all rows
    with pytest.warns(UserWarning, match="no val split .*using train"):
        assert len(open_source(_spec(made, "flat.parquet"), 16, "val")) == 16


def test_a_broken_image_is_skipped_with_one_warning_and_replaced(hub, made, tmp_path) -> None:
    rows = [{"bytes": png, "path": None} for png in map(png_bytes, to_uint8(
        (made["images"][:4] + 1) / 2))]  # fmt: skip
    rows[1] = {"bytes": b"not a png", "path": None}
    features = hub.Features({"image": hub.Image()})
    hub.Dataset.from_dict({"image": rows}, features=features).save_to_disk(tmp_path / "broken")
    source = open_source(f"hf:{tmp_path / 'broken'}", SIZE)
    with pytest.warns(SkippedImageWarning, match="row 1: not an image") as caught:
        indices = [source[i]["index"] for i in range(4)]
    assert indices == [0, 2, 2, 3] and len(caught) == 1
    assert torch.equal(source[1]["image"], made["images"][2])


def _error(spec: str, split: str = "train") -> str:
    with pytest.raises(UserError) as caught:
        open_source(spec, 16, split)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("where", "query", "named"),
    [
        ("missing", "", r"missing does not exist; give a folder written by save_to_disk"),
        ("split", "split=valid", r"split=valid in .*no such split; the set has train, test"),
        ("flat", "split=train", r"split=train in .*saved without splits; drop split="),
        ("flat", "image=pixels", r"image=pixels in .*no such column \(image columns: image;"),
        ("flat", "image=Male", r"image=Male in .*'Male' holds bool values, not images"),
        ("flat", "where=Smiling", r"attribute 'Smiling'; valid \(2 in hf:.*\): Male, Young"),
        ("selfie2anime", "where=Male", r"where=Male in .*no attribute columns"),
        ("flat", "label=style:cartoon", r"style has no class 'cartoon'; its classes: photo, anime"),
        ("flat", "label=colour:red", r"label=colour:red in .*no column 'colour'; columns: image,"),
        ("flat", "label=style", r"label=style in .*write label=COLUMN:VALUE"),
        ("flat", "label=Male:1", r"'Male' holds bool values; label= compares"),
        ("flat", "where=Male&label=caption:nobody",
         r"no rows of split 'all' \(Male: \d+, label caption:nobody: 0 of 16; together: 0\)"),
        ("flat", "limit=0", r"limit=0 in .*must be a whole number >= 1"),
        ("flat", "config=default", r"config= picks a hub set's configuration; drop it"),
        ("flat", "stream=1", r"unknown option 'stream' for hf:"),
    ],
)  # fmt: skip
def test_bad_inputs_are_one_line_naming_the_fix(made, where: str, query: str, named: str) -> None:
    assert re.search(named, _error(_spec(made, where, query)))


def test_other_folders_and_names_are_one_line(hub, made, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    assert re.search(r"empty holds no dataset; give a folder written by save_to_disk",
                     _error(f"hf:{tmp_path / 'empty'}"))  # fmt: skip
    assert "not-a/hub/name does not exist" in _error("hf:not-a/hub/name")  # no owner/name
    split = hub.load_from_disk(str(made["root"] / "split"))
    hub.DatasetDict({"test": split["test"]}).save_to_disk(tmp_path / "only-test")
    assert re.search(r"no train split \(it has test\); pick one with split=NAME",
                     _error(f"hf:{tmp_path / 'only-test'}"))  # fmt: skip


def test_without_the_datasets_library_one_line_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` raises ImportError
    assert _error("hf:huggan/selfie2anime") == NEEDS_DATASETS


def test_a_hub_name_offline_fails_as_one_line(hub, tmp_path, capsys) -> None:
    code = main(["data", "report", "hf:facefilter-tests/no-such-set", "--out",
                 str(tmp_path / "r.png")])  # fmt: skip
    assert code == 2
    line = one_line(capsys)
    assert "hf:facefilter-tests/no-such-set: cannot load facefilter-tests/no-such-set from" in line
    assert "save_to_disk" in line


def test_data_report_on_a_saved_set(made, tmp_path, capsys) -> None:
    chart = tmp_path / "report.png"
    assert main(["data", "report", _spec(made, "flat"), "--out", str(chart)]) == 0
    out = capsys.readouterr().out
    assert "flat: 16 image(s)" in out and re.search(r"Male\s+\d+\.\d%", out)
    assert Image.open(chart).size[0] > 0


def test_train_two_steps_on_the_two_columns_of_one_set(made, tmp_path) -> None:
    spec = _spec(made, "selfie2anime")
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedImageWarning)
        code = main(
            ["train", "cyclegan-lite", "--data-a", f"{spec}?image=imageA&name=selfie",
             "--data-b", f"{spec}?image=imageB&name=anime", "--size", "32", "--batch-size", "2",
             "--max-steps", "2", "--num-workers", "0", "--no-progress", "--out", str(out),
             *TINY_CYCLEGAN]
        )  # fmt: skip
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["domains"] == ["selfie", "anime"]
    assert (out / "model.safetensors").is_file()
