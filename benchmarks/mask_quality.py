"""How well each paste-back mask (`--mask head|ellipse|crop`) fits the head it should
replace, and how much of a real group photo a filter then changes.

A benchmark, run on demand (not a test):

    python benchmarks/mask_quality.py [--faces 64]

1. Synthetic faces, whose true head (face and hair) the renderer knows: each face is
   aligned from its true landmarks as `apply` aligns a photo, the mask is warped back,
   and its IoU with the true head is printed per style, with the share of the face
   (skin) it covers; beside them GrabCut seeded from the head mask, the candidate
   that follows the picture itself.
2. A group collage of the real test photo (scikit-image's astronaut, six faces at three
   sizes, some mirrored), detected with dlib: every face is pasted back through the
   mask with its colours inverted (a filter that changes every pixel it may), and the
   changed area is compared with the detector's face boxes: the goal is at most 2.2
   times their area, at least 90% of each box changed, the corners untouched.
"""

from __future__ import annotations

import argparse

import numpy as np
from skimage import data

from facefilter.data.framing import align_config, synth_framing, synth_landmarks
from facefilter.face import (
    MASKS,
    AlignConfig,
    align_face,
    blend_mask,
    create_detector,
    estimate_similarity,
    invert_affine,
    paste_back,
    template_landmarks,
)
from facefilter.face.arrays import import_cv2
from facefilter.synth import STYLES, render, sample_params
from facefilter.synth.dataset import to_uint8
from facefilter.synth.regions import region_masks

SIZE = 128


def grabcut(image: np.ndarray, head: np.ndarray) -> np.ndarray:
    """The candidate not taken: GrabCut on the photo, seeded from the head mask (its core
    sure face, far outside sure background, the rest probable). (H, W) bool"""
    cv2 = import_cv2()
    kernel = np.ones((9, 9), np.uint8)
    seeds = np.full(head.shape, cv2.GC_PR_BGD, np.uint8)
    seeds[head] = cv2.GC_PR_FGD
    seeds[cv2.erode(head.astype(np.uint8), kernel, iterations=2) > 0] = cv2.GC_FGD
    seeds[cv2.dilate(head.astype(np.uint8), kernel, iterations=2) == 0] = cv2.GC_BGD
    models = (np.zeros((1, 65)), np.zeros((1, 65)))
    cv2.grabCut(np.ascontiguousarray(image[:, :, ::-1]), seeds, None, *models, 3,
                cv2.GC_INIT_WITH_MASK)  # fmt: skip
    return (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)


def synthetic_iou(style: str, count: int) -> dict[str, tuple[float, float]]:
    """mask name -> (mean IoU with the true head, mean share of the face covered)."""
    cv2 = import_cv2()
    params = sample_params(count, seed=7)
    images = to_uint8(render(params, style, SIZE)).permute(0, 2, 3, 1).numpy()
    truth = region_masks(params, style, SIZE, ("head", "face"))
    heads, faces = truth["head"][:, 0].numpy() > 0.5, truth["face"][:, 0].numpy() > 0.5
    points = synth_landmarks(params, style).numpy() * SIZE - 0.5  # (N, 5, 2) pixels
    align = align_config(synth_framing(style), SIZE)
    scores = {}
    for name in (*MASKS, "grabcut"):
        mask = blend_mask("head" if name == "grabcut" else name, align, 0.1)
        ious, covered = [], []
        for image, head, face, landmarks in zip(images, heads, faces, points, strict=True):
            matrix = estimate_similarity(landmarks, template_landmarks(align))
            warped = cv2.warpAffine(mask, invert_affine(matrix), (SIZE, SIZE)) > 0.5
            if name == "grabcut":
                warped = grabcut(image, warped)
            ious.append((warped & head).sum() / max(1, (warped | head).sum()))
            covered.append((warped & face).sum() / max(1, face.sum()))
        scores[name] = (float(np.mean(ious)), float(np.mean(covered)))
    return scores


def group_collage() -> np.ndarray:
    """Six astronauts on a grey wall: 384, 320 and 256 px tall, half of them mirrored."""
    astronaut = data.astronaut()
    cv2 = import_cv2()
    canvas = np.full((720, 1260, 3), 128, np.uint8)
    x = 0
    for index, side in enumerate((384, 320, 256, 384, 320, 256)):
        person = cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_AREA)
        person = person[:, ::-1] if index % 2 else person
        top, left = (0 if index < 3 else 360), x % 1260
        canvas[top : top + side, left : left + side] = person[: min(side, 720 - top)]
        x += 420
    return canvas


def collage_change(photo: np.ndarray, name: str) -> tuple[float, float, bool, int]:
    """(changed area / box area, least share of a box changed, corners untouched, faces)."""
    detector = create_detector("dlib")
    faces = detector.detect(photo)
    align = AlignConfig(size=SIZE, **synth_framing())
    mask = blend_mask(name, align, 0.1)
    result = photo.copy()
    for face in faces:
        crop, matrix = align_face(photo, face, align)
        paste_back(result, 255 - crop, matrix, mask=mask, in_place=True)
    changed = (result != photo).any(axis=2)
    boxes = np.zeros_like(changed)
    shares = []
    for face in faces:
        x0, y0, x1, y1 = (round(v) for v in face.box)
        boxes[max(0, y0) : y1, max(0, x0) : x1] = True
        shares.append(changed[max(0, y0) : y1, max(0, x0) : x1].mean())
    corners = not (changed[:40, :40].any() or changed[-40:, -40:].any())
    return changed.sum() / boxes.sum(), float(min(shares)), corners, len(faces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=64, help="synthetic faces per style")
    args = parser.parse_args()
    print(f"synthetic faces ({args.faces} per style, {SIZE} px): IoU with the true head "
          "(face and hair), and the share of the face covered")  # fmt: skip
    print(f"{'style':>8}  " + "  ".join(f"{name:>16}" for name in (*MASKS, "grabcut")))
    for style in STYLES:
        scores = synthetic_iou(style, args.faces)
        cells = [f"{iou:.2f} IoU {cover:4.0%}" for iou, cover in scores.values()]
        print(f"{style:>8}  " + "  ".join(f"{cell:>16}" for cell in cells))
    photo = group_collage()
    print("group collage (1260x720, six real faces): changed area / face-box area, the least "
          "changed share of a box, corners untouched")  # fmt: skip
    for name in MASKS:
        ratio, least, corners, found = collage_change(photo, name)
        corner = "untouched" if corners else "CHANGED"
        print(f"{name:>8}  {ratio:5.2f}x  {least:4.0%}  corners {corner}  ({found} faces)")


if __name__ == "__main__":
    main()
