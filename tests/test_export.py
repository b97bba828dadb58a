"""ONNX export through the CLI: the export layout, `apply --engine onnx`, bad exports.

Parity of every family's graphs is in test_contract.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_photo_anime_run
from facefilter.cli.main import main

pytest.importorskip("onnxruntime")
skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_photo_anime_run(tmp_path_factory.mktemp("export") / "run", size=32)


def test_export_folder_and_single_file(run, tmp_path, capsys):
    assert main(["export", str(run), "-o", str(tmp_path / "filter")]) == 0
    assert "max |onnxruntime - torch|" in capsys.readouterr().out
    folder = tmp_path / "filter"
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "to-anime.onnx", "to-photo.onnx",
    ]  # fmt: skip
    table = json.loads((folder / "config.json").read_text())["onnx"]
    assert table["to-anime.onnx"]["target"] == "anime" and table["to-anime.onnx"]["dynamic_size"]
    assert main(["export", str(run), "-o", str(tmp_path / "one.onnx")]) == 2
    assert "pick one with --to" in capsys.readouterr().err
    assert main(["export", str(run), "-o", str(tmp_path / "one.onnx"), "--to", "anime"]) == 0
    assert (tmp_path / "one.onnx").is_file() and (tmp_path / "one.json").is_file()


def test_apply_with_onnxruntime_matches_torch(run, tmp_path):
    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(photo)
    assert main(["export", str(run), "-o", str(tmp_path / "filter")]) == 0
    outputs = {}
    for engine, model in (("torch", run), ("onnx", tmp_path / "filter"), ("onnx-run", run)):
        out = tmp_path / f"{engine}.png"
        flags = ["--crop-only", "--upsample", "0", "--engine", engine.split("-")[0]]
        code = main(["apply", str(model), str(photo), "--to", "anime", "-o", str(out), *flags])
        assert code == 0
        outputs[engine] = np.asarray(Image.open(out)).astype(int)
    assert outputs["torch"].shape == (32, 32, 3)
    for engine in ("onnx", "onnx-run"):  # an export folder, or a run exported on the fly
        assert np.abs(outputs[engine] - outputs["torch"]).max() <= 1  # rounding only


def test_onnx_file_without_config_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "lone.onnx").write_bytes(b"onnx")
    code = main(["apply", str(tmp_path / "lone.onnx"), str(tmp_path), "--to", "anime",
                 "--engine", "onnx"])  # fmt: skip
    assert code == 2
    assert "has no lone.json beside it" in capsys.readouterr().err


def test_from_narrows_a_two_domain_export_and_renamed_files_still_load(run, tmp_path):
    single = tmp_path / "a.onnx"
    assert main(["export", str(run), "--from", "photo", "-o", str(single)]) == 0
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    single.rename(renamed / "b.onnx")
    (tmp_path / "a.json").rename(renamed / "b.json")
    face = tmp_path / "face.png"
    assert main(["data", "synth", "--out", str(tmp_path / "s"), "--count", "1", "--size", "32",
                 "--styles", "photo"]) == 0  # fmt: skip
    (tmp_path / "s" / "photo" / "000001.png").rename(face)
    assert main(["apply", str(renamed / "b.onnx"), str(face), "--to", "anime", "--engine",
                 "onnx", "--detect", "never", "-o", str(tmp_path / "out.png")]) == 0  # fmt: skip
    assert (tmp_path / "out.png").is_file()


def test_missing_listed_onnx_file_is_one_line(run, tmp_path, capsys):
    folder = tmp_path / "filter"
    assert main(["export", str(run), "-o", str(folder)]) == 0
    (folder / "to-anime.onnx").unlink()
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32)).save(image)
    capsys.readouterr()
    code = main(["apply", str(folder), str(image), "--to", "anime", "--engine", "onnx",
                 "--detect", "never", "-o", str(tmp_path / "o.png")])  # fmt: skip
    assert code == 2
    assert "to-anime.onnx is listed" in capsys.readouterr().err


def test_one_graph_of_a_folder_export_offers_its_own_direction(run, tmp_path, capsys):
    folder = tmp_path / "filter"
    assert main(["export", str(run), "-o", str(folder)]) == 0
    capsys.readouterr()
    face = tmp_path / "face.png"
    Image.fromarray(skimage_data.astronaut()[::16, ::16]).save(face)  # (32, 32, 3)
    graph = str(folder / "to-anime.onnx")
    common = ["--engine", "onnx", "--detect", "never"]
    assert main(["apply", graph, "--list-targets", "--engine", "onnx"]) == 0
    assert capsys.readouterr().out.splitlines() == ["anime"]
    assert main(["apply", graph, str(face), "--to", "anime", "-o", str(tmp_path / "a.png"),
                 *common]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["apply", graph, str(face), "--to", "photo", "-o", str(tmp_path / "p.png"),
                 *common]) == 2  # fmt: skip
    assert "unknown target 'photo'; this model offers anime" in capsys.readouterr().err


def test_exporting_an_export_is_one_line(run, tmp_path, capsys):
    assert main(["export", str(run), "-o", str(tmp_path / "filter")]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "filter"), "-o", str(tmp_path / "again")]) == 2
    assert "already an ONNX export" in capsys.readouterr().err
    assert not (tmp_path / "again").exists()


def test_a_stray_onnx_file_in_a_run_directory_is_one_line(run, tmp_path, capsys):
    assert main(["export", str(run), "-o", str(tmp_path / "x.onnx"), "--to", "anime"]) == 0
    stray = run / "stray.onnx"
    stray.write_bytes((tmp_path / "x.onnx").read_bytes())
    capsys.readouterr()
    try:
        code = main(["apply", str(stray), "--list-targets", "--engine", "onnx"])
    finally:
        stray.unlink()
    assert code == 2
    assert "stray.onnx has no stray.json beside it" in capsys.readouterr().err
