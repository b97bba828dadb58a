"""`facefilter export --quantize int8`: graphs calibrated on the run's own faces, a
quarter of the size, close to the model, run by `--engine onnx`; bad calibration input
is one line and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_photo_anime_run
from facefilter.cli.main import main

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_photo_anime_run(tmp_path_factory.mktemp("quantize") / "run", size=32)


def graph_outputs(path: Path, images: np.ndarray) -> np.ndarray:
    from facefilter.inference.onnx import session

    strength = np.ones(len(images), np.float32)
    return session(path).run(["translated"], {"image": images, "strength": strength})[0]


def test_int8_graphs_are_smaller_close_and_calibrated_the_same_every_time(run, tmp_path, capsys):
    assert main(["export", str(run), "-o", str(tmp_path / "fp32")]) == 0
    for name in ("int8", "again"):
        assert main(["export", str(run), "-o", str(tmp_path / name), "--quantize", "int8",
                     "--calibration-count", "8"]) == 0  # fmt: skip
    said = capsys.readouterr().out
    assert "wrote to-anime.onnx (int8, " in said and "on calibration faces: mean" in said
    table = json.loads((tmp_path / "int8" / "config.json").read_text())["onnx"]
    assert {entry["precision"] for entry in table.values()} == {"int8"}
    from facefilter.inference import Filter

    assert Filter.load(tmp_path / "int8", "onnx").precision == "int8"  # what eval reports
    assert Filter.load(tmp_path / "fp32", "onnx").precision == "fp32"
    fp32, int8 = tmp_path / "fp32" / "to-anime.onnx", tmp_path / "int8" / "to-anime.onnx"
    assert int8.stat().st_size < 0.6 * fp32.stat().st_size  # int8 weights (and their scales)
    images = np.random.default_rng(0).uniform(-1, 1, (4, 3, 32, 32)).astype(np.float32)
    want, got = graph_outputs(fp32, images), graph_outputs(int8, images)
    # 8-bit activations: a few hundredths of the [-1, 1] range on average, never a new picture
    assert np.abs(want - got).mean() < 0.05 and not np.allclose(want, got, atol=1e-4)
    again = graph_outputs(tmp_path / "again" / "to-anime.onnx", images)
    assert np.array_equal(got, again)  # the same calibration faces, chosen by seed


def test_apply_runs_an_int8_export(run, tmp_path):
    assert main(["export", str(run), "-o", str(tmp_path / "int8"), "--quantize", "int8",
                 "--calibration-count", "4"]) == 0  # fmt: skip
    photo = tmp_path / "face.png"
    Image.fromarray(np.full((48, 48, 3), 120, np.uint8)).save(photo)
    assert main(["apply", str(tmp_path / "int8"), str(photo), "--to", "anime", "--engine",
                 "onnx", "--detect", "never", "-o", str(tmp_path / "out.png")]) == 0  # fmt: skip
    assert Image.open(tmp_path / "out.png").size == (32, 32)


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--calibration-count", "0"], "--calibration-count 0: give 1 to 100000 faces"),
        (["--calibration-data", "folder:/nowhere/faces"], "cannot open the calibration faces"),
    ],
)
def test_bad_calibration_is_one_line_and_writes_nothing(run, tmp_path, capsys, flags, said):
    code = main(["export", str(run), "-o", str(tmp_path / "out"), "--quantize", "int8", *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and said in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("output", ["folder", "one.onnx"])
def test_an_int8_graph_too_far_off_is_refused_and_not_left(run, tmp_path, capsys, monkeypatch,
                                                           output):  # fmt: skip
    from facefilter.inference import quantize

    monkeypatch.setattr(quantize, "INT8_TOLERANCE", 0.0)  # every graph is too far off now
    extra = ["--to", "anime"] if output.endswith(".onnx") else []
    code = main(["export", str(run), "-o", str(tmp_path / output), "--quantize", "int8",
                 "--calibration-count", "4", *extra])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "the int8 graph differs from the model" in err, err
    assert not (tmp_path / output).exists()
