"""Paste-back masks: the head, not the square. Scored against the renderer's true heads
on synthetic faces, and by the area a filter changes in a real group photo (the
astronaut six times, through the real `apply`). benchmarks/mask_quality.py prints the
same measures at full size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_photo_anime_run
from facefilter.cli.main import main
from facefilter.data.framing import align_config, synth_framing, synth_landmarks
from facefilter.errors import UserError
from facefilter.face import (
    MASKS,
    AlignConfig,
    blend_mask,
    crop_mask,
    estimate_similarity,
    head_mask,
    invert_affine,
    template_landmarks,
)
from facefilter.synth import sample_params
from facefilter.synth.regions import region_masks

cv2 = pytest.importorskip("cv2")
pytest.importorskip("dlib")
skimage_data = pytest.importorskip("skimage.data")

SIZE = 64


def test_the_head_mask_is_an_egg_round_the_eyes_and_zero_at_the_rim():
    align = AlignConfig(size=128, **synth_framing())
    mask = head_mask(align, 0.1)
    eyes = template_landmarks(align)[:2]
    x, y = np.round(eyes.mean(0)).astype(int)
    assert mask[y, x] == 1 and mask[y + 28, x] == 1 and mask[y - 30, x] == 1  # eyes, mouth, hair
    assert mask[0].max() == mask[-1].max() == mask[:, 0].max() == mask[:, -1].max() == 0
    assert mask[y, 5] == 0 and mask[y, -5] == 0  # the background beside the head
    assert 0.2 < mask.mean() < 0.5 * crop_mask(128, 128).mean() + 0.2
    assert not blend_mask("head", align, 0.1).flags.writeable  # cached for video: read-only
    with pytest.raises(UserError, match="--mask 'square': choose head, crop, ellipse"):
        blend_mask("square", align, 0.1)


def synthetic_iou(name: str, style: str, count: int = 12) -> float:
    params = sample_params(count, seed=3)
    heads = region_masks(params, style, SIZE, ("head",))["head"][:, 0].numpy() > 0.5
    points = synth_landmarks(params, style).numpy() * SIZE - 0.5
    align = align_config(synth_framing(style), SIZE)
    mask = blend_mask(name, align, 0.1)
    ious = []
    for head, landmarks in zip(heads, points, strict=True):
        matrix = estimate_similarity(landmarks, template_landmarks(align))
        warped = cv2.warpAffine(mask, invert_affine(matrix), (SIZE, SIZE)) > 0.5
        ious.append((warped & head).sum() / (warped | head).sum())
    return float(np.mean(ious))


@pytest.mark.parametrize("style", ["photo", "cartoon"])
def test_the_head_mask_fits_the_true_synthetic_heads_better_than_the_crop(style):
    scores = {name: synthetic_iou(name, style) for name in MASKS}
    assert scores["head"] > 0.6, scores
    assert scores["head"] > scores["crop"] + 0.15 and scores["head"] > scores["ellipse"], scores


def group_photo(path: Path) -> np.ndarray:
    """The astronaut six times on a grey wall, at three sizes, half of them mirrored."""
    astronaut = skimage_data.astronaut()
    canvas = np.full((720, 1260, 3), 128, np.uint8)
    for index, side in enumerate((384, 320, 256, 384, 320, 256)):
        person = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_AREA)
        person = person[:, ::-1] if index % 2 else person
        top, left = (0 if index < 3 else 360), 420 * (index % 3)
        canvas[top : top + side, left : left + side] = person[: 720 - top]
    Image.fromarray(canvas).save(path)
    return canvas


def test_a_group_photo_changes_the_heads_and_little_else(tmp_path):
    run = tiny_photo_anime_run(tmp_path / "run", size=64)  # 32 px blurs the edge 1 px wider
    photo = group_photo(tmp_path / "group.png")
    changed = {}
    for mask in ("head", "crop"):
        out = tmp_path / f"{mask}.png"
        assert main(["apply", str(run), str(tmp_path / "group.png"), "--to", "anime",
                     "--mask", mask, "-o", str(out)]) == 0  # fmt: skip
        changed[mask] = (np.asarray(Image.open(out)) != photo).any(axis=2)
    from facefilter.face import create_detector

    faces = create_detector("dlib").detect(photo)
    assert len(faces) == 6
    boxes = np.zeros(photo.shape[:2], bool)
    for face in faces:
        x0, y0, x1, y1 = (round(v) for v in face.box)
        boxes[y0:y1, x0:x1] = True
        assert changed["head"][y0:y1, x0:x1].mean() >= 0.9  # the whole face changes
    print(f"changed / box area: head {changed['head'].sum() / boxes.sum():.2f}, "
          f"crop {changed['crop'].sum() / boxes.sum():.2f}")  # fmt: skip
    assert changed["head"].sum() <= 2.2 * boxes.sum()  # and not much more
    assert changed["crop"].sum() > 4 * boxes.sum()  # the square covered walls and neighbours
    assert not changed["head"][:40, :40].any() and not changed["head"][-40:, -40:].any()


def test_the_debug_overlay_shows_boxes_landmarks_and_the_mask(tmp_path):
    from facefilter.face import create_detector
    from facefilter.face.overlay import BOX, LANDMARKS, MASK_OUTLINE, draw_overlay

    photo = skimage_data.astronaut()
    faces = create_detector("dlib").detect(photo)
    align = AlignConfig(size=64, **synth_framing())
    matrices = [estimate_similarity(f.landmarks, template_landmarks(align)) for f in faces]
    shown = draw_overlay(photo, faces, matrices, blend_mask("head", align, 0.1))
    for colour in (BOX, LANDMARKS, MASK_OUTLINE):
        assert (shown == colour).all(axis=2).sum() > 10, colour
    assert np.array_equal(shown[:100, 400:], photo[:100, 400:])  # only near the face


def test_poisson_blending_meets_the_photo_at_the_seam():
    from facefilter.face import align_face, create_detector, paste_back

    photo = skimage_data.astronaut()
    face = create_detector("dlib").detect(photo)[0]
    align = AlignConfig(size=128, **synth_framing())
    crop, matrix = align_face(photo, face, align)
    darker = (crop.astype(int) * 0.5).astype(np.uint8)  # a filter that darkens the face
    mask = blend_mask("head", align, 0.1)
    alpha = cv2.warpAffine(mask, invert_affine(matrix), photo.shape[1::-1])
    seam = (alpha > 0.05) & (alpha < 0.5)  # the outer half of the blend
    change = {}
    for poisson in (False, True):
        pasted = paste_back(photo, darker, matrix, mask=mask, poisson=poisson)
        change[poisson] = np.abs(pasted.astype(int) - photo).mean(axis=2)
    assert change[True][seam].mean() < 0.5 * change[False][seam].mean()  # no dark rim
    assert change[True][alpha == 0].max() == 0  # and nothing outside the mask moves
    inside = alpha > 0.99
    assert change[True][inside].mean() > 5  # the face still changed (its shading did)


def test_a_head_cut_by_the_crop_top_still_fades_out():
    mask = head_mask(AlignConfig(size=128), 0.1)  # data crop's framing: hair above the crop
    steps = max(np.abs(np.diff(mask, axis=0)).max(), np.abs(np.diff(mask, axis=1)).max())
    assert steps < 0.25  # no hard edge anywhere (it was 1.0 at the top row)


def placed_case(turn_degrees: float = 0.0, nose_side: float = 0.0):
    """The synthetic framing and the 5 landmarks, in crop pixels as `align_face` leaves
    them, of a face turned by `turn_degrees` (seen across, every landmark closes up on the
    eye midpoint by cos(turn); the nose's drop is what dlib measures upright) with the nose
    `nose_side` eye distances right of the midline."""
    from facefilter.face.geometry import apply_affine
    from facefilter.face.masks import UPRIGHT_NOSE_DROP

    align = AlignConfig(size=128, **synth_framing())
    template = template_landmarks(align)
    middle, eyes = template[:2].mean(0), template[1, 0] - template[0, 0]
    seen = template.copy()
    seen[2] = middle + np.array([nose_side * eyes, UPRIGHT_NOSE_DROP * eyes])
    seen[:, 0] = middle[0] + (seen[:, 0] - middle[0]) * np.cos(np.radians(turn_degrees))
    return align, apply_affine(estimate_similarity(seen, template), seen)  # fit as aligned


def test_an_upright_face_gets_the_template_egg():
    from facefilter.face import face_mask

    align, points = placed_case()
    placed, fixed = face_mask("head", align, 0.1, points), head_mask(align, 0.1)
    # the same egg to within a pixel or so: the fit moves the eyes a little for dlib's nose
    assert np.abs(placed - fixed).mean() < 0.01
    assert ((placed > 0.5) & (fixed > 0.5)).sum() > 0.97 * ((placed > 0.5) | (fixed > 0.5)).sum()
    assert not placed.flags.writeable  # cached: a still face in a video reuses it
    for name in ("crop", "ellipse"):  # the fixed masks stay as they were
        assert face_mask(name, align, 0.1, points) is blend_mask(name, align, 0.1)
    assert face_mask("head", align, 0.1, None) is blend_mask("head", align, 0.1)


@pytest.mark.parametrize("side", [1, -1])
def test_a_turned_face_gets_a_larger_egg_towards_the_back_of_the_head(side):
    from facefilter.face import placed_head_mask

    align, upright_points = placed_case()
    upright = placed_head_mask(align, upright_points)
    turned = placed_head_mask(align, placed_case(45, 0.2 * side)[1])
    # The fit zooms in on the narrowed face; the egg follows the head's size (the nose's
    # drop) where the template's egg kept its own. It grows past the crop's top (the
    # synthetic framing leaves little room above the hair), so the area inside grows less.
    assert turned.sum() > 1.04 * upright.sum()
    xs = np.arange(turned.shape[1])
    centre_upright = (upright.sum(0) * xs).sum() / upright.sum()
    centre_turned = (turned.sum(0) * xs).sum() / turned.sum()
    assert (centre_upright - centre_turned) * side > 6  # away from the nose, in pixels
    assert turned[0].max() == turned[-1].max() == turned[:, 0].max() == turned[:, -1].max() == 0


def test_a_nearly_frontal_face_keeps_its_egg_and_a_degenerate_one_gets_no_nan():
    from facefilter.face import placed_head_mask
    from facefilter.face.masks import head_placement

    align, upright = placed_case()
    size = head_placement(align, upright)[2]
    for turn, nose in ((12, 0.04), (12, -0.04), (0, 0.04)):  # a few degrees, nose jitter
        _, points = placed_case(turn, nose)
        x, y, unit = head_placement(align, points)
        assert unit == size  # not grown, and not moved off the eyes: no flicker from jitter
        np.testing.assert_allclose((x, y), points[:2].mean(0), atol=1e-9)
    collapsed = upright.copy()
    collapsed[1] = collapsed[0] + 0.01  # the eyes on top of each other
    mask = placed_head_mask(align, collapsed)
    assert np.isfinite(mask).all() and mask.max() == 1.0


def test_pasting_through_a_placed_mask_keeps_the_rest_of_the_photo():
    from facefilter.face import paste_back, placed_head_mask

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (200, 240, 3), np.uint8)
    align, points = placed_case(35, 0.15)
    mask = placed_head_mask(align, points)
    angle = np.radians(20)  # a tilted face, the crop 1.25 times larger in the photo
    linear = 0.8 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shift = np.array([64.0, 64.0]) - linear @ [120.0, 100.0]  # the photo's middle: the crop's
    matrix = np.hstack([linear, shift[:, None]])
    pasted = paste_back(photo, np.full((128, 128, 3), 7, np.uint8), matrix, mask=mask)
    alpha = cv2.warpAffine(mask, invert_affine(matrix), (240, 200), flags=cv2.INTER_LINEAR)
    assert np.array_equal(pasted[alpha == 0], photo[alpha == 0])
    assert (alpha == 1).sum() > 500 and (pasted[alpha == 1] == 7).all()  # and the head changed
