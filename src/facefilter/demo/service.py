"""What the demo page does, without the page: runs loaded once, uploads checked before
they are decoded, one photo filtered per request, every failure turned into a message.

`demo.app` lays this out with Gradio and adds nothing but widgets; tests drive this
class directly as well as through a real browser.
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image
from torch import Tensor

from facefilter.data.images import ImageError, decode_image, load_image
from facefilter.errors import UserError
from facefilter.face import DetectorSettings, Face
from facefilter.inference import Filter, NoFaceError, PhotoFilter, Request, Translated
from facefilter.inference.photo import FacesMode
from facefilter.models.targets import Direction
from facefilter.provenance import Provenance

OUTLINE = (255, 64, 64)  # the colour faces are outlined in, on request
MEGABYTE = 2**20  # as browsers and Gradio's upload message count them
PHOTO = "the photo"  # what messages call the upload


@dataclass(frozen=True)
class Limits:
    """What one upload may be: checked on the file's size and header, before decoding."""

    max_megabytes: float = 10.0
    max_megapixels: float = 16.0

    def __post_init__(self) -> None:
        if not 0 < self.max_megabytes < 1e6:
            raise UserError(f"--max-upload-mb {self.max_megabytes} must be above 0 (and finite)")
        if not 0 < self.max_megapixels < 1e6:
            raise UserError(f"--max-megapixels {self.max_megapixels} must be above 0 (and finite)")


@dataclass(frozen=True)
class Engine:
    """How the runs are loaded and faces found (the flags `apply` has for the same)."""

    engine: str = "torch"
    device: str | None = None
    detection: DetectorSettings = field(default_factory=DetectorSettings)
    precision: str = "fp32"  # torch engine: bf16 where the device computes it natively
    threads: int | None = None  # CPU threads a translation uses (None: one a core)
    detect_every: int = 2  # live page: camera frames between face detections (tracked between)


@dataclass
class Answer:
    """One request's result: the filtered photo (None when there is nothing to show) and
    the line the page shows under it."""

    image: np.ndarray | None
    message: str
    label: Provenance | None = None  # the "made by a filter" label the saved image carries


@dataclass(frozen=True)
class InlineImage:
    """A photo sent inside the request as a base64 `data:` URL (an API caller's other way
    to send one), handed over undecoded so that its size and header are checked first."""

    url: str


@dataclass
class LoadedRun:
    """One run, loaded once: its filter, its photo pipeline and the targets it offers."""

    name: str
    path: Path
    photo: PhotoFilter
    choices: dict[str, Direction]  # label shown in the page -> direction
    engine: Engine = field(default_factory=Engine)  # how it was loaded and faces are found
    lock: threading.Lock = field(default_factory=threading.Lock)
    live_photo: PhotoFilter | None = None  # the live page's: a video detector (no roll passes)

    @property
    def live(self) -> PhotoFilter:
        """The photo pipeline of live frames: the same filter, with the detector a video's
        tracker uses (built on the first live frame; call it holding `lock`)."""
        if self.live_photo is None:
            self.live_photo = PhotoFilter.build(self.photo.filter, self.engine.detection,
                                                 video=True)  # fmt: skip
        return self.live_photo


def direction_labels(directions: Sequence[Direction]) -> dict[str, Direction]:
    """A label per direction: the target alone (`anime`, `+Smiling`) when only one source
    reaches it, `photo → anime` when several do (trVAE)."""
    reaching: dict[str, int] = {}
    for direction in directions:
        reaching[str(direction.target)] = reaching.get(str(direction.target), 0) + 1
    labels = {}
    for direction in directions:
        target = str(direction.target)
        many = reaching[target] > 1 and direction.source is not None
        labels[f"{direction.source} → {target}" if many else target] = direction
    return labels


def run_names(paths: Sequence[Path]) -> list[str]:
    """What the page calls each run: its folder's name, or parent/name where two runs
    share a name (never the whole path: the page may be seen by others)."""
    names = [path.resolve().name for path in paths]
    return [f"{p.resolve().parent.name}/{n}" if names.count(n) > 1 else n
            for p, n in zip(paths, names, strict=True)]  # fmt: skip


class DemoService:
    """The runs a demo serves, each loaded once and kept in memory."""

    def __init__(
        self, paths: Sequence[Path], engine: Engine = Engine(), limits: Limits = Limits()
    ) -> None:
        if not paths:
            raise UserError("give at least one run directory or export to serve")
        self.limits = limits
        unique: dict[Path, Path] = {}
        for path in paths:  # the same run named twice is served once
            unique.setdefault(path.resolve(), path)
        paths = list(unique.values())
        self.runs: dict[str, LoadedRun] = {}
        for name, path in zip(run_names(paths), paths, strict=True):
            self.runs[name] = load_run(name, path, engine)

    def targets(self, run: str) -> list[str]:
        return list(self.runs[run].choices) if run in self.runs else []

    def chosen(self, run: str, target: str) -> LoadedRun:
        """The run named `run`, checked to offer `target`; else a message naming both."""
        loaded = self.runs.get(run)
        if loaded is None:
            raise UserError(f"unknown filter {run!r}; choose one of {', '.join(self.runs)}")
        if target not in loaded.choices:
            offered = ", ".join(loaded.choices)
            raise UserError(f"{run} has no target {target!r}; choose one of {offered}")
        return loaded

    def filter_photo(
        self, upload: str | InlineImage | None, run: str, target: str, strength: float = 1.0,
        faces: str = "all", outline: bool = False,
    ) -> Answer:  # fmt: skip
        """Filter the uploaded photo; every failure is a message in this answer, never an
        exception that would stop the server."""
        try:
            return self._filter(upload, run, target, strength, faces, outline)
        except UserError as error:
            return Answer(None, str(error))
        except Exception as error:  # a bug: this request fails, the server goes on
            traceback.print_exc()  # the details (paths too) stay in the server's log
            return Answer(None, f"internal error ({type(error).__name__}); the server's log "
                                "has the details")  # fmt: skip

    def _filter(self, upload: str | InlineImage | None, run: str, target: str, strength: float,
                faces: str, outline: bool) -> Answer:  # fmt: skip
        if upload is None:
            return Answer(None, "Upload a photo (or take one with the webcam) first.")
        loaded = self.chosen(run, target)
        if faces not in ("all", "largest"):
            raise UserError(f"faces {faces!r}: choose all or largest")
        image = open_upload(upload, self.limits)
        request = Request((loaded.choices[target],), float(strength))
        with loaded.lock:  # a run's detector and sessions serve one request at a time
            started = time.perf_counter()
            result = filter_faces(
                loaded.photo, image, request, "largest" if faces == "largest" else "all"
            )
            seconds = time.perf_counter() - started
        photo = result.photos[0]
        if outline and result.faces:
            photo = outlined(photo, result.faces)
        label = loaded.photo.filter.label([target], whole=result.whole)
        return Answer(photo, describe(result, target, strength, seconds), label)


def load_run(name: str, path: Path, engine: Engine) -> LoadedRun:
    """The run's filter, and a detector of its own (so runs filter side by side)."""
    flt = Filter.load(path, engine=engine.engine, device=engine.device,  # type: ignore[arg-type]
                      precision=engine.precision,  # type: ignore[arg-type]
                      threads=engine.threads)  # fmt: skip
    choices = direction_labels(flt.directions)
    if not choices:
        raise UserError(flt.no_targets())
    photo = PhotoFilter.build(flt, engine.detection)
    return LoadedRun(name, path, photo, choices, engine)


def open_upload(upload: str | Path | InlineImage, limits: Limits) -> np.ndarray:
    """The uploaded photo as RGB uint8, after its byte size and its header's pixel count
    are checked; a file refused is deleted without being decoded."""
    if isinstance(upload, InlineImage):
        return open_inline(upload, limits)
    path = Path(upload)
    try:
        check_megabytes(path.stat().st_size / MEGABYTE, limits)
        check_header(path, limits)
    except UserError:
        path.unlink(missing_ok=True)
        raise
    return decode(path)


def open_inline(upload: InlineImage, limits: Limits) -> np.ndarray:
    """The photo of a `data:` URL: its length is checked before the base64 is decoded, and
    its header before the pixels are, as an uploaded file's are."""
    head, _, encoded = upload.url.partition(",")
    if not head.startswith("data:") or not head.endswith(";base64"):
        raise UserError(f"{PHOTO} is not an image this demo can read; send a base64 data URL "
                        "of a JPEG or PNG")  # fmt: skip
    check_megabytes(len(encoded) * 3 / 4 / MEGABYTE, limits)  # 4 base64 characters a 3 bytes
    try:
        data = base64.b64decode(encoded)  # as leniently as Gradio did
    except binascii.Error:
        raise UserError(f"{PHOTO} is not valid base64; send a base64 data URL") from None
    check_header(io.BytesIO(data), limits)
    return decode(data)


def check_megabytes(megabytes: float, limits: Limits) -> None:
    if megabytes > limits.max_megabytes:
        raise UserError(f"{PHOTO} is {megabytes:.1f} MB; this demo takes photos up to "
                        f"{limits.max_megabytes:g} MB: scale it down and try again")  # fmt: skip


def check_header(source: Path | BinaryIO, limits: Limits) -> None:
    """Refuse a photo of too many pixels from its header, which is all this reads."""
    try:
        with Image.open(source) as header:
            width, height = header.size
    except Image.DecompressionBombError:
        raise UserError(f"{PHOTO} has far too many pixels; this demo takes up to "
                        f"{limits.max_megapixels:g} megapixels") from None  # fmt: skip
    except (OSError, ValueError):
        raise UserError(f"{PHOTO} is not an image this demo can read; try a JPEG or PNG") from None
    if width * height > limits.max_megapixels * 1e6:
        raise UserError(
            f"{PHOTO} is {width}x{height} ({width * height / 1e6:.1f} megapixels); this demo "
            f"takes up to {limits.max_megapixels:g} megapixels: scale it down and try again"
        )


def decode(source: Path | bytes) -> np.ndarray:
    """An uploaded file, or an inline photo's bytes, decoded to RGB uint8."""
    try:
        image = decode_image(source, PHOTO) if isinstance(source, bytes) else load_image(source)
        return np.asarray(image)
    except ImageError:  # its message names the file: a server path the page must not show
        raise UserError(f"{PHOTO} could not be decoded; it may be truncated or damaged") from None


def filter_faces(
    photo: PhotoFilter, image: np.ndarray, request: Request, faces: FacesMode
) -> Translated:
    """The one photo call (every face or only the largest, or the whole image when it is
    small enough to be a face crop, as `apply` does), with the page's own words for a
    photo with no face."""
    try:
        return photo(image, request, faces=faces)
    except NoFaceError:
        height, width = image.shape[:2]
        raise UserError(
            f"No face found in this {width}x{height} image. Try a photo where the face is well "
            "lit, turned towards the camera and at least 40 pixels wide."
        ) from None


def describe(result: Translated, target: str, strength: float, seconds: float) -> str:
    found = result.found
    height, width = result.image.shape[:2]
    where = f"in this {width}x{height} image"
    done = f"filtered to {target} at strength {strength:g} in {seconds:.2f} s"
    if found == 0:
        return f"No face found {where}; small enough to be a face crop, all of it was {done}."
    if found == 1:
        return f"1 face found {where} and {done}."
    if len(result.faces) == 1:
        return f"{found} faces found {where}; the largest was {done}. Choose 'all' for every face."
    return f"{found} faces found {where}; all were {done}. Choose 'largest' to filter only one."


def outlined(photo: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A copy of `photo` with each face's box drawn, numbered from the largest."""
    from PIL import ImageDraw

    image = Image.fromarray(photo)
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(photo.shape[:2]) / 300))
    for number, face in enumerate(faces, start=1):
        x0, y0, x1, y1 = face.box
        draw.rectangle((x0, y0, x1, y1), outline=OUTLINE, width=width)
        draw.text((x0 + width, y0 + width), str(number), fill=OUTLINE)
    return np.asarray(image)


SYNTH_EXAMPLES = 3  # synthetic faces offered as examples, per style


def write_examples(folder: Path, service: DemoService) -> list[Path]:
    """Example inputs for the page: the astronaut photo scikit-image ships (when it is
    installed) and a few synthetic faces in the styles the first run translates from."""
    from facefilter.pixels import to_pixels
    from facefilter.safe_io import atomic_write
    from facefilter.synth import STYLES
    from facefilter.synth.dataset import SynthFaces

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        from skimage import data as skimage_data

        astronaut = Image.fromarray(skimage_data.astronaut())
        written.append(folder / "astronaut.png")
        atomic_write(written[-1], astronaut.save)
    except ImportError:  # the [demo] extra installs it; without it, synthetic faces only
        pass
    first = next(iter(service.runs.values()))
    sources = {d.source for d in first.choices.values()}
    styles = [style for style in STYLES if style in sources] or ["photo"]
    side = min(256, max(64, 2 * first.photo.size.side))  # small enough to be taken whole
    for style in styles:
        faces = SynthFaces(style, side, count=SYNTH_EXAMPLES, seed=2026, split=None)
        for index in range(len(faces)):
            image = faces[index]["image"]
            assert isinstance(image, Tensor)
            written.append(folder / f"synthetic_{style}_{index + 1}.png")
            face = Image.fromarray(to_pixels(image).permute(1, 2, 0).numpy())
            atomic_write(written[-1], face.save)
    return written
