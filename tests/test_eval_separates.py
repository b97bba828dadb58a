"""`eval` tells a working filter from a collapsed one, where paired L1 cannot.

A cyclegan-lite trained 300 steps at 32 px against a trVAE forced to batch size 1, whose
MMD is then always 0 and which decodes one mean face for every input: on the same 100
held-out photos both land about as near the true anime faces in L1, but only the working
one keeps who each face is (identity top-1 far above chance) and differs across faces.
"""

from __future__ import annotations

import json

import pytest

from facefilter.cli import main

COMMON = ["--size", "32", "--max-steps", "300", "--num-workers", "0", "--no-progress"]


def scores(run, tmp_path, name) -> dict:
    out = tmp_path / f"eval-{name}"
    assert main(["eval", str(run), "--to", "anime", "--from", "photo", "--count", "100",
                 "--no-identity", "-o", str(out)]) == 0  # fmt: skip
    return json.loads((out / "metrics.json").read_text())["paired"]


@pytest.mark.slow
def test_eval_separates_a_working_filter_from_a_collapsed_one(tmp_path):
    working, collapsed = tmp_path / "cyclegan", tmp_path / "trvae-batch-1"
    assert main(["train", "cyclegan-lite", "--data-a", "synth:photo", "--data-b", "synth:anime",
                 *COMMON, "--out", str(working)]) == 0  # fmt: skip
    assert main(["train", "trvae", "--data", "synth:photo,anime", "--batch-size", "1", *COMMON,
                 "--out", str(collapsed)]) == 0  # fmt: skip
    good, bad = scores(working, tmp_path, "working"), scores(collapsed, tmp_path, "collapsed")
    chance = good["chance_top1"]
    assert chance == pytest.approx(0.01)
    assert good["filter"]["top1"] >= 5 * chance  # it keeps who each face is
    assert bad["filter"]["top1"] <= 2 * chance  # one face for all: chance, or below
    assert bad["filter"]["spread"] < 0.01 < good["filter"]["spread"]
    # what L1 alone would say: the two are about equally near the truth
    assert abs(good["filter"]["l1"] - bad["filter"]["l1"]) < 0.05
    assert bad["filter"]["l1"] < bad["do_nothing"]["l1"]  # the mean face beats doing nothing
