"""Video files and the webcam: every frame through the photo pipeline, faces tracked.

Tracking is deliberately simple and cheap: detect every `detect_every` frames, and
between full-frame searches (every `full_every` frames, or whenever no face is
tracked) only near the faces already tracked (a region 1.6 times a face's box: a
tenth of a 640x480 frame's cost, so a video keeps up with its translator); when a detection
misses, keep the last faces for up to `hold_frames` frames (a blink or a motion blur
does not make the filter flicker off); smooth each face's landmarks over time with a
One Euro filter (`face.smoothing`), matched to the previous frame's faces by position,
so the crop does not jitter while the face is still and does not lag when it moves
(`--no-smoothing` takes each frame's landmarks as detected). Frames without a face are
written unchanged (`--detect never` translates the centre square of every frame instead).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from facefilter.data.images import ImageError
from facefilter.errors import UserError
from facefilter.face import Face
from facefilter.face.arrays import import_cv2
from facefilter.face.smoothing import OneEuro, SmoothedPoints
from facefilter.inference.files import VIDEO_EXTENSIONS, OutputOptions, pictures, require_input
from facefilter.inference.photo import PhotoFilter, Request, side_by_side
from facefilter.inference.video_writers import open_writer
from facefilter.provenance import Provenance, label_video, unlabelled
from facefilter.safe_io import atomic_write

WRITABLE_EXTENSIONS = (".mp4", ".avi", ".mov", ".m4v")  # containers these two codecs fit


@dataclass
class Tracker:
    """Faces carried from frame to frame; see the module docstring."""

    detect_every: int = 1  # frames between detections (1: every frame)
    hold_frames: int = 5  # frames to keep the last faces when detection finds none
    full_every: int = 60  # frames between searches of the whole frame (new faces appear)
    smooth: bool = True  # One Euro filter on each face's landmarks (off: as detected)
    settings: OneEuro = field(default_factory=OneEuro)
    faces: list[Face] = field(default_factory=list)
    tracks: list[SmoothedPoints] = field(default_factory=list)  # one per face, in order
    misses: int = 0
    searched: int = -(10**9)  # the frame of the last whole-frame search
    detected: int = 0  # the frame of the last detection that found faces

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise UserError(f"--detect-every must be 1 or more, got {self.detect_every}")
        # Video warps are small (one face) and OpenCV's thread pool only fights torch's
        # for the cores: one thread makes a frame ~10% faster (benchmarks/apply_speed.py).
        import_cv2().setNumThreads(1)

    def update(
        self, index: int, detect: Callable[[], list[Face]],
        detect_near: Callable[[list[Face]], list[Face]] | None = None,
    ) -> list[Face]:  # fmt: skip
        """The faces of frame `index`. On detection frames, `detect` searches the frame,
        or `detect_near` only round the tracked faces (see the module docstring)."""
        if index % self.detect_every:
            return self.faces
        due = index - self.searched >= self.full_every
        if detect_near is not None and self.faces and not due:
            found = detect_near(self.faces)
            if len(found) < len(self.faces):  # a face left its region: search everywhere
                found, self.searched = detect(), index
        else:
            found, self.searched = detect(), index
        if found:
            self.faces = self.follow(found, index - self.detected if self.tracks else 1)
            self.misses, self.detected = 0, index
        else:
            self.misses += 1  # detection frames without a face: detect_every frames each
            if self.misses * self.detect_every > self.hold_frames:
                self.faces, self.tracks = [], []
        return self.faces

    def follow(self, found: list[Face], frames: int = 1) -> list[Face]:
        """`found` with each face's landmarks smoothed by the track of the nearest face of
        the last detection (within an eye distance of it), or starting a track of its own;
        `frames` since that detection. Nearest pairs are matched first, so two faces side
        by side keep their tracks whichever is found first."""
        pairs = []
        for i, face in enumerate(found):
            centre = face.landmarks.mean(0)
            reach = float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))  # eye distance
            for j, track in enumerate(self.tracks):
                gap = float(np.linalg.norm(track.points.mean(0) - centre))
                if gap < reach:
                    pairs.append((gap, i, j))
        matched: dict[int, SmoothedPoints] = {}
        taken: set[int] = set()
        for _, i, j in sorted(pairs):
            if i not in matched and j not in taken:
                matched[i] = self.tracks[j]
                taken.add(j)
                matched[i].update(found[i].landmarks, frames)
        self.tracks = [matched.get(i) or SmoothedPoints.start(face.landmarks, self.settings)
                       for i, face in enumerate(found)]  # fmt: skip
        if not self.smooth:
            return found
        return [Face(box=f.box, landmarks=t.points.copy(), score=f.score)
                for f, t in zip(found, self.tracks, strict=True)]  # fmt: skip


def filter_frame(
    photo_filter: PhotoFilter, request: Request, tracker: Tracker, frame: np.ndarray,
    index: int, compare: bool,
) -> np.ndarray:  # fmt: skip
    """One RGB frame (H, W, 3) through the filter; the same size every frame."""
    options = OutputOptions(compare=compare)
    if not photo_filter.detects:
        return pictures(photo_filter(frame, request), options)[0]

    def near(tracked: list[Face]) -> list[Face]:
        return photo_filter.find_faces_near(frame, tracked)

    faces = tracker.update(index, lambda: photo_filter.find_faces(frame), near)
    if faces:  # the tracker's faces: the call searches no further
        return pictures(photo_filter(frame, request, found=faces), options)[0]
    targets = len(request.directions)
    copies = targets if compare or targets > 1 else 0
    return side_by_side(frame, *[frame] * copies) if copies else frame


def read_frames(capture: object) -> Iterator[np.ndarray]:
    """RGB frames (H, W, 3) uint8 from an open cv2.VideoCapture until it ends."""
    while True:
        ok, frame = capture.read()  # type: ignore[attr-defined]
        if not ok:
            return
        yield np.ascontiguousarray(frame[:, :, ::-1])  # OpenCV gives BGR


def video_output(path: Path, output: Path, suffix: str) -> Path:
    """`output` when it names a video file, else OUTPUT/<stem><suffix>.mp4 (.avi for .avi)."""
    if output.suffix.lower() in WRITABLE_EXTENSIONS:
        return output
    if output.suffix.lower() in VIDEO_EXTENSIONS:
        raise UserError(
            f"-o {output}: cannot write {output.suffix} video here; name a "
            f"{' or '.join(WRITABLE_EXTENSIONS)} file"
        )
    extension = ".avi" if path.suffix.lower() == ".avi" else ".mp4"
    return output / f"{path.stem}{suffix}{extension}"


def apply_video(
    photo_filter: PhotoFilter, request: Request, path: Path, output: Path, *, suffix: str = "",
    compare: bool = False, detect_every: int = 1, progress: bool = True,
    label: Provenance | None = None, smooth: bool = True,
) -> tuple[Path, int]:  # fmt: skip
    """Filter every frame of video `path`; returns (file written, frames). `label`: the
    video says it was made by a filter (XMP, in an MP4 or MOV; an AVI cannot carry it);
    `smooth`: faces' landmarks through the One Euro filter (see `Tracker`)."""
    cv2 = import_cv2()
    require_input(path)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ImageError(f"{path}: cannot open this video (corrupt, or a codec OpenCV lacks)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    destination = video_output(path, output, suffix)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if label is not None:
        label = video_label(label, photo_filter, request, compare, destination)
    frames = tqdm(read_frames(capture), total=total, unit="frame", disable=not progress,
                  desc=path.name)  # fmt: skip
    count = 0

    def write(tmp: Path) -> None:  # the whole video, then renamed over `destination`
        nonlocal count
        tracker, writer = Tracker(detect_every=detect_every, smooth=smooth), None
        try:
            for index, frame in enumerate(frames):
                picture = filter_frame(photo_filter, request, tracker, frame, index, compare)
                if writer is None:
                    writer = open_writer(tmp, fps, picture.shape[1], picture.shape[0], path)
                writer.write(picture)
                count += 1
        finally:
            capture.release()
            if writer is not None:
                writer.release()
        if count == 0:
            raise ImageError(f"{path}: no frame could be decoded from this video")
        assert writer is not None  # a frame was written
        writer.check()
        # after ffmpeg closed it, before it is renamed into place
        if label is not None and not label_video(tmp, label):
            tqdm.write(f"warning: {destination} is no MP4 inside; written without the "
                       "'made by a filter' label", file=sys.stderr)  # fmt: skip

    atomic_write(destination, write)
    return destination, count


def video_label(
    label: Provenance, photo_filter: PhotoFilter, request: Request, compare: bool,
    destination: Path,
) -> Provenance | None:  # fmt: skip
    """`label` for the frames `filter_frame` writes (whole: every frame the translated
    centre square alone); None, said in one line, when `destination` cannot carry it."""
    note = unlabelled(destination)
    if note is not None:
        tqdm.write(note, file=sys.stderr)
        return None
    beside = compare or len(request.directions) > 1
    return replace(label, whole=not photo_filter.detects and not beside)
