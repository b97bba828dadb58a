"""`PhotoFilter`: a `Filter` applied to whole photos. Knows nothing of training or files.

    photo_filter(image, request, faces=..., found=...) -> Translated
    photo -> detect faces (or take those already found) -> align each to the training framing
          -> translate (all faces in one batch per target) -> inverse warp -> feathered paste

This call is the one implementation of detect -> translate -> paste: files, video and
the webcam, the web demo and the edit GIFs all make it, with the per-call options
(which faces; faces already found by a tracker or an earlier frame), and read what was
found from its result. `locate` is the decision it starts with, shared with `data label`:
a photo with no face found is either refused (`detect="always"`) or, when it is small
enough to be a ready face crop (at most twice the model's size per side), taken whole
(`detect="auto"`); `detect="never"` always takes the centre square whole.
Files and folders: `inference.files`; video and webcam: `inference.video`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from facefilter.errors import UserError
from facefilter.face import (
    AlignConfig,
    Detector,
    DetectorSettings,
    Face,
    align_face,
    paste_back,
)
from facefilter.face.arrays import as_rgb_uint8
from facefilter.face.detect import map_face, same_face
from facefilter.face.geometry import apply_affine
from facefilter.face.masks import MASKS, MaskName, check_feather, face_mask
from facefilter.face.overlay import draw_overlay
from facefilter.inference.filter import Filter, check_strength
from facefilter.models.targets import Direction
from facefilter.sizes import ImageSize

DetectMode = Literal["auto", "always", "never"]
FacesMode = Literal["all", "largest"]
WHOLE_IMAGE_FACTOR = 2  # `auto`: an image this many times the model size or less may be a crop
NEAR_REACH = 0.8  # video: a face is searched for within this many box sides of where it was


class NoFaceError(UserError):
    """A photo in which no face was found (a per-file failure, not a usage error)."""


@dataclass(frozen=True)
class Request:
    """What to do to each face: the directions (several for `--to all`) and the strength."""

    directions: tuple[Direction, ...]
    strength: float = 1.0
    name: str = ""  # what was asked for (`anime`, `all`, `+Smiling_-Bangs`): names outputs

    @classmethod
    def of(
        cls, filter: Filter, to: str | None = None, edits: Sequence[str] = (),
        source: str | None = None, strength: float = 1.0,
    ) -> Request:  # fmt: skip
        """What `--to TARGET` (or `all`) or `--edit +A --edit -B` (applied together) ask of
        `filter`; neither: the one target of a one-way model (makeover)."""
        assert to is None or not edits, "a target or edits, not both"
        if edits:
            direction = filter.combine(edits)
            return cls((direction,), strength, "_".join(str(t) for t in direction.targets))
        target = filter.target_or_only(to)
        return cls(tuple(filter.expand(target, source)), strength, target)

    def __post_init__(self) -> None:
        if not self.directions:
            raise UserError("no target to translate to; check --to and --from")
        check_strength(self.strength)

    @property
    def targets(self) -> list[str]:
        """Every target asked for, once each (`--to all`: all of them; edits with amounts)."""
        return list(dict.fromkeys(str(t) for d in self.directions for t in d.targets))


@dataclass(frozen=True)
class FaceOptions:
    """How faces are found in a photo and pasted back (the flags of `apply`)."""

    detect: DetectMode = "auto"  # auto: small images with no face are crops; always; never
    faces: FacesMode = "all"  # which faces of a photo to filter
    feather: float = 0.1  # width of the blend at the mask's edge (fraction of the crop)
    mask: MaskName = "head"  # pasted back: head (face + hair), ellipse or the whole crop
    debug_overlay: bool = False  # draw each face's box, landmarks and mask outline
    blend: Literal["feather", "poisson"] = "feather"  # poisson: colours meet at the seam (slower)
    color_match: bool = False  # match the crop's colours to the photo's (off: filters recolour)
    margin: float | None = None  # override the run's framing: extra border, fraction of the crop
    eye_height: float | None = None  # override the run's framing: eye line from the top
    eye_distance: float | None = None  # override the run's framing: eyes apart


@dataclass
class Translated:
    """One photo after the filter.

    photos: per direction, the whole result ((H, W, 3) pasted photo, or the (S, S, 3)
    translation when the image was taken whole). crops: the aligned input crops
    (S, S, 3). outputs: per direction, per crop, the translated crop.
    """

    image: np.ndarray  # the input photo (H, W, 3)
    photos: list[np.ndarray]
    crops: list[np.ndarray]
    outputs: list[list[np.ndarray]]
    faces: list[Face]  # the faces filtered, the largest first
    whole: bool  # no face: the image was taken whole, as a face crop
    found: int = 0  # faces found in all (more than `faces` when only the largest was filtered)


@dataclass(frozen=True)
class Located:
    """Where a photo's faces are: those to work on, how many were found, or none (whole)."""

    faces: list[Face]  # the largest first; only the largest with faces="largest"
    found: int  # faces found in all
    whole: bool  # no face to work on: take the image whole, as a ready face crop


def locate(
    image: np.ndarray, detector: Detector | None, side: int, *, detect: DetectMode = "auto",
    faces: FacesMode = "all", found: Sequence[Face] | None = None, name: str = "image",
) -> Located:  # fmt: skip
    """The faces of `image` (H, W, 3) to work on, for a model of `side` pixels: searched
    with `detector`, or `found` already (sorted here). With none, `detect="never"` and, for
    an image small enough to be a face crop, "auto" take it whole; else NoFaceError."""
    if detect == "never":
        return Located([], 0, whole=True)
    if found is None:
        found = detector.detect(image) if detector is not None else []
    ordered = sorted(found, key=lambda face: face.area, reverse=True)
    if ordered:
        return Located(ordered[:1] if faces == "largest" else ordered, len(ordered), whole=False)
    height, width = image.shape[:2]
    if detect == "auto" and max(height, width) <= WHOLE_IMAGE_FACTOR * side:
        return Located([], 0, whole=True)
    raise NoFaceError(
        f"{name}: no face found in this {width}x{height} image; if it is a face crop, "
        "use --detect never to translate it whole"
    )


class PhotoFilter:
    """Detect, align, translate and paste back the faces of a photo, with one `Filter`."""

    def __init__(
        self, filter: Filter, detector: Detector | None, options: FaceOptions = FaceOptions()
    ) -> None:
        if options.detect not in ("auto", "always", "never"):
            raise UserError(f"--detect {options.detect!r}: choose auto, always or never")
        if options.mask not in MASKS:
            raise UserError(f"--mask {options.mask!r}: choose {', '.join(MASKS)}")
        check_feather(options.feather)
        if options.blend not in ("feather", "poisson"):
            raise UserError(f"--blend {options.blend!r}: choose feather or poisson")
        if options.detect != "never" and detector is None:
            raise UserError(f"--detect {options.detect} needs a face detector")
        self.filter = filter
        self.size = filter.size
        self.overrides: dict[str, float | None] = {
            "margin": options.margin, "eye_height": options.eye_height,
            "eye_distance": options.eye_distance,
        }  # fmt: skip
        self.align = filter.align_config(None, **self.overrides)  # faces of no named domain
        self.aligns: dict[str | None, AlignConfig] = {None: self.align}
        self.detector = detector
        self.options = options

    @classmethod
    def build(
        cls, filter: Filter, detection: DetectorSettings, options: FaceOptions = FaceOptions(),
        *, video: bool = False,
    ) -> PhotoFilter:  # fmt: skip
        """A photo filter with a detector of its own (none under `detect="never"`)."""
        detector = None if options.detect == "never" else detection.create(video=video)
        return cls(filter, detector, options)

    @property
    def detects(self) -> bool:
        """False when every image is translated whole (`--detect never`)."""
        return self.options.detect != "never"

    def find_faces(self, image: np.ndarray) -> list[Face]:
        """Faces in `image`, the largest first (only it with faces='largest'): what a video
        tracker searches the whole frame with."""
        if self.detector is None:
            return []
        faces = sorted(self.detector.detect(image), key=lambda face: face.area, reverse=True)
        return faces[:1] if self.options.faces == "largest" else faces

    def find_faces_near(self, image: np.ndarray, faces: Sequence[Face]) -> list[Face]:
        """Faces in regions round `faces`' boxes (2 * NEAR_REACH box sides across; video:
        where they were a few frames ago), the largest first; far cheaper than searching
        the whole image."""
        if self.detector is None:
            return []
        height, width = image.shape[:2]
        found: list[Face] = []
        for face in faces:
            x0, y0, x1, y1 = face.box
            reach = NEAR_REACH * max(x1 - x0, y1 - y0)  # round the centre: room to move
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            left, top = max(0, int(cx - reach)), max(0, int(cy - reach))
            right, bottom = min(width, int(cx + reach)), min(height, int(cy + reach))
            if right - left < 16 or bottom - top < 16:
                continue  # the face has left the frame
            region = np.ascontiguousarray(image[top:bottom, left:right])
            to_image = np.array([[1.0, 0.0, left], [0.0, 1.0, top]])
            for near in self.detector.detect(region):
                size = (near.box[2] - near.box[0], near.box[3] - near.box[1])
                moved = map_face(near, to_image, size)
                if not any(same_face(moved, kept) for kept in found):
                    found.append(moved)
        found.sort(key=lambda face: face.area, reverse=True)
        return found[:1] if self.options.faces == "largest" else found

    def __call__(
        self, image: np.ndarray, request: Request, name: str = "image", *,
        faces: FacesMode | None = None, found: Sequence[Face] | None = None,
    ) -> Translated:  # fmt: skip
        """Translate the faces of `image` (H, W, 3) uint8 and paste them back.

        faces: which to filter, "all" or "largest" (default: the options'); found: faces
        already found (a video tracker's, or the first of several calls on one photo), so
        none is searched for. The result says what was found; NoFaceError when nothing
        was and the image is too large to be a face crop."""
        where = self.locate(image, name, faces=faces, found=found)
        if where.whole:
            return self._translate_whole(image, request)
        return self._translate_faces(image, where, request)

    def locate(
        self, image: np.ndarray, name: str = "image", *, faces: FacesMode | None = None,
        found: Sequence[Face] | None = None,
    ) -> Located:  # fmt: skip
        """`locate` with this filter's detector, model size and options."""
        return locate(image, self.detector, self.size.side, detect=self.options.detect,
                      faces=faces or self.options.faces, found=found, name=name)  # fmt: skip

    def face_crop(self, image: np.ndarray, name: str = "image") -> np.ndarray:
        """The largest face of `image` aligned as the model was trained, (S, S, 3) uint8 (what
        the edit commands feed a code space); an image with no face is taken whole where
        a call would take it; else NoFaceError."""
        where = self.locate(image, name, faces="largest")
        if where.whole:
            return square_crop(Image.fromarray(as_rgb_uint8(image)), self.size)
        return align_face(image, where.faces[0], self.align)[0]

    def align_for(self, source: str | None) -> AlignConfig:
        """How faces of `source` are aligned: as that domain's training crops were framed."""
        if source not in self.aligns:
            self.aligns[source] = self.filter.align_config(source, **self.overrides)
        return self.aligns[source]

    def _translate_faces(self, image: np.ndarray, where: Located, request: Request) -> Translated:
        faces = where.faces
        by_source: dict[str | None, list[tuple[np.ndarray, np.ndarray]]] = {}
        for direction in request.directions:  # one alignment per source domain
            if direction.source not in by_source:
                align = self.align_for(direction.source)
                by_source[direction.source] = [align_face(image, face, align) for face in faces]
        outputs = []
        for direction in request.directions:
            crops = [crop for crop, _ in by_source[direction.source]]
            outputs.append(self.filter.translate_crops(crops, direction, request.strength))
        crops = [crop for crop, _ in by_source[request.directions[0].source]]
        photos = []
        for direction, translated in zip(request.directions, outputs, strict=True):
            aligned = by_source[direction.source]
            masks = self._face_masks(faces, aligned, self.align_for(direction.source))
            photo = as_rgb_uint8(image).copy()  # one copy per target; faces blend into it
            for result, (crop, matrix), mask in zip(translated, aligned, masks, strict=True):
                paste_back(
                    photo, result, matrix, mask=mask, color_match=self.options.color_match,
                    in_place=True, base=crop if self.filter.adds_changes else None,
                    poisson=self.options.blend == "poisson",
                )  # fmt: skip
            if self.options.debug_overlay:
                photo = draw_overlay(photo, faces, [m for _, m in aligned], masks)
            photos.append(photo)
        return Translated(image, photos, crops, outputs, list(faces), False, where.found)

    def _face_masks(self, faces: Sequence[Face], aligned: Sequence[tuple[np.ndarray, np.ndarray]],
                    align: AlignConfig) -> list[np.ndarray]:  # fmt: skip
        """The mask each face is pasted through: `head` placed from the face's own landmarks
        (a turned head needs a larger mask, moved towards the back of the head)."""
        return [face_mask(self.options.mask, align, self.options.feather,
                          apply_affine(matrix, face.landmarks))
                for face, (_, matrix) in zip(faces, aligned, strict=True)]  # fmt: skip

    def _translate_whole(self, image: np.ndarray, request: Request) -> Translated:
        crop = square_crop(Image.fromarray(as_rgb_uint8(image)), self.size)
        outputs = [self.filter.translate_crops([crop], d, request.strength)
                   for d in request.directions]  # fmt: skip
        photos = [out[0] for out in outputs]
        return Translated(image, photos, [crop], outputs, [], whole=True)


def square_crop(image: Image.Image, size: int | ImageSize) -> np.ndarray:
    """Centre square of `image`, resized to `size` (antialiased): (H, W, 3) uint8. For a
    non-square size, the middle of the square at its longer side (as training data)."""
    size = ImageSize.parse(size)
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    crop = image.crop((left, top, left + side, top + side))
    square = np.asarray(crop.resize((size.side, size.side), Image.Resampling.LANCZOS))
    top, left = (size.side - size.height) // 2, (size.side - size.width) // 2
    return square[top : top + size.height, left : left + size.width]


def side_by_side(*images: np.ndarray) -> np.ndarray:
    height = max(image.shape[0] for image in images)
    padded = [np.pad(im, ((0, height - im.shape[0]), (0, 0), (0, 0))) for im in images]
    return np.concatenate(padded, axis=1)


def contact_sheet(pairs: Sequence[tuple[np.ndarray, np.ndarray]], columns: int = 4) -> np.ndarray:
    """Before/after pairs in a grid, `columns` pairs per row, white gutters."""
    size = pairs[0][0].shape[0]
    gutter = max(2, size // 16)
    cells = [np.pad(side_by_side(a, b), ((gutter, 0), (gutter, 0), (0, 0)), constant_values=255)
             for a, b in pairs]  # fmt: skip
    blank = np.full_like(cells[0], 255)
    cells += [blank] * (-len(cells) % columns)
    rows = [np.concatenate(cells[i : i + columns], axis=1) for i in range(0, len(cells), columns)]
    sheet = np.concatenate(rows, axis=0)
    return np.pad(sheet, ((0, gutter), (0, gutter), (0, 0)), constant_values=255)
