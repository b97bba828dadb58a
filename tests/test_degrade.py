"""The camera and the breakages (facefilter.degrade): JPEG as libjpeg makes it, effects that
repeat for a seed, and scrambles that keep the colours and lose the face."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from facefilter.degrade import Camera, camera, jpeg, scramble, shrink_blur, shuffle_tiles, speckle
from facefilter.pixels import from_pixels, to_pixels
from facefilter.synth import sample_params
from facefilter.synth.render import render


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    return render(sample_params(6, seed=4), "anime", 64) * 2 - 1


def as_tensor(picture: np.ndarray) -> torch.Tensor:
    return from_pixels(torch.from_numpy(picture.copy())).permute(2, 0, 1)[None]


@pytest.mark.parametrize("quality", [10, 50, 90])
def test_jpeg_matches_libjpeg_without_chroma_subsampling(faces, quality):
    picture = to_pixels(faces[0]).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", quality=quality, subsampling=0)
    pil = np.asarray(Image.open(buffer)).astype(int)
    ours = to_pixels(jpeg(as_tensor(picture), torch.tensor([float(quality)])))[0]
    ours = ours.permute(1, 2, 0).numpy().astype(int)
    lost = np.abs(pil - picture).mean()
    assert lost > 0.5  # the file did lose something at this quality
    assert np.abs(ours - pil).mean() < 0.35 * lost + 0.5  # and we lose what it loses


def test_jpeg_at_low_quality_makes_blocks_and_at_100_keeps_the_image(faces):
    near = jpeg(faces, torch.full((len(faces),), 100.0))
    assert (near - faces).abs().mean() < 0.01
    blocky = jpeg(faces, torch.full((len(faces),), 5.0))
    assert (blocky - faces).abs().mean() > 5 * (near - faces).abs().mean()


def test_the_camera_repeats_for_a_seed_and_changes_the_pictures(faces):
    first = camera(faces, torch.Generator().manual_seed(3))
    assert torch.equal(first, camera(faces, torch.Generator().manual_seed(3)))
    assert first.shape == faces.shape and first.min() >= -1 and first.max() <= 1
    assert not torch.equal(first, camera(faces, torch.Generator().manual_seed(4)))
    assert (first - faces).abs().flatten(1).mean(1).min() > 0.005  # every picture changed


def test_a_camera_with_every_effect_off_changes_nothing(faces):
    off = Camera(blur=1.0, noise=0.0, jpeg=(50.0, 50.0), cast=0.0, exposure=0.0, contrast=0.0,
                 grey=0.0)  # fmt: skip
    assert torch.allclose(camera(faces, torch.Generator().manual_seed(0), off), faces, atol=1e-4)


def test_shuffled_tiles_keep_the_pixels_and_the_border_and_lose_the_face(faces):
    shuffled = shuffle_tiles(faces, torch.Generator().manual_seed(0))
    assert torch.equal(shuffled[..., :4, :], faces[..., :4, :])  # outside the middle: kept
    for before, after in zip(faces, shuffled, strict=True):
        assert torch.equal(before.flatten().sort().values, after.flatten().sort().values)
    assert (shuffled - faces).abs().mean() > 0.05


def test_scramble_and_speckle_stay_in_range_and_repeat(faces):
    for make in (scramble, speckle):
        broken = make(faces, torch.Generator().manual_seed(1))
        assert torch.equal(broken, make(faces, torch.Generator().manual_seed(1)))
        assert broken.min() >= -1 and broken.max() <= 1 and (broken - faces).abs().mean() > 0.05


def test_shrink_blur_softens_edges(faces):
    blurred = shrink_blur(faces, 3.0)
    edges = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()  # noqa: E731
    assert edges(blurred) < 0.6 * edges(faces)
