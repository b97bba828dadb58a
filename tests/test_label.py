"""`facefilter data label`: a CelebA-format table for faces the user brings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import tiny_classifier_run
from facefilter.cli.main import main
from facefilter.data.celeba import read_attribute_file
from facefilter.data.framing import framing_for_spec
from facefilter.data.sources import open_source
from facefilter.data.spec import SPLITS


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory) -> Path:
    return tiny_classifier_run(tmp_path_factory.mktemp("label") / "clf")


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def renderer_table(spec: str) -> torch.Tensor:
    """The renderer's own labels of every face of `spec`, in the order `data label` writes."""
    return torch.cat([open_source(spec, 32, split).attribute_table() for split in SPLITS])


def agreement(out: Path, spec: str) -> float:
    _, _, table = read_attribute_file(out / "list_attr_celeba.txt")
    return float((torch.from_numpy(table).float() == renderer_table(spec)).float().mean())


def test_a_photo_gets_a_row_per_face_with_its_confidences(classifier_run, tmp_path, capsys):
    photos = tmp_path / "photos"
    assert main(["data", "sample-photo", "-o", str(photos / "astronaut.png")]) == 0
    out = tmp_path / "labelled"
    assert main(["data", "label", f"folder:{photos}", "--classifier", str(classifier_run),
                 "-o", str(out)]) == 0  # fmt: skip
    names, attributes, table = read_attribute_file(out / "list_attr_celeba.txt")
    assert names == ["astronaut_0.png"] and len(attributes) == 16 and table.shape == (1, 16)
    row = json.loads((out / "labels.jsonl").read_text())
    assert row["file"] == "astronaut_0.png" and row["source"].endswith("astronaut.png")
    assert len(row["box"]) == 4 and set(row["attributes"]) == set(attributes)
    assert 0.5 <= row["confidence"] <= 1 and row["least_certain"] in attributes
    assert set(row["style"]) == {"photo", "anime", "scrambled"}  # a judge rejects broken faces
    assert (out / "faces" / "astronaut_0.png").is_file()
    # the table works as CelebA's does, framed as the crops are
    smiling = "Smiling" if row["attributes"]["Smiling"] >= 0.5 else "-Smiling"
    assert len(open_source(f"celeba:{out}?where={smiling}", 32, "train")) == 1
    trained = json.loads((classifier_run / "config.json").read_text())["train"]["framing"]
    assert framing_for_spec(f"celeba:{out}")["eye_height"] == pytest.approx(
        trained["eye_height"])  # not CelebA's own template  # fmt: skip
    assert "1 face(s) labelled" in capsys.readouterr().out


def test_every_held_out_synthetic_face_is_labelled_in_order(classifier_run, tmp_path):
    spec = "synth:photo?count=30&seed=12345"
    out = tmp_path / "labelled"
    assert main(["data", "label", spec, "--classifier", str(classifier_run), "-o", str(out),
                 "--threshold", "0.4"]) == 0  # fmt: skip
    names, _, table = read_attribute_file(out / "list_attr_celeba.txt")
    assert names[:2] == ["000001.png", "000002.png"] and len(names) == 30
    rows = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    probabilities = torch.tensor([list(r["attributes"].values()) for r in rows])
    assert torch.equal(torch.from_numpy(table), probabilities >= 0.4)  # --threshold cuts
    assert 0 <= agreement(out, spec) <= 1


def test_crops_of_any_size_and_photos_of_one_name(classifier_run, tmp_path):
    from PIL import Image

    photos = tmp_path / "photos"
    assert main(["data", "sample-photo", "-o", str(photos / "astronaut.png")]) == 0
    Image.open(photos / "astronaut.png").save(photos / "astronaut.jpg")  # the same stem
    out = tmp_path / "labelled"
    assert main(["data", "label", f"folder:{photos}", "--classifier", str(classifier_run),
                 "-o", str(out), "--size", "48"]) == 0  # fmt: skip
    names, _, _ = read_attribute_file(out / "list_attr_celeba.txt")
    assert sorted(names) == ["astronaut_jpg_0.png", "astronaut_png_0.png"]
    assert Image.open(out / "faces" / names[0]).size == (48, 48)  # classified at 32, kept at 48
    assert json.loads((out / "framing.json").read_text())["size"] == 48


@pytest.mark.slow
def test_a_classifier_of_half_a_cpu_minute_agrees_with_the_renderer(tmp_path):
    """The bar of the README's claim, on faces of a seed no training saw."""
    run = tmp_path / "clf"
    assert main(["train", "classifier", "--data", "synth:photo,anime,cartoon?count=1000",
                 "--size", "32", "--channels", "16", "32", "64", "--batch-size", "32",
                 "--max-steps", "1500", "--num-workers", "0", "--no-progress",
                 "--camera", "0", "--scrambled", "0",  # a labeller of clean faces (README)
                 "--out", str(run)]) == 0  # fmt: skip
    spec = "synth:photo,anime,cartoon?count=100&seed=12345"
    out = tmp_path / "labelled"
    assert main(["data", "label", spec, "--classifier", str(run), "-o", str(out)]) == 0
    assert agreement(out, spec) >= 0.9


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--threshold", "1.5"], "--threshold 1.5 must lie strictly between 0 and 1"),
     (["--detect", "always"], "no face found")],
)  # fmt: skip
def test_bad_requests_are_one_line(classifier_run, tmp_path, capsys, flags, message):
    from conftest import write_images

    noise = write_images(tmp_path / "noise", 2, size=200)  # no face in noise
    out = tmp_path / "labelled"
    assert main(["data", "label", f"folder:{noise}", "--classifier", str(classifier_run),
                 "-o", str(out), *flags]) == 2  # fmt: skip
    assert message in error_line(capsys)
    assert not (out / "list_attr_celeba.txt").exists()


def test_the_output_may_not_lie_inside_the_photos(classifier_run, tmp_path, capsys):
    from conftest import write_images

    photos = write_images(tmp_path / "photos", 1)
    assert main(["data", "label", f"folder:{photos}", "--classifier", str(classifier_run),
                 "-o", str(photos / "labels")]) == 2  # fmt: skip
    assert "-o" in error_line(capsys) and not (photos / "labels").exists()
