"""The attribute classifier: what it learns, how it is told apart from filters, its inputs."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import tiny_classifier_run, tiny_photo_anime_run
from facefilter.cli.main import main
from facefilter.errors import UserError
from facefilter.inference import Filter
from facefilter.inference.predictor import Classifier
from facefilter.models.classifier import blur_some, split_domains


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    return tiny_classifier_run(tmp_path_factory.mktemp("clf") / "run")


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def test_domains_are_attributes_then_styles(classifier_run):
    config = json.loads((classifier_run / "config.json").read_text())
    attributes, styles = split_domains(config["domains"])
    assert styles == ["photo", "anime", "scrambled"] and len(attributes) == 16
    assert "Smiling" in attributes
    assert config["family"] == "classifier"


def test_learns_style_and_attributes_better_than_chance(tmp_path):
    # clean faces: the camera and the scrambles (below) slow what 150 steps learn at 32 px
    run = tiny_classifier_run(tmp_path / "run", steps=150, count=400, batch=32,
                              extra=("--camera", "0", "--scrambled", "0"))  # fmt: skip
    classifier = Classifier.load(run)
    from facefilter.data.sources import open_source

    held = open_source("synth:photo,anime?count=400&seed=7", 32, "test")  # faces never seen
    images = torch.stack([held[i]["image"] for i in range(len(held))])
    labels = torch.tensor([held[i]["label"] for i in range(len(held))])
    attrs = held.attribute_table()
    verdict = classifier.predict(images)
    assert (verdict.style_logits.argmax(1) == labels).float().mean() > 0.9
    correct = ((verdict.attr_logits > 0.5).float() == attrs).float().mean(0)  # (16,)
    majority = torch.maximum(attrs.mean(0), 1 - attrs.mean(0))
    # 150 small steps are a start (a few CPU minutes at 64 px reach 0.99, README): more than
    # a few attributes beat always answering the commoner value, and the mean does too
    assert (correct > majority).sum() >= 4, (correct, majority)
    assert correct.mean() > majority.mean()


def test_eval_of_a_classifier_is_its_accuracy(classifier_run, tmp_path, capsys):
    out = tmp_path / "acc"
    assert main(["eval", str(classifier_run), "--count", "6", "-o", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["attributes"]) >= {"Male", "Smiling", "Eyeglasses"}
    assert 0 <= metrics["mean_accuracy"] <= 1 and 0 <= metrics["style_accuracy"] <= 1
    assert metrics["protocol"]["split"] == "test" and metrics["protocol"]["count"] == 6
    photos, animes = metrics["style_confusion"]  # faces spread over the split: both styles
    assert sum(photos) == 3 and sum(animes) == 3
    assert (out / "report.html").is_file() and (out / "samples.png").is_file()
    text = capsys.readouterr().out
    assert "mean" in text and "majority" in text and "style (photo, anime, scrambled)" in text


def test_a_classifier_is_no_filter_and_a_filter_no_classifier(classifier_run, tmp_path, capsys):
    with pytest.raises(UserError, match="is a classifier model, not a filter: it translates"):
        Filter.load(classifier_run)
    assert main(["apply", str(classifier_run), "--list-targets"]) == 2
    assert "not a filter" in error_line(capsys)
    assert main(["export", str(classifier_run), "-o", str(tmp_path / "x")]) == 2
    assert "not a filter" in error_line(capsys)
    assert main(["eval", str(classifier_run), "--to", "anime"]) == 2
    assert "takes no --to" in error_line(capsys)
    flt = tiny_photo_anime_run(tmp_path / "p2a")
    assert main(["eval", str(flt), "--to", "anime", "--classifier", str(flt)]) == 2
    assert "is a cyclegan-lite model, not an attribute classifier" in error_line(capsys)
    assert main(["data", "label", "synth:photo?count=4", "--classifier", str(flt)]) == 2
    assert "not an attribute classifier" in error_line(capsys)


def test_data_with_nothing_to_learn_is_one_line(tmp_path, capsys):
    from conftest import write_images

    faces = write_images(tmp_path / "faces", 4)
    assert main(["train", "classifier", "--data", f"folder:{faces}", "--out",
                 str(tmp_path / "run"), "--no-progress"]) == 2  # fmt: skip
    assert "neither an attribute table nor classes" in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_blur_augment_is_seeded_and_spares_the_rest():
    images = torch.rand(16, 3, 32, 32) * 2 - 1
    torch.manual_seed(3)
    first = blur_some(images, 0.5)
    torch.manual_seed(3)
    assert torch.equal(first, blur_some(images, 0.5))  # a function of the RNG the engine seeds
    changed = (first - images).abs().flatten(1).amax(1) > 0
    assert 0 < changed.sum() < 16  # some faces blurred, some left whole
    assert torch.equal(blur_some(images, 0.0), images)


def test_a_non_square_image_is_padded_back_to_its_square(classifier_run):
    classifier = Classifier.load(classifier_run)
    tall = torch.zeros(1, 3, 40, 32)
    tall[..., :, 0] = 1.0  # its left column
    fitted = classifier.fit(tall)
    assert fitted.shape == (1, 3, 32, 32)
    assert fitted[0, 0, :, 0].mean() > 0.9  # the edge column repeated outwards, not black


def test_a_judge_learns_scrambled_faces_as_a_style_of_their_own(classifier_run):
    classifier = Classifier.load(classifier_run)
    assert classifier.styles == ["photo", "anime", "scrambled"]
    family = classifier.family
    torch.manual_seed(0)
    batch = {"image": torch.rand(64, 3, 32, 32) * 2 - 1, "label": torch.zeros(64, dtype=torch.long),
             "attrs": torch.zeros(64, 16)}  # fmt: skip
    images, labels, intact = family.robust_batch(batch)
    broken = labels == 2
    assert 0 < int(broken.sum()) < 40  # about 0.2 of them
    grey = (images[:, 0] == images[:, 1]).flatten(1).all(1) & ~broken
    assert int(grey.sum()) > 0  # some faces in black and white, for the style head
    # neither a scrambled face nor a grey one teaches the attributes (hair colour, lipstick)
    assert torch.equal(intact, (~(broken | grey)).float())
    assert not torch.equal(images, batch["image"])


def test_a_run_from_before_the_scrambled_class_loads_as_it_was_trained(tmp_path):
    run = tiny_classifier_run(tmp_path / "old", extra=("--camera", "0", "--scrambled", "0"))
    config = json.loads((run / "config.json").read_text())
    del config["model"]["camera"], config["model"]["scrambled"]  # written before they existed
    (run / "config.json").write_text(json.dumps(config))
    classifier = Classifier.load(run)
    assert classifier.styles == ["photo", "anime"]
    assert classifier.family.config.scrambled == 0 and classifier.family.config.camera == 0
