"""The real command line, end to end, and the one-line errors it gives for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_CYCLEGAN, write_images
from facefilter.cli.main import main
from facefilter.models import FAMILIES, family_class


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A tiny cyclegan-lite trained for 4 steps on two folders of images."""
    root = tmp_path_factory.mktemp("cli")
    dark = write_images(root / "selfie", 6, base=60, seed=1)
    light = write_images(root / "anime", 6, base=190, seed=2)
    code = main(
        ["train", "cyclegan-lite", "--data-a", f"folder:{dark}", "--data-b", f"folder:{light}",
         "--size", "32", "--batch-size", "2", "--max-steps", "4", "--num-workers", "0",
         "--no-progress", "--out", str(root / "run"), *TINY_CYCLEGAN]
    )  # fmt: skip
    assert code == 0
    return root / "run"


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def test_apply_one_photo_and_a_folder(trained_run, tmp_path, capsys):
    photos = write_images(tmp_path / "photos", 3, size=50, base=80)
    assert main(["apply", str(trained_run), str(photos / "000.png"), "--to", "anime",
                 "-o", str(tmp_path / "one.png"), "--compare"]) == 0  # fmt: skip
    width, height = Image.open(tmp_path / "one.png").size  # input | output at 32 px, labelled
    assert 64 < width < 80 and 32 < height < 120  # narrow columns: names written upwards
    sheet = tmp_path / "sheet.png"
    assert main(["apply", str(trained_run), str(photos), "--to", "anime",
                 "-o", str(tmp_path / "many"), "--sheet", str(sheet)]) == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == [
        "000_anime.png", "001_anime.png", "002_anime.png",
    ]  # fmt: skip
    assert (tmp_path / "sheet.png").is_file()
    assert "wrote 3 file(s) for 3 image(s)" in capsys.readouterr().out


def test_apply_reports_bad_files_and_goes_on(trained_run, tmp_path, capsys):
    photos = write_images(tmp_path / "photos", 2, size=50)
    (photos / "broken.png").write_bytes(b"not a png at all")
    Image.new("RGB", (8, 8)).save(photos / "tiny.png")
    out = tmp_path / "o"
    code = main(["apply", str(trained_run), str(photos), "--to", "anime", "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 1  # some files failed, the rest were written
    assert len(list((tmp_path / "o").iterdir())) == 2
    assert "broken.png" in captured.err and "tiny.png" in captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "cartoon"], "unknown target 'cartoon'; this model offers anime, selfie"),
        (["--to", "anime", "--from", "anime"], "no translation from 'anime' to 'anime'"),
        (["--to", "+Smiling"], "no attribute vectors, so no edit such as '+Smiling'"),
        (["--to", "a b"], "is not a name"),
        (["--to", "anime", "--strength", "-1"], "--strength -1.0 must be a number >= 0"),
        (["--to", "anime", "--strength", "nan"], "--strength nan: give a finite number"),
        (["--to", "anime", "--strength", "1e308"], "--strength 1e+308 must be a number >= 0"),
        (["--to", "anime", "--device", "banana"], "--device 'banana' is not a device"),
        pytest.param(
            ["--to", "anime", "--device", "cuda"],
            "--device cuda: no CUDA GPU",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has a GPU"),
        ),
        (["--to", "anime", "--engine", "onnx", "--device", "cuda"], "runs on the CPU"),
    ],
)
def test_apply_bad_domain(trained_run, tmp_path, capsys, args, message):
    image = write_images(tmp_path / "p", 1, size=40) / "000.png"
    assert main(["apply", str(trained_run), str(image), *args, "-o", str(tmp_path / "x.png")]) == 2
    assert message in error_line(capsys)


def test_apply_bad_run_and_input(trained_run, tmp_path, capsys):
    image = write_images(tmp_path / "p", 1, size=40) / "000.png"
    assert main(["apply", str(tmp_path / "nowhere"), str(image), "--to", "anime"]) == 2
    assert "nowhere does not exist" in error_line(capsys)
    assert main(["apply", str(trained_run), str(tmp_path / "none.jpg"), "--to", "anime"]) == 2
    assert "none.jpg does not exist" in error_line(capsys)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"family": "pix2pix", "format_version": 1}))
    assert main(["apply", str(other), str(image), "--to", "anime"]) == 2
    assert "'pix2pix' model, which this facefilter does not know" in error_line(capsys)


def test_train_with_empty_domain_b(tmp_path, capsys):
    a = write_images(tmp_path / "a", 2)
    (tmp_path / "b").mkdir()
    code = main(["train", "cyclegan-lite", "--data-a", f"folder:{a}", "--data-b",
                 f"folder:{tmp_path / 'b'}", "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 2
    assert str(tmp_path / "b") in error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--pool-size", "-1"], "--pool-size -1 must be >= 0"),
        (["--lambda-cycle", "-2"], "--lambda-cycle -2.0 must be >= 0"),
        (["--ngf", "0"], "--ngf 0 must be at least 1"),
        (["--size", "30"], "--size 30 must be divisible by 4"),
        (["--ema-decay", "1.5"], "--ema-decay 1.5 must lie in [0, 1)"),
    ],
)
def test_bad_cyclegan_settings_are_one_line_and_write_nothing(tmp_path, capsys, flags, message):
    a, b = write_images(tmp_path / "a", 2), write_images(tmp_path / "b", 2, base=200)
    code = main(["train", "cyclegan-lite", "--data-a", f"folder:{a}", "--data-b", f"folder:{b}",
                 "--out", str(tmp_path / "run"), *flags])  # fmt: skip
    assert code == 2
    assert message in error_line(capsys)
    assert not (tmp_path / "run").exists()  # no samples/ or config.json left behind


def test_list_targets_prints_one_a_line(trained_run, capsys):
    assert main(["apply", str(trained_run), "--list-targets"]) == 0
    assert capsys.readouterr().out.splitlines() == ["anime", "selfie"]


def test_each_family_shows_its_own_training_defaults(capsys):
    for family, batch in (("cyclegan", 1), ("trvae", 32)):
        with pytest.raises(SystemExit):
            main(["train", family, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        flag = "--batch-size INT images per step (each family sets its own default)"
        assert f"{flag} (default: {batch})" in text


@pytest.mark.parametrize(
    "args",
    [["train"], ["train", "cyclegan"], ["train", "cyclegan-lite"], ["train", "trvae"], ["apply"],
     ["export"], ["data"], ["data", "synth"], ["data", "preview"], ["data", "crop"],
     ["data", "report"], ["data", "sample-photo"], ["data", "label"], ["eval"],
     ["train", "classifier"]],
)  # fmt: skip
def test_every_subcommand_explains_itself(args, capsys):
    with pytest.raises(SystemExit) as done:
        main([*args, "--help"])
    assert done.value.code == 0
    assert f"usage: facefilter {' '.join(args)}" in capsys.readouterr().out


def test_console_script_help():
    """The installed entry point runs in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-m", "facefilter", "--help"], capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for command in ("train", "apply", "export", "data"):
        assert command in done.stdout


HELP_COMMANDS = [[], ["train"], ["apply"], ["export"], ["eval"], ["vectors"], ["grid"],
                 ["lerp"], ["data"], *[["data", c] for c in ("synth", "preview", "crop", "report",
                                                            "sample-photo", "label")],
                 *[["train", f] for f in FAMILIES]]  # fmt: skip


def test_help_speaks_to_users(capsys, monkeypatch):
    """No word of the project's history, no default printed twice, and each family shows
    only the data flags it reads."""
    monkeypatch.setenv("COLUMNS", "200")
    for args in HELP_COMMANDS:
        with pytest.raises(SystemExit):
            main([*args, "--help"])
        text = capsys.readouterr().out
        for word in ("seed 0", "seeds", "write-up", "(default: None) (default", "issue"):
            assert word not in text.lower(), (args, word)
        if args[:1] == ["train"] and args[1:]:
            two_sets = family_class(args[1]).data_kind == "unpaired"
            assert ("--data-a" in text) == two_sets and (" --data " in text) != two_sets, args


def test_unknown_family_is_a_usage_error():
    done = subprocess.run(
        [sys.executable, "-m", "facefilter", "train", "stylegan9", "--out", "x"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "stylegan9" in done.stdout + done.stderr


def test_images_round_trip_through_numpy(tmp_path):
    # Regression guard for the uint8 path used by `apply`: values survive load/save.
    pixels = (np.arange(32 * 32 * 3) % 256).astype(np.uint8).reshape(32, 32, 3)
    Image.fromarray(pixels).save(tmp_path / "p.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "p.png")), pixels)


def test_same_stem_images_do_not_overwrite_each_other(trained_run, tmp_path):
    photos = write_images(tmp_path / "photos", 1, size=40)
    Image.open(photos / "000.png").convert("RGB").save(photos / "000.jpg")
    out = tmp_path / "out"
    assert main(["apply", str(trained_run), str(photos), "--to", "anime", "-o", str(out),
                 "--detect", "never"]) == 0  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["000_jpg_anime.png", "000_png_anime.png"]
    # an output folder inside the inputs is refused: a second run would filter its results
    inner = photos / "out"
    assert main(["apply", str(trained_run), str(photos), "--to", "anime", "-o", str(inner),
                 "--detect", "never"]) == 2  # fmt: skip
    assert not inner.exists()


def test_version_names_torch_and_every_optional_part(capsys, monkeypatch):
    import torch

    from facefilter import __version__
    from facefilter.cli import version

    assert main(["--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"facefilter {__version__} (torch {torch.__version__.split('+')[0]}")
    parts = {line.split()[0]: line for line in lines[2:]}
    assert set(parts) == {"demo", "export", "face", "hub", "tensorboard", "video"}
    assert "onnxruntime" in parts["export"]
    real = version.installed  # a part not installed says how to install it
    monkeypatch.setattr(version, "installed", lambda n: None if n == "datasets" else real(n))
    assert "hub          not installed (pip install 'facefilter[hub]')" in version.version_text()


def test_metrics_log_the_learning_rate_itself(tmp_path):
    a, b = write_images(tmp_path / "a", 2), write_images(tmp_path / "b", 2, base=200)
    assert main(["train", "cyclegan-lite", "--data-a", f"folder:{a}", "--data-b", f"folder:{b}",
                 "--size", "32", "--batch-size", "2", "--max-steps", "4", "--log-every", "1",
                 "--num-workers", "0", "--no-progress", "--out", str(tmp_path / "run"),
                 *TINY_CYCLEGAN]) == 0  # fmt: skip
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    # cyclegan-lite's lr: constant for the first half of the 4 steps, then falling to 0
    assert [row["lr"] for row in rows][:2] == [pytest.approx(2e-4)] * 2
    assert rows[-1]["lr"] < 2e-4


def test_a_named_domain_is_a_target_and_an_export_name(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "cyclegan-lite", "--data-a", "synth:photo?where=Male&count=16",
                 "--data-b", "synth:photo?where=-Male&count=16&name=female", "--size", "32",
                 "--batch-size", "2", "--max-steps", "2", "--num-workers", "0", "--no-progress",
                 "--out", str(run), *TINY_CYCLEGAN]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["apply", str(run), "--list-targets"]) == 0
    assert capsys.readouterr().out.split() == ["female", "Male"]
    face = write_images(tmp_path / "in", 1, size=32) / "000.png"
    assert main(["apply", str(run), str(face), "--to", "female", "-o", str(tmp_path / "f.png"),
                 "--detect", "never"]) == 0  # fmt: skip
    assert main(["export", str(run), "-o", str(tmp_path / "x"), "--to", "female"]) == 0
    assert (tmp_path / "x" / "to-female.onnx").is_file()


def test_earlier_checkpoints_kept_and_applied_by_step(tmp_path, capsys):
    run = tmp_path / "run"
    dark = write_images(tmp_path / "dark", 4, base=60, seed=1)
    light = write_images(tmp_path / "light", 4, base=190, seed=2)
    assert main(["train", "cyclegan-lite", "--data-a", str(dark), "--data-b", str(light),
                 "--size", "32", "--batch-size", "2", "--max-steps", "4", "--save-every", "1",
                 "--keep-checkpoints", "2", "--num-workers", "0", "--no-progress",
                 "--out", str(run), *TINY_CYCLEGAN]) == 0  # fmt: skip
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert kept == ["step-000003.safetensors", "step-000004.safetensors"]
    face = str(dark / "000.png")
    for source, out in ((str(run), "last.png"), (f"{run}@step-3", "third.png")):
        assert main(["apply", source, face, "--to", "light", "--detect", "never",
                     "-o", str(tmp_path / out)]) == 0  # fmt: skip
    last, third = (np.asarray(Image.open(tmp_path / n)) for n in ("last.png", "third.png"))
    assert not np.array_equal(last, third)  # another step, other weights
    assert main(["export", f"{run}@step-3", "-o", str(tmp_path / "x")]) == 0
    capsys.readouterr()
    assert main(["apply", f"{run}@step-1", face, "--to", "light", "-o", "y.png"]) == 2
    assert "kept no weights at step 1; kept: @step-000003, @step-000004" in error_line(capsys)


def test_resume_checks_the_merged_settings_and_names_with_at_are_plain(tmp_path, capsys):
    dark = write_images(tmp_path / "dark", 4, base=60, seed=1)
    light = write_images(tmp_path / "light", 4, base=190, seed=2)
    run = tmp_path / "lr@1e-4"  # an @ that is not @step-N is part of the name
    first = ["train", "cyclegan-lite", "--data-a", str(dark), "--data-b", str(light), "--size",
             "32", "--load-size", "36", "--batch-size", "2", "--max-steps", "2",
             "--num-workers", "0", "--no-progress", "--out", str(run), *TINY_CYCLEGAN]  # fmt: skip
    assert main(first) == 0
    capsys.readouterr()
    assert main(["train", "cyclegan-lite", "--out", str(run), "--resume", "--load-size", "24",
                 "--max-steps", "4"]) == 2  # fmt: skip
    assert "--load-size 24 is below --size 32" in error_line(capsys)  # the run's size, 32
    assert main(["train", "cyclegan-lite", "--out", str(run), "--resume", "--max-steps", "3"]) == 0
    assert main(["apply", str(run), str(dark / "000.png"), "--to", "light", "--detect", "never",
                 "-o", str(tmp_path / "o.png")]) == 0  # fmt: skip
