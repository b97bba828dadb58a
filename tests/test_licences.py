"""The README's licence table is complete, and the default paths load only model files
whose licence allows commercial use.

Which files a command opens is seen where they are opened, in dlib, OpenCV, torch and
safetensors themselves, so a new loader anywhere in facefilter is seen too; the verdict
for each file is the README's own table, so the table a user reads is the one tested.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
from PIL import Image

from conftest import tiny_photo_anime_run
from facefilter.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECTION = "## Licences"


def licence_tables() -> tuple[dict[str, str], dict[str, str]]:
    """({dependency: commercial use}, {model file or part: commercial use}) from the README."""
    text = README.read_text()
    assert SECTION in text, f"README.md has no '{SECTION}' section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    tables: list[dict[str, str]] = [{}, {}]
    which = -1
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or set(cells[0]) <= {"-"}:
            continue
        if cells[0] in ("dependency", "model file"):
            which += 1
            continue
        for name in cells[0].split(", "):
            tables[which][name] = cells[-1]
    return tables[0], tables[1]


def declared_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {re.match(r"[A-Za-z0-9._-]+", r).group(0).lower() for r in requirements}  # type: ignore[union-attr]


def model_row(models: dict[str, str], name: str) -> str | None:
    """The verdict of the row that names the file (in backticks) or the part."""
    for key, verdict in models.items():
        if f"`{name}`" in key or key.startswith(name):
            return verdict
    return None


def test_every_dependency_has_a_row():
    dependencies, _ = licence_tables()
    missing = declared_dependencies() - {name.lower() for name in dependencies}
    assert not missing, f"README's licence table has no row for {sorted(missing)}"


def test_the_table_says_what_dlib_models_say():
    _, models = licence_tables()
    assert model_row(models, "shape_predictor_68_face_landmarks.dat") == "no"
    assert model_row(models, "shape_predictor_5_face_landmarks.dat") == "yes"
    assert model_row(models, "dlib_face_recognition_resnet_model_v1.dat") == "yes"
    assert str(model_row(models, "vgg19-dcbb9e9d.pth")).startswith("unclear")


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """Every model file dlib, OpenCV, torch or safetensors is asked to open, by path."""
    dlib = pytest.importorskip("dlib")
    import cv2
    import safetensors.torch
    import torch

    files: list[str] = []

    def recording(owner, name: str, hog: bool = False) -> None:
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            files.append("dlib's HOG frontal face detector" if hog else str(args[0]))
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    for name in ("shape_predictor", "face_recognition_model_v1", "cnn_face_detection_model_v1"):
        recording(dlib, name)
    recording(dlib, "get_frontal_face_detector", hog=True)
    recording(cv2.FaceDetectorYN, "create")
    recording(torch, "load")
    recording(safetensors.torch, "load_file")
    return files


def verdicts(files: list[str], runs: Path) -> dict[str, str | None]:
    """Each opened file's README verdict; a run's own weights are the user's."""
    _, models = licence_tables()
    found: dict[str, str | None] = {}
    for file in files:
        if Path(file).resolve().is_relative_to(runs.resolve()):
            continue  # the run being applied: "a run you trained"
        found[file] = model_row(models, Path(file).name)
    return found


def test_default_paths_load_only_models_that_allow_commercial_use(opened, tmp_path):
    """apply (faces found and pasted back), data crop and eval with dlib identity, all at
    their defaults: every model file they open has a README row that says yes."""
    pytest.importorskip("skimage")
    from skimage import data as skimage_data

    run = tiny_photo_anime_run(tmp_path / "runs" / "run")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(skimage_data.astronaut()).save(photos / "astronaut.png")
    opened.clear()  # training opened nothing of interest; what follows is the default paths
    assert main(["apply", str(run), str(photos / "astronaut.png"), "--to", "anime",
                 "-o", str(tmp_path / "out.png")]) == 0  # fmt: skip
    assert main(["data", "crop", str(photos), str(tmp_path / "crops"), "--size", "32"]) == 0
    assert main(["eval", str(run), "--to", "anime", "--split", "train", "--count", "4",
                 "-o", str(tmp_path / "eval")]) == 0  # fmt: skip
    names = {Path(file).name for file in opened}
    # Seen, so that a cached or moved loader cannot make this test pass by seeing nothing
    assert {"shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat",
            "dlib's HOG frontal face detector"} <= names, names  # fmt: skip
    found = verdicts(opened, tmp_path / "runs")
    unknown = sorted(file for file, verdict in found.items() if verdict is None)
    assert not unknown, f"model files with no row in README's licence table: {unknown}"
    barred = sorted(f"{file}: {v}" for file, v in found.items() if v != "yes")
    assert not barred, f"default paths load model files not cleared for commercial use: {barred}"


def test_a_barred_file_on_a_default_path_would_fail(opened, tmp_path):
    """The check itself: the 68-point model, opened, is named as barred."""
    import dlib

    from facefilter.face.detect import dlib_model_file

    dlib.shape_predictor(str(dlib_model_file("shape_predictor_68_face_landmarks.dat")))
    found = verdicts(opened, tmp_path)
    assert list(found.values()) == ["no"]
