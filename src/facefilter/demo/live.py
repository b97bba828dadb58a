"""What the live page does, without the page: each browser tab's camera frames, one at a
time, through the same `LiveStream` that `apply --webcam` uses.

A tab's `LiveSession` keeps its stream (the tracked faces) between frames; the run,
target and strength come with every frame, so they can change while the camera runs.
Frames are checked as uploads are (bytes and header before decoding), and every failure
is a message beside the unfiltered frame, never an exception that stops the stream.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

import numpy as np

from facefilter.demo.service import DemoService, InlineImage, open_inline
from facefilter.errors import UserError
from facefilter.inference import Request
from facefilter.inference.live import LiveStream


@dataclass
class LiveSession:
    """One tab's live stream: the run it filters with and its tracked faces."""

    run: str | None = None
    stream: LiveStream | None = None
    frames: int = 0  # frames answered in this tab


@dataclass
class LiveAnswer:
    image: np.ndarray | None  # the filtered frame, or the frame as sent when it failed
    message: str


def live_frame(
    service: DemoService, session: LiveSession, frame: InlineImage | None, run: str,
    target: str, strength: float,
) -> LiveAnswer:  # fmt: skip
    """One camera frame filtered with `run` to `target` at `strength`, faces tracked across
    the session's frames; failures are the answer's message."""
    if frame is None:
        return LiveAnswer(None, "Press the camera's record button to start.")
    try:
        image = open_inline(frame, service.limits)  # a frame is inline, never a path
    except UserError as error:
        return LiveAnswer(None, str(error))
    try:
        return LiveAnswer(*filtered(service, session, image, run, target, strength))
    except UserError as error:
        return LiveAnswer(image, str(error))
    except Exception as error:  # a bug: this frame fails, the stream and server go on
        traceback.print_exc()
        return LiveAnswer(image, f"internal error ({type(error).__name__}); the server's log "
                                 "has the details")  # fmt: skip


def filtered(
    service: DemoService, session: LiveSession, image: np.ndarray, run: str, target: str,
    strength: float,
) -> tuple[np.ndarray, str]:  # fmt: skip
    loaded = service.chosen(run, target)
    request = Request((loaded.choices[target],), float(strength))
    with loaded.lock:  # the run's detector and sessions serve one frame at a time
        if session.stream is None:
            session.stream = LiveStream(loaded.live, detect_every=loaded.engine.detect_every)
        elif session.run != run:
            session.stream.switch(loaded.live)  # the faces tracked so far are kept
        session.run = run
        picture = session.stream(image, request)
    session.frames += 1
    faces = len(session.stream.tracker.faces)
    found = f"{faces} face{'s' if faces != 1 else ''}" if faces else "no face"
    return picture, f"{found} · {session.stream.pace:.1f} frames a second"
