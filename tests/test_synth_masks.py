"""Region masks of the synthetic faces: aligned with what `render` draws, per style."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from facefilter.errors import UserError
from facefilter.evaluation.paired import synth_pairs
from facefilter.pixels import from_pixels
from facefilter.synth import (
    LOOKS,
    MASK_REGIONS,
    STYLES,
    SynthFaces,
    masked_l1,
    region_masks,
    render,
    sample_params,
    synth_region_masks,
)
from facefilter.synth import styles as styles_module
from facefilter.synth.dataset import to_uint8
from facefilter.synth.params import sample_params_at

SIZE = 64


@pytest.fixture(scope="module")
def faces():
    return sample_params(8, seed=11)


def _area(mask: torch.Tensor) -> torch.Tensor:
    return mask.flatten(1).sum(1)  # (N,) pixels covered


def _render_recoloured(monkeypatch, params, style: str, **look_changes) -> torch.Tensor:
    """`render` with some of the style's look replaced (its colours only: the geometry the
    masks read is unchanged), to see exactly which pixels a part of the face paints."""
    monkeypatch.setitem(
        styles_module.LOOKS, style, dataclasses.replace(LOOKS[style], **look_changes)
    )
    try:
        return render(params, style, SIZE)
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("style", STYLES)
def test_masks_are_soft_nonempty_and_inside_the_image(faces, style):
    masks = region_masks(faces, style, SIZE, MASK_REGIONS)
    assert list(masks) == list(MASK_REGIONS)
    for name, mask in masks.items():
        assert mask.shape == (len(faces), 1, SIZE, SIZE) and mask.dtype == torch.float32, name
        assert mask.min() >= 0 and mask.max() <= 1, name
        assert (_area(mask) > 4).all(), f"{name}: some face has an empty mask"
        border = torch.cat([mask[..., 0, :], mask[..., -1, :], mask[..., 0], mask[..., -1]], -1)
        if name == "head":  # long hair falls to the bottom edge; the top stays clear
            border = mask[..., 0, :]
        assert border.max() == 0, f"{name}: reaches the image edge"
    again = region_masks(faces.rows(slice(2, 4)), style, SIZE, MASK_REGIONS)
    for name in MASK_REGIONS:  # deterministic and independent of the batch
        assert torch.equal(again[name], masks[name][2:4])


@pytest.mark.parametrize("style", STYLES)
def test_the_head_holds_the_face_and_the_hair(faces, style):
    masks = region_masks(faces, style, SIZE, ("head", "face"))
    head, face = masks["head"], masks["face"]
    assert (head >= face - 1e-6).all()  # the face is inside the head
    assert (_area(head) > 1.05 * _area(face)).all()  # and hair round it (bald: a little)
    assert _area(head).mean() > 1.3 * _area(face).mean()


def test_anime_eyes_are_bigger_than_photo_eyes(faces):
    anime = _area(region_masks(faces, "anime", SIZE, ("eyes",))["eyes"])
    photo = _area(region_masks(faces, "photo", SIZE, ("eyes",))["eyes"])
    assert anime.mean() > 1.5 * photo.mean()
    assert (anime > photo).all()


@pytest.mark.parametrize("style", STYLES)
def test_eye_mask_covers_the_drawn_eye_whites(monkeypatch, faces, style):
    base = render(faces, style, SIZE)
    eyes = LOOKS[style].eyes
    green = _render_recoloured(
        monkeypatch, faces, style, eyes=dataclasses.replace(eyes, sclera=(0.0, 1.0, 0.0))
    )
    whites = (green - base).abs().amax(1, keepdim=True) > 0.1  # where the sclera shows
    mask = region_masks(faces, style, SIZE, ("eyes",))["eyes"]
    assert (_area(whites) > 10).all()
    assert not (whites & (mask == 0)).any(), "eye white outside the eye mask"
    assert (_area(mask) < 5 * _area(whites)).all(), "eye mask far bigger than the eyes"


def test_chin_band_straddles_the_drawn_jaw_line(monkeypatch, faces):
    """Cartoon draws heads only (no neck), so recolouring the skin changes exactly the face
    below the mouth; the band must hold both sides of that edge, split where `face` says."""
    style, people = "cartoon", faces.with_attribute("Goatee", False)  # a goatee hides the chin
    base = render(people, style, SIZE)
    colours = dataclasses.replace(LOOKS[style].colours, skin=((0.0, 1.0, 0.0),) * 3)
    green = _render_recoloured(monkeypatch, people, style, colours=colours)
    skin = (green - base).abs().amax(1, keepdim=True) > 0.3
    masks = region_masks(people, style, SIZE, ("chin", "face"))
    band = masks["chin"] > 0.5
    inside, outside = band & (masks["face"] == 1), band & (masks["face"] == 0)
    assert (_area(inside) > 10).all() and (_area(outside) > 10).all()
    assert (skin & inside).sum() == inside.sum(), "face pixels in the band not drawn as skin"
    assert not (skin & outside).any(), "skin drawn outside the face outline"


def test_masks_move_with_the_pose(faces):
    face = faces.rows([0])
    shifted = dataclasses.replace(face, centre=face.centre + torch.tensor([[4 * 2.0 / SIZE, 0.0]]))
    turned = dataclasses.replace(face, angle=face.angle + 0.15)
    still, moved, rotated = (
        region_masks(p, "anime", SIZE, ("eyes", "chin")) for p in (face, shifted, turned)
    )
    for name in ("eyes", "chin"):  # 4 px to the right is the same mask, 4 px to the right
        torch.testing.assert_close(moved[name][..., 4:], still[name][..., :-4])
        assert (rotated[name] - still[name]).abs().sum() > 5
        assert _area(rotated[name]).item() == pytest.approx(_area(still[name]).item(), rel=0.05)


def test_synth_region_masks_follow_synth_pairs():
    kwargs = dict(count=40, seed=5, split="val", limit=3)
    _, truths = synth_pairs("photo", "anime", 32, **kwargs)
    masks = synth_region_masks("anime", 32, regions=("eyes", "face"), **kwargs)
    assert masks["eyes"].shape == (len(truths), 1, 32, 32)
    dataset = SynthFaces("anime", 32, count=40, seed=5, split="val")
    params = sample_params_at([int(dataset[i]["index"]) for i in range(len(truths))], seed=5)
    assert torch.equal(masks["face"], region_masks(params, "anime", 32, ("face",))["face"])
    redrawn = from_pixels(to_uint8(render(params, "anime", 32)))  # the faces masked, row by row
    distance = (redrawn[:, None] - truths[None]).abs().flatten(2).mean(2)  # (masked, truth)
    assert torch.equal(distance.argmin(1), torch.arange(len(truths)))


def test_masked_l1_measures_only_the_masked_pixels():
    prediction = torch.zeros(2, 3, 8, 8)
    target = prediction.clone()
    target[:, :, :4] = 1.0  # differs in the top half only
    top = torch.zeros(2, 1, 8, 8)
    top[:, :, :4] = 1.0
    assert torch.equal(masked_l1(prediction, prediction, top), torch.zeros(2))
    torch.testing.assert_close(masked_l1(prediction, target, top), torch.ones(2))
    assert torch.equal(masked_l1(prediction, target, (1 - top).bool()), torch.zeros(2))
    with pytest.raises(UserError, match="empty"):
        masked_l1(prediction, target, torch.zeros(2, 1, 8, 8))
    with pytest.raises(UserError, match="does not fit"):
        masked_l1(prediction, target, top[:, :, :4])


def test_unknown_region_is_a_user_error(faces):
    with pytest.raises(UserError, match="nose"):
        region_masks(faces, "photo", SIZE, ("eyes", "nose"))
