"""`facefilter data crop` (raw photos -> aligned crops + manifest) and `data report`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facefilter.cli.main import main
from facefilter.data.framing import framing_for_spec

pytest.importorskip("dlib")
skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def cropped(tmp_path_factory) -> tuple[Path, Path, int]:
    root = tmp_path_factory.mktemp("crop")
    raw = root / "raw"
    (raw / "group").mkdir(parents=True)
    astronaut = skimage_data.astronaut()
    Image.fromarray(astronaut).save(raw / "astronaut.jpg")
    two = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    Image.fromarray(two).save(raw / "group" / "two.png")
    Image.fromarray(skimage_data.chelsea()).save(raw / "cat.png")
    (raw / "broken.png").write_bytes(b"\x89PNG not really")
    code = main(["data", "crop", str(raw), str(root / "crops"), "--size", "48",
                 "--upsample", "0", "--margin", "0.1"])  # fmt: skip
    return raw, root / "crops", code


def test_crop_writes_faces_and_manifest(cropped, capsys):
    raw, out, code = cropped
    assert code == 0
    crops = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert crops == ["astronaut_0.png", "group/two_0.png", "group/two_1.png"]
    assert all(Image.open(out / c).size == (48, 48) for c in crops)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["crop"] for r in rows) == crops
    first = next(r for r in rows if r["crop"] == "astronaut_0.png")
    assert first["source"] == str(raw / "astronaut.jpg")
    assert np.array(first["landmarks"]).shape == (5, 2) and first["score"] > 0
    x0, y0, x1, y1 = first["box"]
    assert x0 < 220 < x1 and y0 < 121 < y1  # her face centre, read off the photo
    # Training on the crops records their framing, margin included.
    framing = framing_for_spec(f"folder:{out}")
    assert framing["margin"] == 0.1 and framing["eye_height"] == 0.4


def test_crop_reports_counts_and_skips(tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    Image.fromarray(skimage_data.chelsea()).save(raw / "cat.png")
    (raw / "empty.jpg").write_bytes(b"")
    # no crop at all is a failure, not an empty set: one line, and no OUT is left behind
    assert main(["data", "crop", str(raw), str(tmp_path / "out"), "--upsample", "0"]) == 2
    captured = capsys.readouterr()
    assert "no face crop from" in captured.err and "empty.jpg" in captured.err
    assert "2 image(s): 0 face crop(s) written, 1 with no face, 1 unreadable" in captured.err
    assert not (tmp_path / "out").exists()
    assert main(["data", "crop", str(raw), str(raw / "inside")]) == 2
    assert "lies inside RAW_DIR" in capsys.readouterr().err


def test_report_on_crops_and_synthetic_faces(cropped, tmp_path, capsys):
    _, out, _ = cropped
    chart = tmp_path / "report.png"
    assert main(["data", "report", f"folder:{out}", "--out", str(chart)]) == 0
    text = capsys.readouterr().out
    assert "folder:" in text and ": 3 image(s)" in text
    assert "face size (eye distance, px)" in text and "roll (degrees)" in text
    assert Image.open(chart).size[0] > 100
    assert main(["data", "report", "synth:photo,anime?count=6", "--out", str(chart)]) == 0
    text = capsys.readouterr().out
    assert "photo" in text and "anime" in text and "Smiling" in text
    assert "attributes (share of images)" in text


def test_report_into_a_folder_says_where_the_chart_went(tmp_path, capsys):
    folder = tmp_path / "reports"
    assert main(["data", "report", "synth:photo?count=4", "--out", str(folder)]) == 0
    written = folder / "data_report.png"
    assert f"chart written to {written}" in capsys.readouterr().out
    assert Image.open(written).format == "PNG"
    assert sorted(p.name for p in folder.iterdir()) == ["data_report.png"]  # no temporary left


def test_sample_photo(tmp_path):
    assert main(["data", "sample-photo", "-o", str(tmp_path / "a.png")]) == 0
    assert Image.open(tmp_path / "a.png").size == (512, 512)
