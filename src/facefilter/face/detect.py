"""Find faces and their 5 landmarks in RGB photos.

Backends (`create_detector(name)`):
- `dlib`: dlib's HOG frontal-face detector (built in, no model file) plus the public-domain
  5-point landmark model shipped by the `face_recognition_models` package.
- `yunet`: OpenCV's `FaceDetectorYN` with a YuNet ONNX file you download yourself.
- `center`: no detection; the centre square of the image, for photos that are already crops.
- `auto`: dlib when it is installed.

Every backend runs behind the same wrapper, which (1) accepts gray or RGBA uint8 input,
(2) detects on a copy whose long side is at most `max_side` pixels, so a 12000x9000 photo
costs about what a 1600x1200 one does, and (3) also searches
the image rotated by each angle in `rotations` (roll: HOG only finds faces within about
+-15 degrees of upright). Every photo gets all 1 + len(rotations) passes, since one
upright face says nothing about the others; the rotated ones run on a copy of at most
ROLL_MAX_SIDE pixels, and a face found at two angles is kept once. Video passes
`rotations=()` to skip them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facefilter.errors import UserError
from facefilter.face.arrays import as_rgb_uint8, check_image, import_cv2
from facefilter.face.geometry import (
    affine_scale,
    apply_affine,
    compose_affine,
    invert_affine,
    shrink,
)
from facefilter.face.template import MOUTH_DROP, MOUTH_WIDTH, unit_template
from facefilter.face.types import Detector, Face, FacePass

DETECTOR_NAMES = ("auto", "dlib", "yunet", "center")
DEFAULT_MAX_SIDE = 1600  # long side of the copy detection runs on
DEFAULT_ROTATIONS = (-30.0, 30.0, 90.0, -90.0, 180.0)  # degrees, searched after upright
ROLL_MAX_SIDE = 800  # rotated passes search at most this size: 5 more passes stay cheap
YUNET_SOURCE = (
    "download face_detection_yunet_2023mar.onnx from the OpenCV model zoo "
    "(github.com/opencv/opencv_zoo, models/face_detection_yunet)"
)
FACE_EXTRA_HINT = 'pip install "facefilter[face]"'


def map_face(face: Face, matrix: np.ndarray, box_size: tuple[float, float]) -> Face:
    """Move a face through a (2, 3) affine map; the box keeps its centre and `box_size`."""
    x0, y0, x1, y1 = face.box
    centre = apply_affine(matrix, np.array([[(x0 + x1) / 2, (y0 + y1) / 2]]))[0]
    cx, cy = float(centre[0]), float(centre[1])
    half_w, half_h = box_size[0] / 2, box_size[1] / 2
    box = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    return Face(box=box, landmarks=apply_affine(matrix, face.landmarks), score=face.score)


class RobustDetector:
    """Runs a backend pass with the downscaling and roll retries every backend needs."""

    def __init__(self, face_pass: FacePass, *, max_side: int, rotations: Sequence[float]):
        if max_side < 64:
            raise UserError(f"max_side={max_side} is too small to find faces; use 640 or more")
        self.face_pass = face_pass
        self.max_side = max_side
        self.rotations = tuple(rotations)

    def detect(self, image: np.ndarray) -> list[Face]:
        image = np.asarray(image)
        check_image(image)  # before anything copies a possibly huge image
        small, to_image = downscale(image, self.max_side)
        small = as_rgb_uint8(small)  # gray -> RGB after shrinking: 3 copies of less
        faces = self.detect_any_roll(small)
        scale = affine_scale(to_image)
        return [map_face(f, to_image, _box_size(f, scale)) for f in faces]

    def detect_any_roll(self, image: np.ndarray) -> list[Face]:
        """Upright, then at every rotation (a group photo may hold an upright face and a
        rolled one), mapped back; a face found again at another angle is kept once, as
        first found. Rotated passes search a copy of at most ROLL_MAX_SIDE pixels."""
        faces = self.face_pass(image)
        if not self.rotations:
            return faces
        small, to_image = downscale(image, ROLL_MAX_SIDE)
        scale = affine_scale(to_image)
        for angle in self.rotations:
            rotated, to_rotated = rotate_expanded(small, angle)
            quarter_turn = abs(np.sin(np.radians(angle))) > abs(np.cos(np.radians(angle)))
            back = compose_affine(to_image, invert_affine(to_rotated))
            for face in self.face_pass(rotated):
                width, height = _box_size(face, scale)
                found = map_face(face, back, (height, width) if quarter_turn else (width, height))
                if not any(same_face(found, kept) for kept in faces):
                    faces.append(found)
        return faces


def same_face(a: Face, b: Face) -> bool:
    """Whether two detections are one face: eye midpoints closer than half an eye distance."""
    middle_a, middle_b = a.landmarks[:2].mean(0), b.landmarks[:2].mean(0)
    eyes = max(np.linalg.norm(a.landmarks[1] - a.landmarks[0]),
               np.linalg.norm(b.landmarks[1] - b.landmarks[0]))  # fmt: skip
    return bool(np.linalg.norm(middle_a - middle_b) < 0.5 * eyes)


def _box_size(face: Face, scale: float) -> tuple[float, float]:
    x0, y0, x1, y1 = face.box
    return (x1 - x0) * scale, (y1 - y0) * scale


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Shrink so the long side is at most `max_side`. Returns (small, small->image (2, 3))."""
    factor = max_side / max(image.shape[:2])
    if factor >= 1:
        return image, np.array([[1.0, 0, 0], [0, 1.0, 0]])
    return shrink(image, factor)


def rotate_expanded(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate counter-clockwise by `angle` degrees on a canvas that keeps every pixel.

    Returns (rotated image, image->rotated (2, 3)).
    """
    cv2 = import_cv2()
    height, width = image.shape[:2]
    cos, sin = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
    new_w = round(width * cos + height * sin)
    new_h = round(width * sin + height * cos)
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, 1.0)
    matrix[:, 2] += [(new_w - width) / 2, (new_h - height) / 2]  # recentre on the new canvas
    rotated = cv2.warpAffine(
        image, matrix, (new_w, new_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return rotated, matrix


def create_detector(
    name: str,
    *,
    model_path: Path | None = None,
    upsample: int = 1,
    max_side: int = DEFAULT_MAX_SIDE,
    rotations: Sequence[float] = DEFAULT_ROTATIONS,
    min_score: float | None = None,
) -> Detector:
    """A detector by name: one of DETECTOR_NAMES.

    upsample: dlib's pyramid upsampling (1 finds faces down to ~40 px, at ~4x the cost).
    min_score: drop weaker detections (default dlib 0.3, YuNet 0.7).
    """
    if name not in DETECTOR_NAMES:
        raise UserError(
            f"unknown face detector {name!r}; choose one of {', '.join(DETECTOR_NAMES)}"
        )
    if name == "center":
        return CenterDetector()
    if name == "yunet":
        face_pass = yunet_pass(model_path, 0.7 if min_score is None else min_score)
    else:
        if not 0 <= upsample <= 3:
            raise UserError(f"upsample={upsample} must be 0, 1, 2 or 3")
        face_pass = dlib_pass(
            upsample, 0.3 if min_score is None else min_score, auto=name == "auto"
        )
    return RobustDetector(face_pass, max_side=max_side, rotations=rotations)


class CenterDetector:
    """The centre square of the image, landmarks where the default template puts them."""

    def detect(self, image: np.ndarray) -> list[Face]:
        image = np.asarray(image)
        check_image(image)  # same input checks as the real backends
        height, width = image.shape[:2]
        side = min(height, width)
        x0, y0 = (width - side) / 2, (height - side) / 2
        landmarks = unit_template() * side + [x0 - 0.5, y0 - 0.5]  # unit square -> pixels
        return [Face(box=(x0, y0, x0 + side, y0 + side), landmarks=landmarks, score=1.0)]


def _import_dlib(auto: bool) -> tuple[Any, Path]:
    """dlib and the 5-point model file, or a UserError naming the extra to install."""
    try:
        import dlib
    except ImportError as error:
        if auto:
            raise UserError(
                f"no face detector available for 'auto' (it needs dlib): {FACE_EXTRA_HINT}, "
                "or use 'yunet' with a model file, or 'center' for photos that are crops"
            ) from error
        raise UserError(f"the dlib face detector is not installed: {FACE_EXTRA_HINT}") from error
    return dlib, dlib_model_file("shape_predictor_5_face_landmarks.dat")


def dlib_model_file(name: str) -> Path:
    """A model file the `face_recognition_models` package ships (landmarks, descriptors)."""
    # Locate the package without importing it: its __init__ needs pkg_resources, which
    # recent setuptools no longer ships; the model file is all we need.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"face_recognition_models (dlib's landmark model) is missing: {FACE_EXTRA_HINT}"
        )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    model = package_dir / "models" / name
    if not model.is_file():
        raise UserError(f"dlib model {model} is missing: reinstall with {FACE_EXTRA_HINT}")
    return model


def dlib_pass(upsample: int, min_score: float, *, auto: bool = False) -> FacePass:
    dlib, model = _import_dlib(auto)
    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model))

    def face_pass(image: np.ndarray) -> list[Face]:
        rects, scores, _ = hog.run(image, upsample, min_score)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            parts = predictor(image, rect).parts()
            points = np.array([[p.x, p.y] for p in parts], np.float64)  # (5, 2)
            box = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
            faces.append(Face(box=box, landmarks=five_from_dlib(points), score=float(score)))
        return faces

    return face_pass


def five_from_dlib(points: np.ndarray) -> np.ndarray:
    """dlib's 5 points -> our 5 landmarks. (5, 2)

    dlib gives the outer and inner corner of the eye on the image right (0, 1), of the
    eye on the image left (2, 3), and the point under the nose (4). The eye centres are
    the corner means and the nose tip is point 4. dlib has no mouth, so the corners are
    estimated with the mean-face ratios of `template.py`: MOUTH_DROP eye distances below the
    eye line, MOUTH_WIDTH eye distances apart, shifted sideways with the nose (head yaw).
    """
    left_eye, right_eye, nose = points[2:4].mean(0), points[0:2].mean(0), points[4]
    eye_vector = right_eye - left_eye
    eye_distance = float(np.linalg.norm(eye_vector))
    across = eye_vector / max(eye_distance, 1e-6)  # unit vector from left eye to right eye
    down = np.array([-across[1], across[0]])  # across turned 90 degrees towards the chin
    eye_mid = (left_eye + right_eye) / 2
    yaw_shift = float(np.dot(nose - eye_mid, across))
    mouth_mid = eye_mid + yaw_shift * across + MOUTH_DROP * eye_distance * down
    half_mouth = MOUTH_WIDTH * eye_distance / 2 * across
    return np.stack([left_eye, right_eye, nose, mouth_mid - half_mouth, mouth_mid + half_mouth])


def yunet_pass(model_path: Path | None, min_score: float) -> FacePass:
    if model_path is None:
        raise UserError(f"the yunet detector needs --yunet-model PATH; {YUNET_SOURCE}")
    model_path = Path(model_path)
    if not model_path.is_file():
        raise UserError(f"YuNet model {model_path} does not exist; {YUNET_SOURCE}")
    cv2 = import_cv2()
    try:
        net = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), min_score, 0.3, 5000)
    except cv2.error as error:
        raise UserError(
            f"YuNet model {model_path} is not a loadable ONNX file; {YUNET_SOURCE}"
        ) from error

    def face_pass(image: np.ndarray) -> list[Face]:
        net.setInputSize((image.shape[1], image.shape[0]))
        _, rows = net.detect(np.ascontiguousarray(image[:, :, ::-1]))  # YuNet wants BGR
        return [] if rows is None else [face_from_yunet(row) for row in rows]

    return face_pass


def face_from_yunet(row: np.ndarray) -> Face:
    """One YuNet output row (15,): x, y, w, h, 5 landmarks, score.

    YuNet names its landmarks from the subject's view: right eye, left eye, nose tip,
    right mouth corner, left mouth corner. The subject's right is the image's left, so
    this is already our order (OpenCV's FaceRecognizerSF.alignCrop maps them the same
    way onto the ArcFace template, whose first point is the image-left eye).
    """
    x, y, w, h = (float(v) for v in row[:4])
    landmarks = np.asarray(row[4:14], np.float64).reshape(5, 2)
    return Face(box=(x, y, x + w, y + h), landmarks=landmarks, score=float(row[14]))


@dataclass(frozen=True)
class DetectorSettings:
    """Which detector finds the faces: the flags of every command that finds faces."""

    detector: str = "auto"  # face detector: auto, dlib, yunet (needs --yunet-model) or center
    yunet_model: Path | None = None  # face_detection_yunet_2023mar.onnx for --detector yunet
    upsample: int = 1  # dlib: 1 finds faces down to ~40 px; 0 is 4x faster (video)

    def create(self, *, video: bool = False) -> Detector:
        """The detector; for video without the rotated retries (they cost too much a frame)."""
        return create_detector(self.detector, model_path=self.yunet_model,
                               upsample=self.upsample,
                               rotations=() if video else DEFAULT_ROTATIONS)  # fmt: skip
