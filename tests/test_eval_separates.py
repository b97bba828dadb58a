"""`eval` tells a working filter from a collapsed one, where paired L1 cannot.

A cyclegan-lite trained 300 steps at 32 px against a trVAE forced to batch size 1, whose
MMD is then always 0 and which decodes one mean face for every input: on the same 100
held-out photos both land about as near the true anime faces in L1, but only the working
one keeps who each face is (identity top-1 far above chance) and differs across faces.
The style score is reported for both and tells nothing of the collapse: a mean face may
look anime or not.
"""

from __future__ import annotations

import json

import pytest

from conftest import tiny_classifier_run
from facefilter.cli.main import main

COMMON = ["--size", "32", "--max-steps", "300", "--num-workers", "0", "--no-progress"]


def scores(run, tmp_path, name, classifier) -> dict:
    out = tmp_path / f"eval-{name}"
    flags = ["--to", "anime", "--from", "photo", "--count", "100", "--no-identity"]
    assert main(["eval", str(run), *flags, "--classifier", str(classifier), "-o", str(out)]) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_eval_separates_a_working_filter_from_a_collapsed_one(tmp_path):
    working, collapsed = tmp_path / "cyclegan", tmp_path / "trvae-batch-1"
    assert main(["train", "cyclegan-lite", "--data-a", "synth:photo", "--data-b", "synth:anime",
                 *COMMON, "--out", str(working)]) == 0  # fmt: skip
    assert main(["train", "trvae", "--data", "synth:photo,anime", "--batch-size", "1", *COMMON,
                 "--out", str(collapsed)]) == 0  # fmt: skip
    classifier = tiny_classifier_run(tmp_path / "classifier")
    good_run = scores(working, tmp_path, "working", classifier)
    bad_run = scores(collapsed, tmp_path, "collapsed", classifier)
    good, bad = good_run["paired"], bad_run["paired"]
    chance = good["chance_top1"]
    assert chance == pytest.approx(0.01)
    assert good["filter"]["top1"] >= 5 * chance  # it keeps who each face is
    assert bad["filter"]["top1"] <= 2 * chance  # one face for all: chance, or below
    assert bad["filter"]["spread"] < 0.01 < good["filter"]["spread"]
    # what L1 alone would say: the two are about equally near the truth
    assert abs(good["filter"]["l1"] - bad["filter"]["l1"]) < 0.05
    assert bad["filter"]["l1"] < bad["do_nothing"]["l1"]  # the mean face beats doing nothing
    # and its style score is whatever it is: a share like any other, no sign of the collapse
    for run in (good_run, bad_run):
        assert run["style"]["style"] == "anime" and 0 <= run["style"]["share"] <= 1
