"""facefilter.face on real photos shipped inside scikit-image (no downloads).

The astronaut (Eileen Collins, NASA, public domain) is the one human face; multi-face,
small-face, rolled, sideways, gray and huge cases are composed from her. Where a test
states a face position, it is read off the photo: her face box is about (175, 76, 265,
166) with the eyes near (204, 102) and (246, 104).
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib")
cv2 = pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

from facefilter.errors import UserError  # noqa: E402
from facefilter.face import (  # noqa: E402
    AlignConfig,
    Face,
    align_face,
    create_detector,
    crop_mask,
    estimate_similarity,
    invert_affine,
    paste_back,
    template_landmarks,
)
from facefilter.face.align import warp_to_crop  # noqa: E402
from facefilter.face.detect import face_from_yunet  # noqa: E402

FACE_CENTRE = np.array([220.0, 121.0])  # astronaut face box centre, read off the photo
EYE_DISTANCE = 43.0  # pixels between her eye centres


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()  # (512, 512, 3) uint8


@pytest.fixture(scope="module")
def detector():
    return create_detector("dlib")


@pytest.fixture(scope="module")
def upright_face(astronaut, detector) -> Face:
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    return faces[0]


def box_centre(face: Face) -> np.ndarray:
    x0, y0, x1, y1 = face.box
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2])


def assert_plausible_upright(face: Face) -> None:
    """Landmarks inside the box, left eye left of right eye, eyes above nose above mouth."""
    x0, y0, x1, y1 = face.box
    points = face.landmarks
    assert points.shape == (5, 2)
    assert ((points >= [x0, y0]) & (points <= [x1, y1])).all(), (face.box, points)
    left_eye, right_eye, nose, left_mouth, right_mouth = points
    assert left_eye[0] < nose[0] < right_eye[0]
    assert left_mouth[0] < right_mouth[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(left_mouth[1], right_mouth[1])


def rotate_photo(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Counter-clockwise rotation on a canvas big enough for every pixel (test's own copy)."""
    height, width = image.shape[:2]
    cos, sin = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
    size = (round(width * cos + height * sin), round(width * sin + height * cos))
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, 1.0)
    matrix[:, 2] += [(size[0] - width) / 2, (size[1] - height) / 2]
    return cv2.warpAffine(image, matrix, size, borderMode=cv2.BORDER_REPLICATE), matrix


def moved(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


# --- detection -------------------------------------------------------------------------


def test_finds_the_astronaut_with_plausible_landmarks(upright_face: Face) -> None:
    assert np.linalg.norm(box_centre(upright_face) - FACE_CENTRE) < 12
    assert_plausible_upright(upright_face)
    eye_distance = np.linalg.norm(upright_face.landmarks[1] - upright_face.landmarks[0])
    assert abs(eye_distance - EYE_DISTANCE) < 6


def test_two_faces_side_by_side(astronaut, detector) -> None:
    pair = np.concatenate([astronaut, astronaut], axis=1)  # (512, 1024, 3)
    faces = sorted(detector.detect(pair), key=lambda f: f.box[0])
    assert len(faces) == 2
    for face, shift in zip(faces, (0, 512), strict=True):
        assert np.linalg.norm(box_centre(face) - FACE_CENTRE - [shift, 0]) < 12
        assert_plausible_upright(face)


def test_small_face_in_a_large_photo(astronaut, detector) -> None:
    canvas = np.full((1500, 2000, 3), 120, np.uint8)
    small = cv2.resize(astronaut, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    canvas[900 : 900 + small.shape[0], 1400 : 1400 + small.shape[1]] = small  # face ~63 px
    faces = detector.detect(canvas)
    assert len(faces) == 1
    assert np.linalg.norm(box_centre(faces[0]) - (FACE_CENTRE * 0.7 + [1400, 900])) < 10
    assert_plausible_upright(faces[0])


@pytest.mark.parametrize("angle", [25.0, 90.0])
def test_rolled_and_sideways_faces(astronaut, detector, upright_face, angle) -> None:
    rotated, matrix = rotate_photo(astronaut, angle)
    faces = detector.detect(rotated)
    assert len(faces) == 1
    expected = moved(upright_face.landmarks, matrix)  # same face-frame order as upright
    eyes_error = np.linalg.norm(faces[0].landmarks[:3] - expected[:3], axis=1)
    assert eyes_error.max() < 0.15 * EYE_DISTANCE, (faces[0].landmarks, expected)
    assert np.linalg.norm(box_centre(faces[0]) - moved(FACE_CENTRE[None], matrix)[0]) < 15


def test_an_upright_face_and_a_rolled_one_are_both_found(astronaut, detector) -> None:
    rolled = np.ascontiguousarray(np.rot90(astronaut))  # her face sideways
    collage = np.concatenate([astronaut, rolled], axis=1)  # (512, 1024, 3)
    faces = sorted(detector.detect(collage), key=lambda f: f.box[0])
    assert len(faces) == 2  # each once: the upright face, found again rotated, is merged
    assert np.linalg.norm(box_centre(faces[0]) - FACE_CENTRE) < 12
    x, y = FACE_CENTRE  # np.rot90 turns (x, y) into (y, 511 - x)
    assert np.linalg.norm(box_centre(faces[1]) - [512 + y, 511 - x]) < 15
    eyes = faces[1].landmarks[:2]
    assert abs(eyes[0, 0] - eyes[1, 0]) < 10 < abs(eyes[0, 1] - eyes[1, 1])  # one above the other


@pytest.mark.parametrize("channels", [None, 1])
def test_grayscale_input(astronaut, detector, channels) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)  # (H, W)
    faces = detector.detect(gray if channels is None else gray[:, :, None])
    assert len(faces) == 1
    assert np.linalg.norm(box_centre(faces[0]) - FACE_CENTRE) < 12


def test_huge_photo_is_downscaled_first(astronaut, detector) -> None:
    huge = np.full((9000, 12000, 3), 150, np.uint8)  # 324 MB, mostly flat
    big = cv2.resize(astronaut, None, fx=4, fy=4, interpolation=cv2.INTER_LINEAR)
    huge[3000 : 3000 + 2048, 6000 : 6000 + 2048] = big  # face ~360 px
    tracemalloc.start()
    started = time.perf_counter()
    faces = detector.detect(huge)
    seconds = time.perf_counter() - started
    peak_bytes = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(faces) == 1
    assert np.linalg.norm(box_centre(faces[0]) - (FACE_CENTRE * 4 + [6000, 3000])) < 40
    assert_plausible_upright(faces[0])
    assert peak_bytes < 64e6, f"detect allocated {peak_bytes / 1e6:.0f} MB of arrays"
    assert seconds < 20


@pytest.mark.parametrize("photo", ["chelsea", "coffee", "flat"])
def test_no_face_where_there_is_none(photo, detector) -> None:
    if photo == "flat":
        image = np.full((240, 320, 3), 90, np.uint8)
    else:
        image = getattr(skimage_data, photo)()  # a cat; a coffee cup
    assert detector.detect(image) == []


def test_center_detector_frames_the_centre_square() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    [face] = create_detector("center").detect(image)
    assert face.box == (50.0, 0.0, 250.0, 200.0)
    crop, matrix = align_face(image, face, AlignConfig(size=100))
    np.testing.assert_allclose(matrix, [[0.5, 0, -25.25], [0, 0.5, -0.25]], atol=1e-9)
    expected = cv2.resize(image[:, 50:250], (100, 100), interpolation=cv2.INTER_AREA)
    assert np.abs(crop.astype(int) - expected).max() <= 1


# --- alignment -------------------------------------------------------------------------


def test_estimate_similarity_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = np.radians(33.0), 1.7, np.array([12.5, -40.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rotation.T + shift
    matrix = estimate_similarity(src, dst)
    np.testing.assert_allclose(matrix, np.hstack([scale * rotation, shift[:, None]]), atol=1e-9)
    np.testing.assert_allclose(invert_affine(matrix) @ np.append(dst[0], 1), src[0], atol=1e-9)


def test_estimate_similarity_never_reflects() -> None:
    src = np.array([[0.0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.2]])
    mirrored = src * [-1, 1]  # the exact fit would be a reflection
    assert np.linalg.det(estimate_similarity(src, mirrored)[:, :2]) > 0


def test_template_crop_puts_landmarks_where_the_template_says() -> None:
    """Dots drawn at a face's landmarks land on the template pixels after alignment."""
    cfg = AlignConfig(size=128, margin=0.1)
    template = template_landmarks(cfg)  # (5, 2) crop pixels
    angle, scale = np.radians(-20.0), 2.3
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = scale * template @ rotation.T + [150.0, 90.0]  # somewhere in a photo
    image = np.zeros((480, 640, 3), np.uint8)
    for x, y in landmarks:  # sub-pixel dots: centre in 1/16 pixels (shift=4)
        cv2.circle(
            image, (round(x * 16), round(y * 16)), 4 * 16, (255, 255, 255), -1, cv2.LINE_AA, 4
        )
    crop, matrix = align_face(image, Face(box=(0, 0, 1, 1), landmarks=landmarks, score=1), cfg)
    np.testing.assert_allclose(moved(landmarks, matrix), template, atol=1e-6)
    brightness = crop[:, :, 0].astype(np.float64)  # (S, S)
    for x, y in template:  # each dot's centre of brightness, within a small window
        x0, y0 = round(x) - 6, round(y) - 6
        window = brightness[y0 : y0 + 13, x0 : x0 + 13]
        ys, xs = np.mgrid[y0 : y0 + 13, x0 : x0 + 13]
        centre = np.array([(window * xs).sum(), (window * ys).sum()]) / window.sum()
        assert np.abs(centre - [x, y]).max() < 0.25, (centre, (x, y))


def test_real_face_aligns_to_the_template(astronaut, upright_face) -> None:
    cfg = AlignConfig(size=128)
    crop, matrix = align_face(astronaut, upright_face, cfg)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    eyes = moved(upright_face.landmarks[:2], matrix)
    assert np.abs(eyes - template_landmarks(cfg)[:2]).max() < 0.03 * cfg.size
    # The framing shows hair and chin: eyes at 40% height, eye line about level.
    assert 0.35 < eyes[:, 1].mean() / cfg.size < 0.45
    assert abs(eyes[0, 1] - eyes[1, 1]) < 2


def test_crop_outside_the_photo_has_no_black_corners(astronaut, upright_face) -> None:
    """A face at the photo's corner: the crop mirrors the border instead of padding black."""
    # Face near the top left; lifted to >= 40 so any black pixel must be padding.
    corner = np.maximum(astronaut[60:300, 150:400], 40)
    shifted = Face(box=upright_face.box, landmarks=upright_face.landmarks - [150, 60], score=1.0)
    crop, _ = align_face(corner, shifted, AlignConfig(size=128, margin=0.5))
    assert crop.min() >= 39  # mirrored photo, no black padding


# --- paste-back ------------------------------------------------------------------------


def test_round_trip_restores_the_face_and_leaves_the_rest_untouched(
    astronaut, upright_face
) -> None:
    crop, matrix = align_face(astronaut, upright_face, AlignConfig(size=256))
    restored = paste_back(astronaut, crop, matrix)
    # Where white pasted on black shows anything, the mask is >= 1/510: its support.
    black = np.zeros_like(astronaut)
    support = paste_back(black, np.full_like(crop, 255), matrix)[:, :, 0] > 0  # (H, W)
    assert (restored[~support] == astronaut[~support]).all()  # bit-identical outside
    error = np.abs(restored.astype(int) - astronaut)[support]  # (N, 3)
    assert error.mean() < 3 and np.percentile(error, 99) < 25
    x0, y0, x1, y1 = (round(v) for v in upright_face.box)
    assert support[y0:y1, x0:x1].all()  # the whole face is covered
    assert support.mean() < 0.25  # ...and the mask stays near the face


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_round_trip_is_exact_when_pixels_line_up(astronaut, scale) -> None:
    """Whole-pixel shifts and a 2x zoom resample nothing: a half-pixel slip would show."""
    matrix = np.array([[scale, 0, -150 * scale], [0, scale, -40 * scale]])  # image -> crop
    crop = warp_to_crop(astronaut, matrix, round(128 * scale))
    if scale == 1.0:
        assert (crop == astronaut[40:168, 150:278]).all()
    assert (paste_back(astronaut, crop, matrix) == astronaut).all()


def test_inverted_faces_paste_one_after_another(astronaut, detector) -> None:
    pair = np.concatenate([astronaut, astronaut], axis=1)
    result = pair
    for face in detector.detect(pair):
        crop, matrix = align_face(pair, face, AlignConfig(size=128))
        result = paste_back(result, 255 - crop, matrix)
    for shift in (0, 512):
        x, y = (FACE_CENTRE + np.array([shift, 0])).astype(int)
        patch_now, patch_before = (
            result[y - 5 : y + 5, x - 5 : x + 5],
            pair[y - 5 : y + 5, x - 5 : x + 5],
        )
        assert np.abs(patch_now.astype(int) + patch_before - 255).mean() < 12  # inverted
    assert (result[400:] == pair[400:]).all()  # the suits below are untouched
    assert (result[:, 400:600] == pair[:, 400:600]).all()  # and so is the gap between faces


def test_feathered_edge_has_no_seam() -> None:
    black = np.zeros((300, 300, 3), np.uint8)
    matrix = np.array([[0.8, 0.0, -40.0], [0.0, 0.8, -40.0]])  # a 160 px square at (50, 50)
    white = np.full((128, 128, 3), 255, np.uint8)

    def steepest_step(feather: float) -> int:
        pasted = paste_back(black, white, matrix, feather=feather)[:, :, 0].astype(int)
        return max(np.abs(np.diff(pasted, axis=0)).max(), np.abs(np.diff(pasted, axis=1)).max())

    assert steepest_step(0.0) > 200  # a hard edge jumps
    # Feathered: the edge ramps over 0.1 * 64 crop px = 8 photo px (smoothstep: <= 1.5x).
    assert steepest_step(0.1) < 64
    mask = crop_mask(128, 128, 0.1)
    assert mask[64, 64] == 1 and mask[0].max() == 0 and mask[:, -1].max() == 0


def test_float_crops_follow_the_minus_one_to_one_convention(astronaut, upright_face) -> None:
    crop, matrix = align_face(astronaut, upright_face)
    from_uint8 = paste_back(astronaut, crop, matrix)
    from_float = paste_back(astronaut, crop.astype(np.float32) / 127.5 - 1, matrix)
    assert np.abs(from_uint8.astype(int) - from_float).max() <= 1
    with pytest.raises(UserError, match=r"\[-1, 1\]"):
        paste_back(astronaut, crop.astype(np.float32), matrix)  # 0..255 floats


def test_color_match_pulls_a_tinted_crop_back(astronaut, upright_face) -> None:
    crop, matrix = align_face(astronaut, upright_face, AlignConfig(size=128))
    tinted = (crop.astype(int) + np.array([60, 0, 0])).clip(0, 255).astype(np.uint8)
    plain = paste_back(astronaut, tinted, matrix)
    matched = paste_back(astronaut, tinted, matrix, color_match=True)
    x, y = FACE_CENTRE.astype(int)

    def red_shift(result: np.ndarray) -> float:
        window = (slice(y - 20, y + 20), slice(x - 20, x + 20), 0)
        return float(result[window].mean() - astronaut[window].mean())

    assert red_shift(plain) > 40 and abs(red_shift(matched)) < 10


# --- user errors -----------------------------------------------------------------------


def test_unknown_backend_names_the_value_and_the_choices() -> None:
    with pytest.raises(UserError, match=r"'mtcnn'.*dlib.*yunet.*center"):
        create_detector("mtcnn")


@pytest.mark.parametrize("model_path", [None, Path("/nonexistent/yunet.onnx")])
def test_yunet_without_a_model_file_says_where_to_get_one(model_path) -> None:
    with pytest.raises(UserError, match=r"face_detection_yunet_2023mar\.onnx") as error:
        create_detector("yunet", model_path=model_path)
    assert model_path is None or str(model_path) in str(error.value)


@pytest.mark.parametrize("name", ["dlib", "auto"])
def test_missing_dlib_names_the_extra(monkeypatch, name) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` fail
    with pytest.raises(UserError, match=r'pip install "facefilter\[face\]"'):
        create_detector(name)


def test_bad_images_are_user_errors(detector) -> None:
    with pytest.raises(UserError, match="float64"):
        detector.detect(np.zeros((64, 64, 3)))
    with pytest.raises(UserError, match=r"\(64, 64, 2\)"):
        detector.detect(np.zeros((64, 64, 2), np.uint8))
    with pytest.raises(UserError, match="upsample=7"):
        create_detector("dlib", upsample=7)


def test_yunet_rows_keep_image_left_first_and_scale_back(monkeypatch, tmp_path) -> None:
    """A stand-in for cv2.FaceDetectorYN (no model file here) checks the plumbing."""
    seen: dict[str, object] = {}
    row = np.array([100, 50, 80, 80, 120, 80, 160, 80, 140, 100, 125, 115, 155, 115, 0.9])

    class FakeYuNet:
        def setInputSize(self, size):
            seen["size"] = size

        def detect(self, bgr):
            seen["first_pixel"] = bgr[0, 0].tolist()
            return 1, row[None].astype(np.float32)

    monkeypatch.setattr(cv2.FaceDetectorYN, "create", lambda *args: FakeYuNet(), raising=False)
    model = tmp_path / "yunet.onnx"
    model.write_bytes(b"stand-in")
    image = np.zeros((2400, 3200, 3), np.uint8)
    image[:, :, 0] = 255  # pure red
    [face] = create_detector("yunet", model_path=model, rotations=()).detect(image)
    assert seen == {"size": (1600, 1200), "first_pixel": [0, 0, 255]}  # downscaled, BGR
    # Detected at half size: everything comes back doubled (pixel centres: 2x + 0.5).
    np.testing.assert_allclose(face.landmarks, face_from_yunet(row).landmarks * 2 + 0.5)
    assert face.landmarks[0, 0] < face.landmarks[1, 0]  # image-left eye first
    assert face.score == pytest.approx(0.9)


def test_paste_in_place_matches_a_fresh_copy():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    crop = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    matrix = np.array([[0.5, 0.0, -20.0], [0.0, 0.5, -10.0]])  # image -> crop
    expected = paste_back(image, crop, matrix)
    target = image.copy()
    assert paste_back(target, crop, matrix, in_place=True) is target
    assert np.array_equal(target, expected)
    with pytest.raises(ValueError, match="in_place"):
        paste_back(image[:, :, 0], crop, matrix, in_place=True)


def test_pasting_a_change_keeps_the_photos_own_detail():
    """With `base`, only the change (crop - base) is warped back and added: no change is
    the photo to the bit, and a flat change shifts the photo, its fine texture kept."""
    rng = np.random.default_rng(0)
    image = rng.integers(40, 200, (120, 160, 3), dtype=np.uint8)  # fine noise: detail
    matrix = np.array([[0.25, 0.0, -5.0], [0.0, 0.25, -3.0]])  # image -> a 32 px crop
    crop = np.full((32, 32, 3), 100, np.uint8)  # what the model was given
    assert np.array_equal(paste_back(image, crop, matrix, base=crop), image)
    brighter = crop + 20
    pasted = paste_back(image, brighter, matrix, base=crop, feather=0.0)
    inside = np.abs(pasted.astype(int) - image).sum(-1) > 0
    difference = pasted.astype(int) - image
    core = difference[inside & (np.abs(difference - 20).max(-1) == 0)]
    assert inside.sum() > 1000 and len(core) > 0.8 * inside.sum()  # +20 everywhere it lands
    whole = paste_back(image, brighter, matrix, feather=0.0)  # the crop itself: flat 120
    assert np.std(whole[inside].astype(int)) < np.std(pasted[inside].astype(int)) / 4
