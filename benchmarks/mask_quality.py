"""How well each paste-back mask (`--mask head|ellipse|crop`) fits the head it should
replace, and how much of a real group photo a filter then changes.

A benchmark, run on demand (not a test):

    python benchmarks/mask_quality.py [--faces 64]

1. Synthetic faces, whose true head (face and hair) the renderer knows: each face is
   aligned from its true landmarks as `apply` aligns a photo, the mask is warped back,
   and its IoU with the true head is printed per style, with the share of the face
   (skin) it covers; beside them GrabCut seeded from the head mask, the candidate
   that follows the picture itself.
2. Collages of real faces, detected with dlib: every face is pasted back through the
   mask with its colours inverted (a filter that changes every pixel it may), and the
   changed area is compared with the detector's face boxes: the goal is at most 2.2
   times their area, at least 85% of each box changed, the corners untouched. The
   collages: the astronaut six times (three sizes, half mirrored), six turned and tilted
   people composed from the astronaut and Grace Hopper (rolled, mirrored, shifted, and
   turned by a depth-map or a perspective warp), and `real_photos.group()`. The head mask
   is scored both ways: placed from the template's eyes (`blend_mask`, the mask before)
   and from each face's landmarks (`face_mask`, what `apply` uses).
"""

from __future__ import annotations

import argparse

import numpy as np
from skimage import data

from facefilter.data import real_photos
from facefilter.data.framing import align_config, synth_framing, synth_landmarks
from facefilter.face import (
    MASKS,
    AlignConfig,
    Face,
    align_face,
    blend_mask,
    create_detector,
    estimate_similarity,
    invert_affine,
    paste_back,
    template_landmarks,
)
from facefilter.face.arrays import import_cv2
from facefilter.face.geometry import apply_affine
from facefilter.face.masks import face_mask
from facefilter.synth import STYLES, render, sample_params
from facefilter.synth.dataset import to_uint8
from facefilter.synth.regions import region_masks

SIZE = 128
PLACED = "head (placed)"  # the head mask apply pastes: placed from each face's landmarks
SYNTHETIC_MASKS = (PLACED, *MASKS)  # MASKS' `head`: placed from the template's eyes


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
    for name in (*SYNTHETIC_MASKS, "grabcut"):
        mask = blend_mask("head" if name in ("grabcut", PLACED) else name, align, 0.1)
        ious, covered = [], []
        for image, head, face, landmarks in zip(images, heads, faces, points, strict=True):
            matrix = estimate_similarity(landmarks, template_landmarks(align))
            if name == PLACED:  # what apply pastes: the egg placed from this face's points
                mask = face_mask("head", align, 0.1, apply_affine(matrix, landmarks))
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


# Turned people composed from the real photos: (photo, mirrored, yaw kind, yaw degrees,
# roll degrees, scale, shift (x, y) of the face from its tile's middle). A yaw is
# simulated by a "depth" remap (`depth_yaw`: the head a cylinder with a nose ridge,
# turned: the eyes close up, the nose moves off their midline, the far side hides) or
# a "plane" perspective warp (`plane_yaw`: the photo turned about a vertical axis).
TURNED = (
    ("astronaut", False, "depth", 35, 25, 1.4, (0, 10)),
    ("grace_hopper", True, "depth", 0, -25, 0.7, (-40, 0)),
    ("astronaut", True, "plane", 40, 0, 1.3, (30, -10)),
    ("grace_hopper", False, "depth", -35, 0, 0.75, (0, 20)),
    ("astronaut", False, "depth", -45, -20, 1.2, (-30, 0)),
    ("grace_hopper", True, "plane", 35, 20, 0.65, (40, -20)),
)
# Where each photo's face is (dlib: eye midpoint x, eye line y, eye distance), upright.
FACE_AT = {"astronaut": (225.0, 103.0, 43.0, 135.0), "grace_hopper": (264.0, 192.0, 85.0, 252.0)}
TILE = (420, 360)  # (width, height) of each person's place: 3 x 2 on a 1260 x 720 wall


def depth_yaw(image: np.ndarray, degrees: float, face: tuple[float, float, float, float]
              ) -> np.ndarray:  # fmt: skip
    """Turn a frontal face by `degrees` about a vertical axis (positive: the nose moves
    right) with a depth map: the head a vertical cylinder 1.5 eye distances round the axis
    through the eye midpoint, the nose a ridge 0.35 eye distances high from the eye line
    to its tip, the rest (neck, body, wall)
    flat at the axis. Orthographic: a point at depth z moves
    z * sin(turn) sideways and its offset from the axis shrinks by cos(turn); what turns
    behind nearer parts is hidden, the back of the head comes round at the edge.
    `face`: (eye midpoint x, eye line y, eye distance, nose y) in pixels."""
    cv2 = import_cv2()
    height, width = image.shape[:2]
    centre_x, eye_y, eyes, nose_y = face
    if degrees < 0:  # the mirror image turned the other way
        mirrored = (width - 1 - centre_x, eye_y, eyes, nose_y)
        return depth_yaw(np.ascontiguousarray(image[:, ::-1]), -degrees, mirrored)[:, ::-1]
    turn = np.radians(degrees)
    x = np.arange(width, dtype=np.float64)[None, :] - centre_x  # (1, W) from the axis
    y = np.arange(height, dtype=np.float64)[:, None]  # (H, 1)
    radius = 1.5 * eyes
    # (H, W): only the head is round, from the hair's top to the chin, fading out in between
    head_rows = np.clip((2.4 * eyes - np.abs(y - eye_y)) / (0.6 * eyes), 0, 1)
    depth = np.sqrt(np.clip(radius**2 - x**2, 0, None)) * head_rows
    ridge = np.exp(-0.5 * (x / (0.25 * eyes)) ** 2) * ((y > eye_y) & (y < nose_y + 0.2 * eyes))
    depth = depth + 0.35 * eyes * ridge * np.clip((y - eye_y) / (nose_y - eye_y), 0, 1)
    seen = x * np.cos(turn) + depth * np.sin(turn)  # (H, W) where each pixel lands
    front = seen >= np.maximum.accumulate(seen, axis=1)  # not hidden behind a nearer part
    map_x = np.empty((height, width), np.float32)
    for row in range(height):  # each output pixel shows the source pixel that lands there
        map_x[row] = np.interp(x[0], seen[row][front[row]], x[0][front[row]]) + centre_x
    map_y = np.repeat(np.arange(height, dtype=np.float32)[:, None], width, axis=1)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def plane_yaw(image: np.ndarray, degrees: float, centre_x: float) -> np.ndarray:
    """The photo as a plane turned by `degrees` about the vertical line x = `centre_x`,
    seen from 1.5 widths away: one side shrinks in both directions."""
    cv2 = import_cv2()
    height, width = image.shape[:2]
    focal, turn = 1.5 * width, np.radians(degrees)

    def seen(x: float, y: float) -> tuple[float, float]:
        depth = focal + (x - centre_x) * np.sin(turn)
        return (centre_x + focal * (x - centre_x) * np.cos(turn) / depth,
                height / 2 + focal * (y - height / 2) / depth)  # fmt: skip

    corners = np.float32([[0, 0], [width, 0], [0, height], [width, height]])
    matrix = cv2.getPerspectiveTransform(corners, np.float32([seen(*c) for c in corners]))
    return cv2.warpPerspective(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


def turned_person(name: str, mirrored: bool, kind: str, yaw: float, roll: float,
                  scale: float, shift: tuple[int, int]) -> np.ndarray:  # fmt: skip
    """One TURNED entry: the photo mirrored, turned, rolled and scaled into a tile."""
    cv2 = import_cv2()
    photo = getattr(real_photos, name)()
    x, y, eyes, nose_y = FACE_AT[name]
    if mirrored:
        photo, x = np.ascontiguousarray(photo[:, ::-1]), photo.shape[1] - 1 - x
    if kind == "depth" and yaw:
        photo = depth_yaw(photo, yaw, (x, y, eyes, nose_y))
    elif kind == "plane":
        photo = plane_yaw(photo, yaw, x)
    matrix = cv2.getRotationMatrix2D((x, y), roll, scale)  # counter-clockwise roll
    matrix[:, 2] += [TILE[0] / 2 + shift[0] - x, TILE[1] / 2 + shift[1] - y]
    return cv2.warpAffine(photo, matrix, TILE, flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


def turned_collage() -> np.ndarray:
    """The six TURNED people, three a row: (720, 1260, 3) uint8."""
    tiles = [turned_person(*entry) for entry in TURNED]
    return np.vstack([np.hstack(tiles[:3]), np.hstack(tiles[3:])])


def collage_change(photo: np.ndarray, faces: list[Face], name: str, placed: bool
                   ) -> tuple[float, list[float], bool]:  # fmt: skip
    """(changed area / box area, each box's changed share, corners untouched) when every
    face is pasted with its colours inverted through mask `name`: `head` placed from each
    face's landmarks when `placed`, else from the template's eyes (the mask before)."""
    align = AlignConfig(size=SIZE, **synth_framing())
    result = photo.copy()
    for face in faces:
        crop, matrix = align_face(photo, face, align)
        landmarks = apply_affine(matrix, face.landmarks) if placed else None
        mask = face_mask(name, align, 0.1, landmarks)
        paste_back(result, 255 - crop, matrix, mask=mask, in_place=True)
    changed = (result != photo).any(axis=2)
    boxes = np.zeros_like(changed)
    shares = []
    for face in faces:
        x0, y0, x1, y1 = (max(0, round(v)) for v in face.box)
        boxes[y0:y1, x0:x1] = True
        shares.append(float(changed[y0:y1, x0:x1].mean()))
    corners = not (changed[:40, :40].any() or changed[-40:, -40:].any())
    return changed.sum() / boxes.sum(), shares, corners


def print_collages() -> None:
    """The table: each collage, each mask, the goals (<= 2.2x, every box >= 85%)."""
    detector = create_detector("dlib")
    collages = {"astronauts": group_collage(), "turned": turned_collage(),
                "real_photos.group": real_photos.group()}  # fmt: skip
    print("collages: every face pasted with its colours inverted; changed area / face-box area "
          "(goal <= 2.2x), each box's changed share (goal >= 85%), corners untouched")  # fmt: skip
    print(f"{'collage':>18} {'mask':>13} {'faces':>5} {'area':>6} {'least':>6}  corners    "
          "each box")  # fmt: skip
    for title, photo in collages.items():
        faces = detector.detect(photo)
        rows = [("head (eyes)", "head", False), ("head (placed)", "head", True)]
        if title == "astronauts":
            rows += [("ellipse", "ellipse", False), ("crop", "crop", False)]
        for label, name, placed in rows:
            ratio, shares, corners = collage_change(photo, faces, name, placed)
            each = " ".join(f"{share:4.0%}" for share in shares)
            print(f"{title:>18} {label:>13} {len(faces):>5} {ratio:5.2f}x {min(shares):>6.0%}  "
                  f"{'untouched' if corners else 'CHANGED':<9}  {each}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=64, help="synthetic faces per style")
    parser.add_argument("--collages-only", action="store_true", help="skip the synthetic faces")
    args = parser.parse_args()
    if args.collages_only:
        print_collages()
        return
    print(f"synthetic faces ({args.faces} per style, {SIZE} px): IoU with the true head "
          "(face and hair), and the share of the face covered")  # fmt: skip
    print(f"{'style':>8}  " + "  ".join(f"{name:>16}" for name in (*SYNTHETIC_MASKS, "grabcut")))
    for style in STYLES:
        scores = synthetic_iou(style, args.faces)
        cells = [f"{iou:.2f} IoU {cover:4.0%}" for iou, cover in scores.values()]
        print(f"{style:>8}  " + "  ".join(f"{cell:>16}" for cell in cells))
    print_collages()


if __name__ == "__main__":
    main()
