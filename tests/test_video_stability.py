"""The flicker metric of benchmarks/video_stability.py: motion undone exactly scores ~0,
a jittering output scores more, and a tracker a frame behind reads as a lag of 1."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from facefilter.face import Face
from facefilter.face.arrays import import_cv2

BENCHMARK = Path(__file__).parents[1] / "benchmarks" / "video_stability.py"


@pytest.fixture(scope="module")
def stability():
    spec = importlib.util.spec_from_file_location("video_stability", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def textured_source(stability):
    cv2 = import_cv2()
    noise = np.random.default_rng(0).uniform(0, 255, (512, 512, 3)).astype(np.float32)
    image = np.clip(cv2.GaussianBlur(noise, (0, 0), 2) * 4 - 384, 0, 255).astype(np.uint8)
    eyes = [[230.0, 190.0], [270.0, 190.0], [250.0, 215.0], [235.0, 235.0], [265.0, 235.0]]
    face = Face(box=(200.0, 150.0, 300.0, 260.0), landmarks=np.array(eyes), score=1.0)
    return stability.Source("texture", image, face)


@pytest.mark.parametrize("kind", ["still", "pan"])
def test_motion_undone_exactly_scores_zero_and_jitter_more(stability, kind):
    cv2 = import_cv2()
    source = textured_source(stability)
    clip = stability.make_clip(source, kind, frames=6, seed=1)
    side = (stability.SIDE, stability.SIDE)
    exact = [cv2.warpAffine(source.image, motion, side) for motion in clip.motions]
    assert stability.residuals(exact, clip.motions, clip.masks).max() < 1e-6
    noisy = stability.residuals(clip.frames, clip.motions, clip.masks).mean()
    assert 2.5 < noisy < 4.5  # two frames' sensor noise, sigma 3: 3 * sqrt(2) * sqrt(2 / pi)
    shifts = [np.array([[1.0, 0, 0], [0, 1, 0]]), np.array([[1.0, 0, 1], [0, 1, 0]])]
    jittered = [cv2.warpAffine(source.image, stability.compose_affine(shifts[t % 2], motion), side)
                for t, motion in enumerate(clip.motions)]  # fmt: skip
    assert stability.residuals(jittered, clip.motions, clip.masks).mean() > 3.0


def test_lag_and_jitter_of_landmarks(stability):
    clip = stability.make_clip(textured_source(stability), "pan", frames=6, seed=1)
    truth = clip.truth
    behind = [truth[0], *truth[:-1]]  # a tracker one frame late
    assert stability.lag(behind, truth, truth) == pytest.approx(1.0)
    assert stability.lag(truth, truth, truth) == pytest.approx(0.0)
    still = stability.alignment(list(truth), truth)
    assert still["jitter"] == pytest.approx(0.0) and still["error"] == pytest.approx(0.0)
    assert stability.alignment(behind, truth)["error"] == pytest.approx(5 / 6)  # 1 px, 5 of 6
