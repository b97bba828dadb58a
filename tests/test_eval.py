"""`facefilter eval`: every figure it promises, from the real command, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
import torch

from conftest import TINY_CYCLEGAN, tiny_classifier_run, tiny_photo_anime_run, write_images
from facefilter.cli.eval import folder_name
from facefilter.cli.main import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    return {"filter": tiny_photo_anime_run(root / "p2a", count=40),  # 4 held-out faces
            "classifier": tiny_classifier_run(root / "clf")}  # fmt: skip


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def evaluate(run: Path, out: Path, *flags: str) -> dict:
    assert main(["eval", str(run), "-o", str(out), *flags]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_a_filter_on_synthetic_faces_gets_every_figure(runs, tmp_path, capsys):
    metrics = evaluate(runs["filter"], tmp_path / "e", "--to", "anime",
                       "--classifier", str(runs["classifier"]))  # fmt: skip
    paired = metrics["paired"]
    assert set(paired["filter"]) >= {"l1", "ssim", "top1", "spread"}
    assert paired["do_nothing"]["l1"] > 0 and paired["chance_top1"] == pytest.approx(1 / 4)
    distribution = metrics["distribution"]["filter"]
    assert distribution["outputs"] == 4 and not distribution["comparable"]
    assert distribution["features"].startswith("classifier")
    assert 0 <= metrics["identity_dlib"]["same_person"] <= 1
    assert metrics["style"]["style"] == "anime" and metrics["style"]["do_nothing_share"] <= 1
    assert "kept" in metrics["attributes"]
    proto = metrics["protocol"]
    assert proto["inputs"] == "synth:photo?count=40" and proto["truth"] == "synth:anime?count=40"
    assert proto["reference"] == "synth:anime?count=40"  # the run's own target data, held out
    assert proto["split"] == "test" and proto["count"] == 4 and proto["engine"] == "torch"
    for name in ("report.html", "samples.png"):
        assert (tmp_path / "e" / name).is_file()
    assert "<table>" in (tmp_path / "e" / "report.html").read_text()
    printed = capsys.readouterr().out
    assert "do nothing" in printed and "not comparable with published FID" in printed


def test_onnx_engine_scores_as_torch_does(runs, tmp_path):
    pytest.importorskip("onnxruntime")
    flags = ["--to", "anime", "--no-identity"]
    torch_run = evaluate(runs["filter"], tmp_path / "t", *flags)["paired"]["filter"]
    onnx_run = evaluate(runs["filter"], tmp_path / "o", *flags, "--engine", "onnx")
    assert onnx_run["protocol"]["engine"] == "onnx"
    assert onnx_run["paired"]["filter"]["l1"] == pytest.approx(torch_run["l1"], abs=1e-4)


def test_every_direction_of_a_trvae_gets_a_folder(tmp_path):
    run = tmp_path / "tv"
    assert main(["train", "trvae", "--data", "synth:photo,anime?count=20", "--size", "32",
                 "--channels", "8", "16", "--latent-dim", "8", "--mmd-dim", "16",
                 "--batch-size", "4", "--max-steps", "2", "--num-workers", "0", "--no-progress",
                 "--out", str(run)]) == 0  # fmt: skip
    assert main(["eval", str(run), "--to", "all", "--count", "2", "--no-identity"]) == 0
    folders = sorted(p.name for p in (run / "eval").iterdir())
    assert folders == ["anime-to-photo", "photo-to-anime"]
    metrics = json.loads((run / "eval" / "anime-to-photo" / "metrics.json").read_text())
    assert metrics["protocol"]["truth"] == "synth:photo?count=20"


def test_an_edit_is_scored_on_faces_without_it_against_them_with_it(tmp_path):
    run = tmp_path / "edit"
    assert main(["train", "dcae", "--data", "synth:photo?count=200", "--size", "32",
                 "--channels", "8", "--max-channels", "16", "--latent-dim", "8",
                 "--vector-count", "5", "--batch-size", "8", "--max-steps", "2",
                 "--num-workers", "0", "--no-progress", "--out", str(run)]) == 0  # fmt: skip
    clf = tiny_classifier_run(tmp_path / "clf")
    metrics = evaluate(run, tmp_path / "e", "--to", "+Eyeglasses", "--classifier", str(clf),
                       "--no-identity")  # fmt: skip
    proto = metrics["protocol"]
    assert proto["inputs"] == "synth:photo?count=200&where=-Eyeglasses"
    assert proto["truth"] == "synth:photo?count=200&where=-Eyeglasses&set=Eyeglasses:1"
    edited = metrics["attributes"]["edited"]["Eyeglasses"]
    assert edited["wanted"] is True and 0 <= edited["before"] <= 1 and "success" in (
        metrics["attributes"])  # fmt: skip
    assert folder_name("any face -> +Smiling -Bangs") == "add-Smiling_remove-Bangs"


def test_real_folders_get_fid_and_kid_against_the_target_folder(tmp_path, runs, capsys):
    a, b = write_images(tmp_path / "selfie", 6, base=60), write_images(tmp_path / "anime", 6)
    run = tmp_path / "run"
    assert main(["train", "cyclegan-lite", "--data-a", f"folder:{a}", "--data-b", f"folder:{b}",
                 "--size", "32", "--batch-size", "2", "--max-steps", "2", "--num-workers", "0",
                 "--no-progress", "--out", str(run), *TINY_CYCLEGAN]) == 0  # fmt: skip
    clf = str(runs["classifier"])
    metrics = evaluate(run, tmp_path / "e", "--to", "anime", "--classifier", clf)
    assert "paired" not in metrics and metrics["distribution"]["filter"]["reference"] == 6
    notes = metrics["protocol"]["notes"]
    assert any("no paired truth" in note for note in notes)
    assert any("6 of the 6 faces are in the training split too" in note for note in notes)
    assert any("FID on 6 images is biased" in note for note in notes)  # kept, not only said
    assert "note: FID on 6 images is biased" in capsys.readouterr().out  # under the table


def random_inception_file(path: Path) -> Path:
    """torch-fidelity's InceptionV3 with random weights, saved as its real weights file is."""
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    with mock.patch.object(fidelity.FeatureExtractorInceptionV3, "load_state_dict",
                           lambda self, *a, **k: None):  # fmt: skip
        net = fidelity.FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
        )
    torch.save(net.state_dict(), path)
    return path


def test_inception_and_lpips_load_from_the_files_given(runs, tmp_path):
    import torchvision

    path = tmp_path / "inception.pth"
    torch.save({}, path)  # a placeholder for the constructor's own (patched) load
    inception = random_inception_file(path)
    alexnet = tmp_path / "alexnet.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), alexnet)
    metrics = evaluate(runs["filter"], tmp_path / "e", "--to", "anime",
                       "--no-identity", "--inception-weights", str(inception),
                       "--lpips-weights", str(alexnet))  # fmt: skip
    distribution = metrics["distribution"]["filter"]
    assert distribution["comparable"] and distribution["features"].startswith("InceptionV3")
    assert metrics["paired"]["filter"]["lpips"] > 0
    assert metrics["paired"]["do_nothing"]["lpips"] > 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--to", "cartoon"], "unknown target 'cartoon'"),
        (["--to", "anime", "--count", "1"], "--count 1: give at least 2"),
        (["--to", "anime", "--data", "synth:photo?count=8"], "holds no faces in its test split"),
        (["--to", "anime", "--strength", "-1"], "--strength -1.0 must be a number >= 0"),
        (["--to", "anime", "--data", "synth:photo?count=10&where=Bald,-Bald"], "selects no"),
    ],
)
def test_bad_requests_are_one_line(runs, tmp_path, capsys, flags, message):
    assert main(["eval", str(runs["filter"]), "-o", str(tmp_path / "e"), "--no-identity",
                 *flags]) == 2  # fmt: skip
    assert message in error_line(capsys)
    assert not (tmp_path / "e").exists()


def test_fid_needs_two_images_a_side(runs, tmp_path, capsys):
    code = main(["eval", str(runs["filter"]), "--to", "anime", "--no-identity", "--classifier",
                 str(runs["classifier"]), "--reference", "synth:anime?count=10",
                 "-o", str(tmp_path / "e")])  # fmt: skip
    assert code == 2
    line = error_line(capsys)
    assert "FID needs at least 2 images on each side" in line and "thousands" in line


def test_weights_of_the_wrong_shape_are_one_line(runs, tmp_path, capsys):
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, wrong)
    for flag, message in (("--inception-weights", "is not torch-fidelity's InceptionV3"),
                          ("--lpips-weights", "its layers are not those of alexnet")):  # fmt: skip
        assert main(["eval", str(runs["filter"]), "--to", "anime", flag, str(wrong)]) == 2
        assert message in error_line(capsys)
    shrunk = tmp_path / "clf"
    tiny_classifier_run(shrunk)
    config = json.loads((shrunk / "config.json").read_text())
    config["model"]["channels"] = [8, 32]  # the weights no longer fit the config
    (shrunk / "config.json").write_text(json.dumps(config))
    assert main(["eval", str(runs["filter"]), "--to", "anime", "--classifier",
                 str(shrunk)]) == 2  # fmt: skip
    assert "does not match" in error_line(capsys)


def test_out_inside_the_data_is_refused(runs, tmp_path, capsys):
    faces = write_images(tmp_path / "faces", 2)
    code = main(["eval", str(runs["filter"]), "--to", "anime", "--data", f"folder:{faces}",
                 "-o", str(faces / "eval")])  # fmt: skip
    assert code == 2 and "--out" in error_line(capsys)
    assert not (faces / "eval").exists()


def test_an_edited_attribute_is_reported_beside_the_judges_verdict_on_the_truth():
    """The control every verdict needs: how often the judge calls the true outputs what
    the filter was asked for (a judge that calls the true twins men judges nothing)."""
    from facefilter.evaluation.verdicts import attribute_success
    from facefilter.models.capabilities import Verdict

    def verdict(male: list[float]) -> Verdict:
        return Verdict(torch.zeros(4, 1), torch.tensor(male)[:, None], torch.zeros(4, 0))

    before, after = verdict([0.9, 0.9, 0.9, 0.9]), verdict([0.1, 0.2, 0.9, 0.8])
    truth = verdict([0.1, 0.1, 0.1, 0.7])
    result = attribute_success(before, after, ["Male"], {"Male": False}, truth)
    male = result["edited"]["Male"]
    assert (male["before"], male["after"], male["truth"]) == (0.0, 0.5, 0.75)
    assert (
        "truth" not in attribute_success(before, after, ["Male"], {"Male": False})["edited"]["Male"]
    )
