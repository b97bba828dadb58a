"""trVAE through the real command line, on built-in synthetic faces in three styles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from facefilter.cli.main import main

TINY = ["--channels", "8", "16", "--latent-dim", "8", "--mmd-dim", "16"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trvae")
    code = main(["train", "trvae", "--data", "synth:photo,anime,cartoon?count=30", "--size", "32",
                 "--batch-size", "6", "--max-steps", "3", "--num-workers", "0", "--no-progress",
                 "--out", str(root / "run"), *TINY])  # fmt: skip
    assert code == 0
    assert main(["data", "synth", "--out", str(root / "faces"), "--count", "2", "--size", "32",
                 "--styles", "photo"]) == 0  # fmt: skip
    return root / "run"


def faces(run: Path) -> Path:
    return run.parent / "faces" / "photo"


def test_transfer_between_any_two_classes(run, tmp_path):
    for target in ("anime", "cartoon"):
        out = tmp_path / f"{target}.png"
        assert main(["apply", str(run), str(faces(run) / "000001.png"), "--from", "photo",
                     "--to", target, "-o", str(out), "--detect", "never"]) == 0  # fmt: skip
        assert Image.open(out).size == (32, 32)


def test_to_all_writes_every_class_side_by_side(run, tmp_path):
    out = tmp_path / "all.png"
    assert main(["apply", str(run), str(faces(run) / "000001.png"), "--from", "photo",
                 "--to", "all", "-o", str(out), "--detect", "never"]) == 0  # fmt: skip
    width, height = Image.open(out).size
    assert 32 < height < 120 and width >= 3 * 32  # the input, then one panel per class, named


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "photo", "--to", "sketch"], "unknown target 'sketch'"),
        (["--from", "oil", "--to", "anime"], "unknown source 'oil'"),
        (["--to", "anime"], "pass --from"),
        (["--to", "all"], "pass --from"),  # the input's class is never guessed
    ],
)
def test_bad_classes(run, tmp_path, capsys, args, message):
    image = str(faces(run) / "000001.png")
    code = main(["apply", str(run), image, *args, "-o", str(tmp_path / "x.png"),
                 "--detect", "never"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert "photo" in err[0] and "anime" in err[0]  # the known classes are listed


def test_class_with_no_images(tmp_path, capsys):
    for name in ("real", "anime"):
        (tmp_path / "data" / name).mkdir(parents=True)
    Image.new("RGB", (40, 40)).save(tmp_path / "data" / "real" / "a.png")
    code = main(["train", "trvae", "--data", f"classes:{tmp_path / 'data'}",
                 "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 2
    assert "anime" in capsys.readouterr().err


def test_cyclegan_cli_on_synthetic_faces(tmp_path):
    """The main job's path in miniature: synth photo -> synth anime, then apply."""
    out = tmp_path / "run"
    assert main(["train", "cyclegan-lite", "--data-a", "synth:photo?count=20", "--data-b",
                 "synth:anime?count=20", "--size", "32", "--batch-size", "2", "--max-steps", "2",
                 "--num-workers", "0", "--no-progress", "--out", str(out), "--ngf", "8",
                 "--ndf", "8", "--n-blocks", "1"]) == 0  # fmt: skip
    assert main(["data", "synth", "--out", str(tmp_path / "f"), "--count", "2", "--size", "48",
                 "--styles", "photo"]) == 0  # fmt: skip
    sheet = tmp_path / "sheet.png"
    assert main(["apply", str(out), str(tmp_path / "f" / "photo"), "--to", "anime",
                 "-o", str(tmp_path / "o"), "--sheet", str(sheet)]) == 0  # fmt: skip
    assert len(list((tmp_path / "o").iterdir())) == 2 and sheet.is_file()


def test_a_sheet_of_to_all_shows_every_target_in_a_labelled_row(run, tmp_path):
    sheet = tmp_path / "sheet.png"
    assert main(["apply", str(run), str(faces(run) / "000001.png"), "--from", "photo",
                 "--to", "all", "-o", str(tmp_path / "o"), "--detect", "never",
                 "--sheet", str(sheet)]) == 0  # fmt: skip
    targets = len(json.loads((run / "config.json").read_text())["domains"]) - 1
    width, height = Image.open(sheet).size
    assert height > (1 + targets) * 96 and width > 96  # input row + one row per target
