"""The photo style's photographic look: light, texture, backdrop photographs, camera.
The other styles and every earlier face parameter must stay exactly as they were."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from facefilter.degrade import jpeg as jpeg_signed
from facefilter.synth import FaceParams, region_masks, render, sample_params
from facefilter.synth.backdrop import BACKDROPS, backdrop_pyramid
from facefilter.synth.dataset import to_uint8
from facefilter.synth.make_backdrops import FORBIDDEN, LICENCES, _photo

# Recorded before the photo look was added (anime and cartoon, seed 0, 4 faces, 48 px):
# each image's sum of uint8 pixel values. A change of look moves these by thousands; the
# tolerance only absorbs a pixel rounding differently on another CPU.
_GOLDEN_SUMS = {
    "anime": [1030626, 1264608, 1290273, 1156597],
    "cartoon": [1081279, 1342377, 1336924, 1173325],
}
# sha256 (first 16 hex digits) of every field that existed before the photo look, for
# seed 0, 4 faces: the new fields draw from their own generator and shift none of these.
_EARLIER_FIELDS = "e5484edc97f61800"
_LAST_EARLIER_FIELD = "noise_level"


@pytest.mark.parametrize("style", ["anime", "cartoon"])
def test_anime_and_cartoon_render_as_before(style: str) -> None:
    sums = to_uint8(render(sample_params(4, seed=0), style, 48)).long().sum(dim=(1, 2, 3))
    assert (sums - torch.tensor(_GOLDEN_SUMS[style])).abs().max() <= 24, sums.tolist()


def test_earlier_parameters_keep_their_values() -> None:
    params = sample_params(4, seed=0)
    names = [field.name for field in dataclasses.fields(FaceParams)]
    earlier = names[: names.index(_LAST_EARLIER_FIELD) + 1]
    digest = hashlib.sha256()
    for name in earlier:
        digest.update(getattr(params, name).float().numpy().tobytes())
    assert digest.hexdigest()[:16] == _EARLIER_FIELDS


def test_photo_is_deterministic_and_varies_its_camera() -> None:
    params = sample_params(64, seed=5)
    first = render(params.rows(slice(0, 6)), "photo", 48)
    assert torch.equal(first, render(sample_params(6, seed=5), "photo", 48))
    assert torch.equal(first[2:4], render(sample_params(2, seed=5, start=2), "photo", 48)[:2])
    # the camera draws a spread of settings, and only some faces are compressed or soft
    assert 0.1 < (params.jpeg_quality < 100).float().mean() < 0.7
    assert 0.1 < (params.defocus > 0).float().mean() < 0.6
    assert params.noise_gain.max() > 2.5 * params.noise_gain.min()
    assert len(set((params.backdrop_pick * 38).long().tolist())) > 20


def test_photo_camera_and_backdrop_ignore_attributes() -> None:
    """An edit changes only its own region: glasses change rows near the eyes, even on
    faces that are compressed, defocused or noisy."""
    params = sample_params(24, seed=1)
    assert (params.jpeg_quality < 100).any() and (params.defocus > 0).any()
    off = render(params.with_attribute("Eyeglasses", False), "photo", 64)
    on = render(params.with_attribute("Eyeglasses", True), "photo", 64)
    changed = (off - on).abs().amax(dim=1) > 0  # (N, H, W)
    eyes = region_masks(params, "photo", 64, ("eyes",))["eyes"][:, 0] > 0.5
    rows = torch.arange(64.0)
    for face in range(len(params)):
        if not changed[face].any():
            continue  # already wore glasses
        eye_rows = rows[eyes[face].any(dim=1)]
        changed_rows = rows[changed[face].any(dim=1)]
        assert changed_rows.min() >= eye_rows.min() - 10, face
        assert changed_rows.max() <= eye_rows.max() + 10, face
        assert not changed[face, :4].any() and not changed[face, -4:].any(), face


def jpeg(image: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """The shared JPEG in [0, 1], as the photo camera calls it."""
    return jpeg_signed(image * 2 - 1, quality) * 0.5 + 0.5


def _smooth_image() -> torch.Tensor:
    """(1, 3, 64, 64): a backdrop crop, a natural photograph."""
    return backdrop_pyramid()[0, 0].unsqueeze(0)[..., :64, :64].contiguous()


def test_jpeg_at_quality_100_is_nearly_lossless() -> None:
    image = _smooth_image()
    error = (jpeg(image, torch.tensor([100.0])) - image).abs()
    assert error.mean() < 0.5 / 255 and error.max() < 3 / 255


def test_jpeg_at_low_quality_works_in_8x8_blocks() -> None:
    image = _smooth_image()
    low = jpeg(image, torch.tensor([10.0]))
    assert (low - image).abs().mean() > 2 / 255
    # steps between neighbouring columns are biggest where blocks meet
    steps = (low[..., 1:] - low[..., :-1]).abs().mean(dim=(0, 1, 2))  # (63,)
    seams = steps[7::8]
    inside = torch.cat([steps[i::8] for i in range(7)])
    assert seams.mean() > 1.5 * inside.mean()
    # a change inside one block changes no other block
    touched = image.clone()
    touched[..., 18:22, 18:22] = 1.0 - touched[..., 18:22, 18:22]
    differs = (jpeg(touched, torch.tensor([10.0])) - low).abs().amax(dim=1)[0] > 0
    assert differs.any() and not differs[:16].any() and not differs[24:].any()
    assert not differs[:, :16].any() and not differs[:, 24:].any()


def test_jpeg_compresses_each_face_at_its_quality() -> None:
    image = _smooth_image().expand(2, 3, 64, 64)
    both = jpeg(image, torch.tensor([100.0, 10.0]))
    assert torch.equal(both[1:], jpeg(image[1:], torch.tensor([10.0])))
    assert (both[0] - image[0]).abs().mean() < (both[1] - image[1]).abs().mean()


def test_backdrop_asset_holds_only_faceless_free_photographs() -> None:
    assert BACKDROPS.stat().st_size < 700_000
    with np.load(BACKDROPS) as saved:
        crops, sources, licences = saved["crops"], saved["sources"], saved["licences"]
    assert crops.dtype == np.uint8 and crops.ndim == 4 and crops.shape[1:] == (96, 96, 3)
    assert 24 <= len(crops) <= 48 and len(sources) == len(licences) == len(crops)
    assert set(sources.tolist()) <= set(LICENCES)
    assert not any(name in source for source in sources.tolist() for name in FORBIDDEN)
    assert all(("CC0" in text or "public domain" in text) for text in licences.tolist())
    assert crops.std() > 20  # photographs, not blanks
    pyramid = backdrop_pyramid()
    assert pyramid.shape[:3] == (len(crops), 4, 3) and 0 <= pyramid.min() <= pyramid.max() <= 1


def test_backdrop_script_refuses_photos_with_faces() -> None:
    for name in ("astronaut", "camera", "lfw_subset"):
        with pytest.raises(ValueError, match="holds a face"):
            _photo(name)
