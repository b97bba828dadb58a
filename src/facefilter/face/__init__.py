"""Faces in real photos: detect, align to a canonical crop, paste a transformed crop back.

Works on numpy uint8 RGB images (H, W, 3) and knows nothing of models. OpenCV and dlib
come with the optional extra: pip install "facefilter[face]".

    detector = create_detector("auto")
    for face in detector.detect(photo):
        crop, matrix = align_face(photo, face, AlignConfig(size=128))
        head = blend_mask("head", AlignConfig(size=128), feather=0.1)
        photo = paste_back(photo, translate(crop), matrix, mask=head)
"""

from facefilter.face.align import align_face
from facefilter.face.detect import DETECTOR_NAMES, DetectorSettings, create_detector
from facefilter.face.geometry import estimate_similarity, invert_affine
from facefilter.face.masks import (
    MASKS,
    blend_mask,
    crop_mask,
    face_mask,
    head_mask,
    placed_head_mask,
)
from facefilter.face.paste import paste_back
from facefilter.face.template import AlignConfig, template_landmarks, unit_template
from facefilter.face.types import Detector, Face

__all__ = [
    "DETECTOR_NAMES",
    "MASKS",
    "AlignConfig",
    "Detector",
    "DetectorSettings",
    "Face",
    "align_face",
    "blend_mask",
    "create_detector",
    "crop_mask",
    "estimate_similarity",
    "face_mask",
    "head_mask",
    "invert_affine",
    "paste_back",
    "placed_head_mask",
    "template_landmarks",
    "unit_template",
]
