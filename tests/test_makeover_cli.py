"""The makeover GAN through the real command line at a non-square size (32 wide, 40 tall),
on built-in synthetic faces filtered by attribute: train, sample grid, list-targets,
apply on crops and on a whole photo, export, and the bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facefilter.cli.main import main

TINY = ["--encoder", "8", "16", "--decoder", "48", "16", "--width", "8", "--critic", "8", "16"]
MEN, WOMEN = "synth:photo?count=40&where=Male", "synth:photo?count=40&where=-Male"


def train_args(out: Path, *extra: str) -> list[str]:
    return ["train", "makeover", "--data-a", MEN, "--data-b", WOMEN, "--size", "32x40",
            "--batch-size", "2", "--max-steps", "4", "--sample-every", "4", "--num-workers", "0",
            "--no-progress", "--out", str(out), *TINY, *extra]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("makeover")
    assert main(train_args(root / "run")) == 0
    assert main(["data", "synth", "--out", str(root / "faces"), "--count", "2", "--size", "40",
                 "--styles", "photo"]) == 0  # fmt: skip
    return root / "run"


def lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_the_run_keeps_its_size_and_offers_one_direction(run, capsys):
    config = json.loads((run / "config.json").read_text())
    assert config["image_size"] == "32x40" and config["domains"] == ["Male", "not-Male"]
    grid = Image.open(run / "samples" / "step-000004.png")
    width, height = grid.size  # 3 labelled rows of 32 x 40 tiles shown 3x (96 x 120)
    assert 3 * 120 < height < 3 * 122 + 40 and width > 2 * 96
    assert main(["apply", str(run), "--list-targets"]) == 0
    assert capsys.readouterr().out.split() == ["not-Male"]


def test_apply_on_a_crop_keeps_its_size(run, tmp_path):
    face = run.parent / "faces" / "photo" / "000001.png"
    out = tmp_path / "out.png"
    assert main(["apply", str(run), str(face), "-o", str(out), "--detect", "never"]) == 0
    assert Image.open(out).size == (32, 40)  # the middle of the square, as trained
    crop = tmp_path / "crop.png"
    assert main(["apply", str(run), str(face), "-o", str(crop), "--detect", "never",
                 "--strength", "0"]) == 0  # fmt: skip
    before = np.asarray(Image.open(face))[:, 4:36]
    assert np.array_equal(np.asarray(Image.open(crop)), before)


def test_export_runs_at_the_same_size(run, tmp_path):
    pytest.importorskip("onnxruntime")
    assert main(["export", str(run), "-o", str(tmp_path / "filter")]) == 0
    face = run.parent / "faces" / "photo" / "000002.png"
    outputs = {}
    for engine, source in (("torch", run), ("onnx", tmp_path / "filter")):
        out = tmp_path / f"{engine}.png"
        assert main(["apply", str(source), str(face), "--engine", engine, "-o", str(out),
                     "--detect", "never"]) == 0  # fmt: skip
        outputs[engine] = np.asarray(Image.open(out)).astype(int)
    assert outputs["torch"].shape == (40, 32, 3)
    assert np.abs(outputs["torch"] - outputs["onnx"]).max() <= 1


def test_a_whole_photo_gets_a_non_square_face_pasted_back(run, tmp_path):
    pytest.importorskip("dlib")
    skimage_data = pytest.importorskip("skimage.data")
    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(photo)
    crop, out = tmp_path / "crop.png", tmp_path / "out.png"
    assert main(["apply", str(run), str(photo), "-o", str(crop), "--crop-only",
                 "--upsample", "0"]) == 0  # fmt: skip
    assert Image.open(crop).size == (32, 40)
    assert main(["apply", str(run), str(photo), "-o", str(out), "--upsample", "0"]) == 0
    before, after = np.asarray(Image.open(photo)), np.asarray(Image.open(out))
    assert after.shape == before.shape
    changed = np.any(after != before, axis=2)
    assert changed[76:166, 185:255].mean() > 0.9  # her face (box ~175..265, 76..166)
    assert np.array_equal(after[400:], before[400:])  # far from the face: untouched


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data-b", "synth:photo?count=40&where=Male,Male"], "select the same"),
        (["--data-b", "synth:photo?count=40&where=Male,-Male"], "selects no"),
        (["--size", "80x101"], "use e.g. --size 80x104"),
        (["--annealing-half-life", "0"], "--annealing-half-life 0 must be at least 1"),
        (["--size", "80x"], "--size: image size '80x' is not a size"),
        (["--compile"], "--compile cannot train --gan-loss gan --r1-weight"),
        (["--compile", "--gan-loss", "wgan-gp"], "--compile cannot train --gan-loss wgan-gp"),
    ],
)
def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(train_args(out, *args)) == 2
    err = lines(capsys)
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_a_square_family_refuses_a_non_square_size(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "cyclegan-lite", "--data-a", "synth:photo?count=8", "--data-b",
                 "synth:anime?count=8", "--size", "32x40", "--out", str(out)]) == 2  # fmt: skip
    err = lines(capsys)
    assert len(err) == 1 and "trains on square images only" in err[0] and "--size 40" in err[0]
    assert not out.exists()
