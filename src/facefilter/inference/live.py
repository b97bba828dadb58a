"""A live stream of frames through a filter: the webcam window of `apply --webcam` and the
web demo's live page both push their frames, one at a time, through a `LiveStream`.

A live source differs from a video file in three ways, all handled here: frames arrive
when the camera (or the browser) sends them, so the pace is measured, not read from a
header; the source can change size mid-stream (another camera, the browser's
resolution renegotiated) or pause (the camera stopped, another tab's turn), which
starts the tracking afresh; and the filter can be
changed while it runs (another run, target or strength), which keeps the tracked faces
(they belong to the camera, not to the filter).
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from facefilter.errors import UserError
from facefilter.face.arrays import as_rgb_uint8, import_cv2
from facefilter.inference.photo import PhotoFilter, Request
from facefilter.inference.video import Tracker, filter_frame, read_frames

QUIT_KEYS = (27, ord("q"))  # Esc, q
PACE_FRAMES = 30  # the frames per second shown are measured over the last this many
PAUSE_SECONDS = 1.0  # a stream stopped this long (camera off, a tab's turn) starts afresh


class LiveStream:
    """One live source's frames through a `PhotoFilter`, faces tracked across frames."""

    def __init__(
        self, photo_filter: PhotoFilter, *, detect_every: int = 1, smooth: bool = True
    ) -> None:
        self.photo_filter = photo_filter
        self.detect_every = detect_every
        self.smooth = smooth
        self.tracker = Tracker(detect_every=detect_every, smooth=smooth)
        self.index = 0  # frames filtered since the tracking (re)started
        self.shape: tuple[int, ...] | None = None
        self.times: deque[float] = deque(maxlen=PACE_FRAMES)

    def __call__(self, frame: np.ndarray, request: Request, compare: bool = False) -> np.ndarray:
        """The filtered frame (H, W, 3) uint8 (wider with `compare`, or for several
        targets, side by side)."""
        frame = as_rgb_uint8(frame)
        paused = bool(self.times) and time.monotonic() - self.times[-1] > PAUSE_SECONDS
        if frame.shape != self.shape or paused:  # another camera, or the faces moved on
            self.restart()
            self.shape = frame.shape
        picture = filter_frame(self.photo_filter, request, self.tracker, frame, self.index,
                               compare)  # fmt: skip
        self.index += 1
        self.times.append(time.monotonic())
        return picture

    def switch(self, photo_filter: PhotoFilter) -> None:
        """Filter with another run from the next frame on; the tracked faces are kept."""
        self.photo_filter = photo_filter

    def restart(self) -> None:
        """Forget the tracked faces: the next frame is searched whole."""
        self.tracker = Tracker(detect_every=self.detect_every, smooth=self.smooth)
        self.index = 0
        self.times.clear()

    @property
    def pace(self) -> float:
        """Frames a second over the last PACE_FRAMES frames (0 until two were filtered)."""
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / max(self.times[-1] - self.times[0], 1e-6)


def open_camera(camera: int) -> object:
    """An open camera, or a UserError saying there is none (OpenCV's own noise muted)."""
    cv2 = import_cv2()
    # Silent: no "can't open camera by index" warnings on stderr, only our one line.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    capture = cv2.VideoCapture(camera)
    if not capture.isOpened():
        raise UserError(
            f"--webcam: no camera at index {camera} on this machine; plug one in or pass "
            "--camera N (or apply the filter to a video file instead)"
        )
    return capture


def open_window(title: str) -> None:
    cv2 = import_cv2()
    try:
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)
    except cv2.error:
        raise UserError(
            "--webcam: no display to show the live window (headless machine, or "
            "opencv-python-headless, which has no GUI: pip install opencv-python)"
        ) from None


def run_webcam(
    photo_filter: PhotoFilter, request: Request, camera: int = 0, *, compare: bool = False,
    detect_every: int = 2, smooth: bool = True,
) -> int:  # fmt: skip
    """Show the filtered camera live until Esc or q; returns the frames shown."""
    cv2 = import_cv2()
    capture = open_camera(camera)
    title = "facefilter (Esc or q to quit)"
    try:
        open_window(title)
    except UserError:
        capture.release()  # type: ignore[attr-defined]
        raise
    stream, shown = LiveStream(photo_filter, detect_every=detect_every, smooth=smooth), 0
    try:
        for frame in read_frames(capture):
            bgr = np.ascontiguousarray(stream(frame, request, compare)[:, :, ::-1])
            cv2.putText(bgr, f"{stream.pace:.1f} fps", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                        (0, 255, 0), 2)  # fmt: skip
            cv2.imshow(title, bgr)
            shown += 1
            if cv2.waitKey(1) & 0xFF in QUIT_KEYS:
                break
    finally:
        capture.release()  # type: ignore[attr-defined]
        cv2.destroyAllWindows()
    return shown
