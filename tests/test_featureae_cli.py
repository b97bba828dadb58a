"""The feature editors through the real command line, on built-in synthetic faces:
train, vectors, apply --edit, grid, lerp, export, and the bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from facefilter.cli.editor import glue_edit_values
from facefilter.cli.main import main

TINY = ["--channels", "8", "--max-channels", "16", "--latent-dim", "8"]


def lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dcae")
    assert main(["train", "dcae", "--data", "synth:photo?count=60", "--size", "32",
                 "--batch-size", "8", "--max-steps", "40", "--lr", "3e-3", "--num-workers", "0",
                 "--no-progress", "--out", str(root / "run"), "--vector-count", "10",
                 *TINY]) == 0  # fmt: skip
    assert main(["data", "synth", "--out", str(root / "faces"), "--count", "2", "--size", "32",
                 "--styles", "photo"]) == 0  # fmt: skip
    return root / "run"


@pytest.fixture(scope="module")
def cyclegan(tmp_path_factory) -> Path:
    """A tiny CycleGAN run: a family with domains and no attribute vectors."""
    out = tmp_path_factory.mktemp("cyclegan") / "run"
    assert main(["train", "cyclegan-lite", "--data-a", "synth:photo?count=10", "--data-b",
                 "synth:anime?count=10", "--size", "32", "--batch-size", "2", "--max-steps", "1",
                 "--num-workers", "0", "--no-progress", "--out", str(out), "--ngf", "8",
                 "--ndf", "8", "--n-blocks", "1"]) == 0  # fmt: skip
    return out


def face(run: Path, number: int = 1) -> str:
    return str(run.parent / "faces" / "photo" / f"00000{number}.png")


def test_training_computes_a_vector_per_attribute(run, capsys):
    assert main(["apply", str(run), "--list-targets"]) == 0
    offered = capsys.readouterr().out.split()
    assert "+Smiling" in offered and "-Eyeglasses" in offered and len(offered) == 32
    state = load_file(run / "model.safetensors")
    assert state["state.vectors"].shape == (16, 8)
    counts = state["state.vector_counts"]  # up to 10 with and 10 without each, fewer where
    assert counts.max() == 10 and (counts > 0).all()  # 48 training faces have fewer


def test_apply_several_edits_at_once(run, tmp_path):
    out = tmp_path / "edited.png"
    assert main(["apply", str(run), face(run), "--edit", "+Smiling=1.5", "--edit", "-Eyeglasses",
                 "-o", str(out), "--detect", "never"]) == 0  # fmt: skip
    before, after = np.asarray(Image.open(face(run))), np.asarray(Image.open(out))
    assert after.shape == before.shape and np.abs(after.astype(int) - before).mean() > 0.1
    zero = tmp_path / "zero.png"
    assert main(["apply", str(run), face(run), "--edit", "+Smiling", "--strength", "0",
                 "-o", str(zero), "--detect", "never"]) == 0  # fmt: skip
    assert np.array_equal(np.asarray(Image.open(zero)), before)


def test_vectors_recomputes_on_other_data_and_says_what_it_used(run, tmp_path, capsys):
    run = shutil.copytree(run, tmp_path / "run")  # the module's run stays as trained
    before = load_file(run / "model.safetensors")["state.vectors"]
    assert main(["vectors", str(run), "--data", "synth:photo?count=80&seed=3", "--count", "5",
                 "--attributes", "Smiling,Male"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "Smiling" in out and "5 with" in out and "Bald" not in out
    after = load_file(run / "model.safetensors")
    assert not torch.equal(after["state.vectors"][12], before[12])  # Smiling: recomputed
    assert torch.equal(after["state.vectors"][0], before[0])  # Bald: kept
    assert after["state.vector_counts"][12].tolist() == [5, 5]


def test_an_attribute_the_new_data_lacks_loses_its_vector_and_says_so(run, tmp_path, capsys):
    run = shutil.copytree(run, tmp_path / "run")
    assert main(["vectors", str(run), "--data", "synth:photo?count=80&where=-Bald"]) == 0
    assert "Bald                 no vector: 0 of the" in capsys.readouterr().out
    assert main(["apply", str(run), "--list-targets"]) == 0
    offered = capsys.readouterr().out.split()
    assert "+Bald" not in offered and "+Smiling" in offered


def test_a_run_stopped_before_its_vectors_says_how_to_get_them(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "dcae", "--data", "synth:photo?count=20", "--size", "32",
                 "--max-steps", "4", "--stop-at", "1", "--batch-size", "4", "--num-workers", "0",
                 "--no-progress", "--out", str(out), *TINY]) == 0  # fmt: skip
    assert "no --vgg-weights" in capsys.readouterr().out  # the start note
    assert main(["apply", str(out), "--list-targets"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and f"facefilter vectors {out}" in captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "1000"], "lack it; lower --count to"),
        (["--attributes", "Smilng"], "unknown attribute 'Smilng'"),
        (["--data", "folder:{faces}"], "has no attribute table"),
    ],
)
def test_bad_vectors_are_one_line_and_write_nothing(run, capsys, args, message):
    weights = (run / "model.safetensors").read_bytes()
    args = [a.format(faces=run.parent / "faces") for a in args]
    assert main(["vectors", str(run), *args]) == 2
    err = lines(capsys)
    assert len(err) == 1 and message in err[0], err
    assert (run / "model.safetensors").read_bytes() == weights
    if "Smilng" in message:
        assert "Smiling" in err[0] and "Eyeglasses" in err[0]  # the valid names


def test_an_unknown_attribute_lists_the_valid_ones(run, tmp_path, capsys):
    assert main(["apply", str(run), face(run), "--edit", "+Smilng", "-o",
                 str(tmp_path / "x.png")]) == 2  # fmt: skip
    err = lines(capsys)
    assert len(err) == 1 and "unknown attribute 'Smilng'" in err[0] and "Smiling" in err[0]
    assert not (tmp_path / "x.png").exists()


def test_edits_on_a_family_without_vectors_are_one_line(cyclegan, tmp_path, capsys):
    out = cyclegan
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32)).save(image)
    assert main(["apply", str(out), str(image), "--edit", "-Eyeglasses", "-o",
                 str(tmp_path / "y.png")]) == 2  # fmt: skip
    err = lines(capsys)
    assert len(err) == 1 and "no attribute vectors" in err[0] and "anime" in err[0]
    assert main(["vectors", str(out)]) == 2
    assert "need a dcae or pgae run" in lines(capsys)[0]
    assert main(["apply", str(out), str(image), "--to", "anime", "--edit-focus", "0", "-o",
                 str(tmp_path / "y.png")]) == 2  # fmt: skip
    assert "--edit-focus is not a setting of a cyclegan-lite model" in lines(capsys)[0]


def test_feature_grid_and_gifs(run, tmp_path):
    grid = tmp_path / "grid.png"
    assert main(["grid", str(run), "-o", str(grid), "--faces", "2", "--attributes",
                 "Smiling,Eyeglasses"]) == 0  # fmt: skip
    width, height = Image.open(grid).size
    assert width > 5 * 64 and height > 2 * 64  # face + 4 edits, enlarged twice
    lerp = tmp_path / "smile.gif"
    assert main(["lerp", str(run), face(run), "--edit", "-Smiling=2", "-o", str(lerp),
                 "--frames", "4"]) == 0  # fmt: skip
    assert Image.open(lerp).n_frames == 6  # forth (4) and back (2 between)
    morph = tmp_path / "morph.gif"
    assert main(["lerp", str(run), face(run, 1), face(run, 2), "-o", str(morph),
                 "--frames", "3"]) == 0  # fmt: skip
    assert Image.open(morph).n_frames == 4


def test_onnx_export_runs_single_edits_with_their_amount(run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    assert main(["export", str(run), "-o", str(tmp_path / "filter")]) == 0
    assert (tmp_path / "filter" / "add-Smiling.onnx").is_file()
    assert len(list((tmp_path / "filter").glob("*.onnx"))) == 32  # +/- each attribute
    outputs = {}
    for engine, source in (("torch", run), ("onnx", tmp_path / "filter")):
        out = tmp_path / f"{engine}.png"
        assert main(["apply", str(source), face(run), "--edit", "+Smiling=1.5", "--engine",
                     engine, "-o", str(out), "--detect", "never"]) == 0  # fmt: skip
        outputs[engine] = np.asarray(Image.open(out)).astype(int)
    assert np.abs(outputs["torch"] - outputs["onnx"]).max() <= 1
    assert main(["apply", str(tmp_path / "filter"), face(run), "--edit", "+Smiling", "--edit",
                 "-Bald", "--engine", "onnx", "-o", str(tmp_path / "x.png")]) == 2  # fmt: skip
    assert "one edit at a time" in lines(capsys)[-1]
    assert main(["apply", str(tmp_path / "filter"), face(run), "--edit", "+Smiling", "--engine",
                 "onnx", "--edit-focus", "0", "-o", str(tmp_path / "x.png")]) == 2  # fmt: skip
    assert "settings are built in" in lines(capsys)[-1]


def test_a_wrong_vgg_file_stops_training_before_anything_is_written(tmp_path, capsys):
    torch.save({"features.0.weight": torch.zeros(32, 3, 3, 3)}, tmp_path / "vgg.pth")
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "dcae",
                "--data",
                "synth:photo?count=20",
                "--size",
                "32",
                "--vgg-weights",
                str(tmp_path / "vgg.pth"),
                "--out",
                str(out),
                *TINY,
            ]
        )
        == 2
    )
    err = lines(capsys)
    assert len(err) == 1 and "features.0.weight has shape (32, 3, 3, 3)" in err[0]
    assert not out.exists()


def test_without_vgg_weights_training_logs_the_pixel_loss_alone(run):
    assert "pixel" in (run / "metrics.jsonl").read_text()
    assert "dfc" not in (run / "metrics.jsonl").read_text()


def test_apply_may_override_how_edits_are_output(run, tmp_path, capsys):
    outputs = {}
    for name, extra in {"default": [], "decode": ["--edit-detail", "decode", "--edit-focus", "0"],
                        }.items():  # fmt: skip
        out = tmp_path / f"{name}.png"
        assert main(["apply", str(run), face(run), "--edit", "+Smiling=2", "-o", str(out),
                     "--detect", "never", *extra]) == 0  # fmt: skip
        outputs[name] = np.asarray(Image.open(out)).astype(int)
    assert np.abs(outputs["default"] - outputs["decode"]).mean() > 1
    assert main(["apply", str(run), face(run), "--edit", "+Smiling", "--edit-focus", "1.5",
                 "-o", str(tmp_path / "x.png")]) == 2  # fmt: skip
    assert "--edit-focus 1.5 must lie in [0, 1)" in lines(capsys)[-1]


def test_an_amount_is_not_exported(run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    assert main(["export", str(run), "-o", str(tmp_path / "f.onnx"), "--to", "+Smiling=1.5"]) == 2
    err = lines(capsys)
    assert len(err) == 1 and "export the edit itself (+Smiling)" in err[0]
    assert not (tmp_path / "f.onnx").exists()


def test_trains_on_a_celeba_layout_with_a_filter(run, tmp_path):
    """What `data synth` writes is CelebA's layout; where= filters it as on CelebA."""
    out = tmp_path / "celeba-run"
    assert main(["data", "synth", "--out", str(tmp_path / "table"), "--count", "30",
                 "--size", "32", "--styles", "photo"]) == 0  # fmt: skip
    spec = f"celeba:{tmp_path / 'table' / 'photo'}?where=-Bald"
    assert main(["train", "dcae", "--data", spec, "--size", "32", "--batch-size", "4",
                 "--max-steps", "2", "--num-workers", "0", "--no-progress", "--out", str(out),
                 "--vector-count", "3", *TINY]) == 0  # fmt: skip
    counts = load_file(out / "model.safetensors")["state.vector_counts"]
    assert counts[0].tolist() == [0, 0]  # where=-Bald: nobody is bald, so no Bald vector
    assert counts[12].tolist() == [3, 3]  # Smiling


def test_an_edit_on_a_whole_photo_is_pasted_back(run, tmp_path):
    pytest.importorskip("skimage")
    photo, out = tmp_path / "astronaut.png", tmp_path / "smiling.png"
    assert main(["data", "sample-photo", "-o", str(photo)]) == 0
    assert main(["apply", str(run), str(photo), "--edit", "+Smiling=3", "-o", str(out)]) == 0
    before, after = np.asarray(Image.open(photo)), np.asarray(Image.open(out))
    assert before.shape == after.shape
    changed = np.abs(after.astype(int) - before).sum(-1) > 0
    assert changed[76:166, 175:265].mean() > 0.2  # in the face (as test_pipeline finds it)
    assert not changed[400:].any()  # far from the face: bit-identical
    # The change is pasted, not the 32 px crop: the face keeps the photo's fine detail.
    face_before, face_after = (np.diff(x[76:166, 175:265].astype(int), axis=1) for x in
                               (before, after))  # fmt: skip
    assert np.abs(face_after).mean() > 0.8 * np.abs(face_before).mean()


def test_a_grid_of_a_model_without_edits_is_one_line(cyclegan, tmp_path, capsys):
    out = cyclegan
    assert main(["grid", str(out), "-o", str(tmp_path / "grid.png")]) == 2
    err = lines(capsys)
    assert len(err) == 1 and "need a dcae or pgae run" in err[0], err
    assert not (tmp_path / "grid.png").exists()


def test_edit_values_that_start_with_a_dash_are_glued_to_their_flag():
    argv = ["apply", "r", "x.png", "--edit", "-Eyeglasses", "--edit", "+Smiling", "-o", "y.png"]
    assert glue_edit_values(argv) == ["apply", "r", "x.png", "--edit=-Eyeglasses", "--edit",
                                      "+Smiling", "-o", "y.png"]  # fmt: skip
    assert glue_edit_values(["--to", "-Smiling"]) == ["--to=-Smiling"]
    assert glue_edit_values(["--edit", "-o", "x"]) == ["--edit", "-o", "x"]  # a flag stays one
