"""Real faces to measure filters on (`data sample-photo --which`), cut as a run's source was
framed (`data crop --like`), and an evaluation on them whose style verdict comes with the
controls its judge must reject."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import tiny_classifier_run, tiny_photo_anime_run
from facefilter.cli.main import main
from facefilter.data.real_photos import REAL_PHOTOS, lfw_faces
from facefilter.face.identity import STRICT_FALSE_MATCH, identity_summary


def test_every_real_photo_loads_as_an_rgb_picture():
    for name, (make, credit) in REAL_PHOTOS.items():
        picture = make()
        assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3, name
        assert min(picture.shape[:2]) >= 256 and credit
    faces = lfw_faces()
    assert len(faces) == 100 and faces[0].shape == (220, 220, 3)
    assert len({face.tobytes() for face in faces}) == 100  # 100 different people


def test_people_is_a_folder_of_102_and_one_photo_is_a_file(tmp_path, capsys):
    assert main(["data", "sample-photo", "--which", "people", "-o", str(tmp_path / "people")]) == 0
    names = sorted(path.name for path in (tmp_path / "people").iterdir())
    assert len(names) == 102 and names[:2] == ["astronaut.png", "grace-hopper.png"]
    assert main(["data", "sample-photo", "--which", "grace-hopper", "-o",
                 str(tmp_path / "gh.png")]) == 0  # fmt: skip
    assert (tmp_path / "gh.png").is_file()
    capsys.readouterr()
    assert main(["data", "sample-photo", "--which", "lfw", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "writes a folder" in err[0] and "x.png" in err[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    return tiny_photo_anime_run(root / "filter"), tiny_classifier_run(root / "judge")


def test_crops_framed_like_a_run_and_judged_beside_controls(runs, tmp_path, capsys):
    run, judge = runs
    photos = tmp_path / "photos"
    for name in ("astronaut", "grace-hopper"):
        assert main(["data", "sample-photo", "--which", name, "-o", str(photos / f"{name}.png")
                     ]) == 0  # fmt: skip
    crops = tmp_path / "crops"
    assert main(["data", "crop", str(photos), str(crops), "--size", "32", "--like",
                 str(run)]) == 0  # fmt: skip
    framing = json.loads((crops / "framing.json").read_text())
    trained = json.loads((run / "config.json").read_text())["train"]["framings"]["photo"]
    assert framing["eye_height"] == pytest.approx(trained["eye_height"])
    assert framing["eye_distance"] == pytest.approx(trained["eye_distance"])
    capsys.readouterr()
    out = tmp_path / "eval"
    assert main(["eval", str(run), "--to", "anime", "--data", f"folder:{crops}",
                 "--classifier", str(judge), "-o", str(out)]) == 0  # fmt: skip
    style = json.loads((out / "metrics.json").read_text())["style"]
    assert set(style["controls"]) == {"inputs", "blurred", "noise", "scrambled"}
    for score in style["controls"].values():  # the likeliest style; and surely, no more often
        assert 0 <= score["confident"] <= score["share"] <= 1
    assert style["fooled_by"] == [n for n, s in style["controls"].items() if s["confident"] > 0.2]
    assert 0 <= style["confident"] <= style["share"] <= 1
    assert "controls called anime" in capsys.readouterr().out


def test_the_strict_threshold_is_where_few_different_people_match():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(40, 128)) * 0.1  # 40 people
    outputs = inputs + rng.normal(size=inputs.shape) * 0.02  # each near its own input
    summary = identity_summary(inputs, outputs)
    pairs = np.linalg.norm(inputs[:, None] - inputs[None], axis=-1)[np.triu_indices(40, 1)]
    assert (pairs < summary["strict_threshold"]).mean() == pytest.approx(STRICT_FALSE_MATCH,
                                                                          abs=0.01)  # fmt: skip
    assert summary["same_person_strict"] == 1.0 and summary["top1"] == 1.0
    assert "strict_threshold" not in identity_summary(inputs[:4], outputs[:4])  # 6 pairs: too few
