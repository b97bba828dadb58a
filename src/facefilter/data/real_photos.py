"""Real photographs of faces that installed packages ship, to try and measure filters on.

None of them may be trained on: they are the project's check that a filter trained on
the built-in faces works on real ones (benchmarks/real_faces.py, `make demo`).

- `astronaut`: NASA's Eileen Collins (scikit-image; public domain), 512x512 colour;
- `grace-hopper`: Rear Admiral Grace Hopper (matplotlib's sample data; US Navy, public
  domain), 512x600 colour;
- `lfw`: the 100 faces of scikit-image's `lfw_subset` (Labeled Faces in the Wild: 100
  different people, 25x25 grey, cut tight from forehead to chin), each enlarged 4x and
  set in a soft grey surround so a detector finds it and a crop has room for the head;
- `group`: a group photo composed of real photos: the astronaut and Grace Hopper beside
  four of the LFW faces, six people in a row of two.

scikit-image is an extra (`pip install scikit-image`); matplotlib is always installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from facefilter.errors import UserError
from facefilter.face.arrays import import_cv2

LFW_SIDE = 100  # an LFW face enlarged 4x: dlib finds 91 of the 100 at this size
LFW_BORDER = 60  # grey surround on each side: room for the hair and the shoulders
GROUP_TILE = (220, 260)  # (width, height) of each person's place in the group photo


def _skimage_data() -> Any:  # the module
    try:
        from skimage import data
    except ImportError:
        raise UserError(
            "the real sample photos come with scikit-image: pip install scikit-image"
        ) from None
    return data


def astronaut() -> np.ndarray:
    return np.asarray(_skimage_data().astronaut(), np.uint8)


def grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB"), np.uint8)


def lfw_faces() -> list[np.ndarray]:
    """The 100 LFW faces, each enlarged and set in a soft surround: (220, 220, 3) uint8."""
    cv2 = import_cv2()
    faces = np.asarray(_skimage_data().lfw_subset()[:100])  # the first 100 are faces
    out = []
    for face in faces:
        grey = (np.clip(face, 0, 1) * 255).round().astype(np.uint8)
        big = cv2.resize(grey, (LFW_SIDE, LFW_SIDE), interpolation=cv2.INTER_CUBIC)
        # a plain surround in the face's own edge tone, faded in: no hard frame for a filter
        edge = np.concatenate([big[0], big[-1], big[:, 0], big[:, -1]]).mean()
        framed = cv2.copyMakeBorder(big, *[LFW_BORDER] * 4, cv2.BORDER_CONSTANT, value=edge)
        inside = np.zeros_like(framed, dtype=np.float32)
        inside[LFW_BORDER + 4 : -LFW_BORDER - 4, LFW_BORDER + 4 : -LFW_BORDER - 4] = 1
        inside = cv2.GaussianBlur(inside, (0, 0), 3)
        mixed = inside * framed + (1 - inside) * edge
        out.append(np.repeat(mixed.round().astype(np.uint8)[:, :, None], 3, axis=2))
    return out


def _tile(image: np.ndarray, centre: tuple[float, float], scale: float) -> np.ndarray:
    """A (GROUP_TILE) cut of `image` around `centre` (x, y), enlarged by `scale`."""
    cv2 = import_cv2()
    width, height = GROUP_TILE
    matrix = np.array([[scale, 0, width / 2 - scale * centre[0]],
                       [0, scale, height / 2 - scale * centre[1]]])  # fmt: skip
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


def group() -> np.ndarray:
    """Six people in two rows of three: (520, 660, 3) uint8."""
    lfw = lfw_faces()
    people = [
        _tile(astronaut(), (230, 215), 0.62),
        _tile(grace_hopper(), (260, 260), 0.5),
        *[_tile(face, (110, 125), 1.0) for face in lfw[:4]],
    ]
    rows = [np.hstack(people[:3]), np.hstack(people[3:])]
    return np.vstack(rows)


REAL_PHOTOS: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "astronaut": (astronaut, "NASA astronaut Eileen Collins (scikit-image), public domain"),
    "grace-hopper": (grace_hopper, "Grace Hopper (matplotlib sample data), public domain"),
    "group": (group, "a group photo composed of the astronaut, Grace Hopper and four LFW faces"),
}
