"""`train --eval-every N`: held-out figures logged while training, resume unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from conftest import TINY_CYCLEGAN, tiny_classifier_run, write_images
from facefilter.cli.main import main

SYNTH = ["--data-a", "synth:photo?count=40", "--data-b", "synth:anime?count=40"]
FAST = ["--size", "32", "--batch-size", "2", "--num-workers", "0", "--no-progress"]


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def logged(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [row for row in map(json.loads, lines) if any(k.startswith("eval/") for k in row)]


def train(out: Path, *flags: str) -> int:
    return main(["train", "cyclegan-lite", *SYNTH, *FAST, *TINY_CYCLEGAN, "--out", str(out),
                 *flags])  # fmt: skip


def test_synthetic_runs_log_paired_scores_and_resume_exactly(tmp_path):
    flags = ["--max-steps", "4", "--eval-every", "2", "--eval-count", "3"]
    assert train(tmp_path / "straight", *flags) == 0
    rows = logged(tmp_path / "straight")
    assert [row["step"] for row in rows] == [2, 4]
    assert set(rows[0]) >= {"eval/photo->anime/l1", "eval/photo->anime/top1",
                            "eval/anime->photo/ssim"}  # fmt: skip
    assert train(tmp_path / "paused", *flags, "--stop-at", "2") == 0
    assert train(tmp_path / "paused", *flags, "--resume") == 0
    assert logged(tmp_path / "paused") == rows  # the same held-out faces, the same scores
    straight = load_file(tmp_path / "straight" / "state" / "networks.safetensors")
    paused = load_file(tmp_path / "paused" / "state" / "networks.safetensors")
    assert all(torch.equal(straight[k], paused[k]) for k in straight)  # scoring changed nothing
    config = json.loads((tmp_path / "paused" / "config.json").read_text())
    assert config["train"]["eval_every"] == 2


def test_a_classifier_logs_its_held_out_accuracy(tmp_path):
    run = tmp_path / "clf"
    assert main(["train", "classifier", "--data", "synth:photo,anime?count=40", *FAST,
                 "--channels", "8", "16", "--max-steps", "2", "--eval-every", "1",
                 "--out", str(run)]) == 0  # fmt: skip
    rows = logged(run)
    assert len(rows) == 2 and 0 <= rows[0]["eval/attr_acc"] <= 1
    assert 0 <= rows[0]["eval/style_acc"] <= 1


def test_real_data_logs_kid_on_the_classifier_s_features(tmp_path, capsys):
    a, b = write_images(tmp_path / "selfie", 6, base=60), write_images(tmp_path / "anime", 6)
    folders = ["--data-a", f"folder:{a}", "--data-b", f"folder:{b}"]
    base = ["train", "cyclegan-lite", *folders, *FAST, *TINY_CYCLEGAN, "--max-steps", "2",
            "--eval-every", "2", "--eval-count", "4"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "none")]) == 2
    assert "--eval-classifier RUN" in error_line(capsys)
    assert not (tmp_path / "none").exists()
    classifier = tiny_classifier_run(tmp_path / "clf")
    run = tmp_path / "run"
    assert main([*base, "--out", str(run), "--eval-classifier", str(classifier)]) == 0
    (row,) = logged(run)
    assert row["eval/selfie->anime/kid_x100"] == row["eval/selfie->anime/kid_x100"]  # not NaN


def test_too_few_reference_faces_fail_before_training(tmp_path, capsys):
    a, b = write_images(tmp_path / "selfie", 4, base=60), write_images(tmp_path / "anime", 1)
    classifier = tiny_classifier_run(tmp_path / "clf")
    code = main(["train", "cyclegan-lite", "--data-a", f"folder:{a}", "--data-b", f"folder:{b}",
                 *FAST, *TINY_CYCLEGAN, "--max-steps", "2", "--eval-every", "2",
                 "--eval-classifier", str(classifier), "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 2
    assert "needs at least 2 images on each side" in error_line(capsys)
    assert not (tmp_path / "run").exists()  # refused before the first step, not at step 2


def test_an_editor_has_nothing_to_score_until_it_ends(tmp_path, capsys):
    code = main(["train", "dcae", "--data", "synth:photo?count=20", *FAST, "--max-steps", "2",
                 "--eval-every", "1", "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 2
    assert "facefilter eval RUN --to +ATTRIBUTE" in error_line(capsys)
    assert not (tmp_path / "run").exists()
