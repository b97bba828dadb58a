"""Is it still the same person? dlib's face-recognition ResNet on aligned face crops.

dlib's 128-d descriptor (`dlib_face_recognition_resnet_model_v1.dat`, public domain,
shipped by `face_recognition_models` with the landmark model) puts two photos of one
person closer than 0.6 apart, and two people farther, 99.38% of the time on LFW. Here it
compares each input face with its filtered self: the share of pairs under 0.6 is the
share that dlib still takes for the same person. It was trained on photos, so on drawn
styles (anime, cartoon) distances grow for reasons other than identity.

Crops are aligned already, so the landmarks are found inside the box where the framing
puts the face (2.1 eye distances square, centred 0.41 below the eye midpoint: dlib's
own HOG box on a frontal face), the same box for a face and its output.
"""

from __future__ import annotations

import numpy as np

from facefilter.face.arrays import import_cv2
from facefilter.face.detect import _import_dlib, dlib_model_file
from facefilter.face.template import AlignConfig, template_landmarks

SAME_PERSON = 0.6  # dlib's threshold for "the same person"
# On small, grey or drawn faces dlib's 0.6 can match different people too (0.46 of pairs of
# synthetic photo faces): the strict threshold is the distance only this share of
# different inputs reach, on the faces at hand.
STRICT_FALSE_MATCH = 0.05
CHIP_SIDE = 200  # crops are enlarged to about this before landmarks and descriptor
BOX_SIDE, BOX_DROP = 2.1, 0.41  # dlib's HOG box, in eye distances (measured on frontal faces)


class FaceDescriber:
    """128-d dlib descriptors of aligned face crops."""

    def __init__(self) -> None:
        self.dlib, landmarks = _import_dlib(auto=False)
        self.predictor = self.dlib.shape_predictor(str(landmarks))
        model = dlib_model_file("dlib_face_recognition_resnet_model_v1.dat")
        self.network = self.dlib.face_recognition_model_v1(str(model))

    def describe(self, crop: np.ndarray, align: AlignConfig) -> np.ndarray:
        """(H, W, 3) uint8 crop framed as `align` says -> (128,) float descriptor."""
        factor = max(1.0, CHIP_SIDE / max(crop.shape[:2]))
        if factor > 1:
            height, width = crop.shape[:2]
            size = (round(width * factor), round(height * factor))
            crop = import_cv2().resize(crop, size, interpolation=import_cv2().INTER_CUBIC)
        points = (template_landmarks(align) + 0.5) * factor - 0.5  # (5, 2) in the enlarged crop
        eyes = points[:2]
        distance = float(np.linalg.norm(eyes[1] - eyes[0]))
        cx, cy = eyes.mean(0) + np.array([0.0, BOX_DROP * distance])
        half = BOX_SIDE * distance / 2
        box = self.dlib.rectangle(round(cx - half), round(cy - half),
                                  round(cx + half), round(cy + half))  # fmt: skip
        image = np.ascontiguousarray(crop)
        shape = self.predictor(image, box)
        return np.asarray(self.network.compute_face_descriptor(image, shape), np.float64)

    def describe_all(self, crops: list[np.ndarray], align: AlignConfig) -> np.ndarray:
        """(N, 128) descriptors of N crops."""
        return np.stack([self.describe(crop, align) for crop in crops]) if crops else (
            np.zeros((0, 128)))  # fmt: skip


def identity_summary(inputs: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    """How far each output's descriptor lies from its own input's, (N, 128) each: the
    median and quartiles, the share dlib takes for the same person (< 0.6), the share
    nearer their own input than any other (top-1), and, for scale, the share of pairs of
    *different* inputs it takes for one person (what < 0.6 means on these faces)."""
    own = np.linalg.norm(outputs - inputs, axis=1)  # (N,)
    across = np.linalg.norm(outputs[:, None] - inputs[None], axis=-1)  # (N, N)
    pairs = np.triu_indices(len(inputs), 1)
    between = np.linalg.norm(inputs[:, None] - inputs[None], axis=-1)[pairs]  # (N (N - 1) / 2,)
    others = across + np.diag(np.full(len(own), np.inf))  # each output's distance to others
    nan = float("nan")
    return {
        "median": float(np.median(own)),
        "q25": float(np.quantile(own, 0.25)),
        "q75": float(np.quantile(own, 0.75)),
        "same_person": float((own < SAME_PERSON).mean()),
        "top1": float((own < others.min(1)).mean()) if len(own) > 1 else nan,
        "different_inputs_same_person": float((between < SAME_PERSON).mean())
        if len(pairs[0])
        else nan,
        "count": len(own),
    } | _strict(own, between)


def _strict(own: np.ndarray, between: np.ndarray) -> dict[str, float]:
    """The share of outputs nearer their input than the distance STRICT_FALSE_MATCH of
    different inputs' pairs reach: "the same person" calibrated on these faces."""
    if len(between) < 1 / STRICT_FALSE_MATCH:  # too few pairs to place the quantile
        return {}
    threshold = float(np.quantile(between, STRICT_FALSE_MATCH))
    return {"strict_threshold": threshold, "same_person_strict": float((own < threshold).mean())}
