"""Live filtering without a browser: the One Euro smoothing of tracked landmarks, the
`LiveStream` that `apply --webcam` and the live page share, and the live page's work
(`demo.live.live_frame`) on frames good and bad."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_photo_anime_run
from facefilter.face import Face
from facefilter.face.smoothing import OneEuro, SmoothedPoints
from facefilter.inference.video import Tracker

EYES = np.array([[100.0, 100], [160, 100], [130, 135], [108, 170], [152, 170]])  # 60 px apart


def jittered(frames: int, step: float = 0.0, sigma: float = 1.0, seed: int = 0) -> np.ndarray:
    """(frames, 5, 2) landmarks of a face moving `step` px a frame right, with detector
    jitter of `sigma` px; and the truth without the jitter."""
    rng = np.random.default_rng(seed)
    truth = np.stack([EYES + np.array([step * t, 0]) for t in range(frames)])
    return truth + rng.normal(0, sigma, truth.shape), truth


def test_one_euro_steadies_a_still_face_and_follows_a_moving_one():
    """Still: the jitter halved at least. Moving 3 px a frame: no more jitter than
    detected, and less lag than the moving average it replaced (0.67 frames behind)."""
    for step, most_jitter, most_lag in ((0.0, 0.5, 0.0), (3.0, 1.0, 0.6)):
        seen, truth = jittered(120, step)
        points = SmoothedPoints.start(seen[0], OneEuro())
        smoothed = np.stack([points.update(p) for p in seen[1:]])[30:]  # settled
        error = smoothed - truth[31:]
        jitter = np.diff(error, axis=0).std()  # what moves between frames but the face
        lag = -error[..., 0].mean()  # behind the motion, in pixels
        raw_jitter = np.diff(seen[31:] - truth[31:], axis=0).std()
        assert jitter < most_jitter * raw_jitter, (step, jitter, raw_jitter)
        assert lag < most_lag * step + 0.2, (step, lag)


def test_the_same_settings_hold_for_a_face_ten_times_larger():
    seen, _ = jittered(80, step=2.0)
    small, large = (SmoothedPoints.start(p[0], OneEuro()) for p in (seen, seen * 10))
    for points in seen[1:]:
        a, b = small.update(points), large.update(points * 10)
    np.testing.assert_allclose(b, a * 10, rtol=1e-9)


def test_tracker_smooths_each_face_apart_and_not_at_all_when_asked():
    seen, _ = jittered(30)
    other, _ = jittered(30, seed=1)
    other = other + np.array([300, 0])  # a second face, far to the right

    def faces(t: int) -> list[Face]:
        return [Face((0, 0, 1, 1), seen[t], 1.0), Face((0, 0, 1, 1), other[t], 1.0)]

    smooth, raw = Tracker(), Tracker(smooth=False)
    for t in range(30):
        steady, as_found = (
            smooth.update(t, lambda t=t: faces(t)),
            raw.update(t, lambda t=t: faces(t)),
        )
    np.testing.assert_array_equal(as_found[1].landmarks, other[29])
    assert np.abs(steady[1].landmarks - EYES - [300, 0]).mean() < 0.6  # its own track
    assert np.abs(steady[0].landmarks - EYES).mean() < 0.6
    assert np.abs(seen[29] - EYES).mean() > 0.6  # what the raw landmarks are off by


def test_bad_one_euro_settings_are_one_line():
    from facefilter.errors import UserError

    with pytest.raises(UserError, match="must be positive"):
        OneEuro(min_cutoff=0)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_photo_anime_run(tmp_path_factory.mktemp("live") / "run")


def astronaut_frame() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    frame = np.full((480, 640, 3), 96, np.uint8)
    frame[:, 80:560] = np.asarray(Image.fromarray(skimage_data.astronaut()).resize((480, 480)))
    return frame


def test_a_live_stream_tracks_and_starts_afresh_when_the_camera_changes(run):
    pytest.importorskip("dlib")
    from facefilter.face import DetectorSettings
    from facefilter.inference import Filter, PhotoFilter, Request
    from facefilter.inference.live import LiveStream

    flt = Filter.load(run)
    photo_filter = PhotoFilter.build(flt, DetectorSettings(), video=True)
    stream, request = LiveStream(photo_filter), Request.of(flt, "anime")
    frame = astronaut_frame()
    for _ in range(3):
        out = stream(frame, request)
    assert out.shape == frame.shape and stream.index == 3 and len(stream.tracker.faces) == 1
    assert np.abs(out.astype(int) - frame).mean() > 0.5 and stream.pace > 0
    stream.switch(PhotoFilter.build(flt, DetectorSettings(), video=True))
    stream(frame, request)
    assert stream.index == 4 and len(stream.tracker.faces) == 1  # faces kept across runs
    smaller = np.ascontiguousarray(frame[::2, ::2])
    stream(smaller, request)
    assert stream.index == 1  # another size: tracking started afresh


def data_url(image: np.ndarray, kind: str = "JPEG") -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, kind)
    return f"data:image/{kind.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


def test_live_frames_good_and_bad_are_answered_never_raised(run):
    pytest.importorskip("dlib")
    from facefilter.demo.live import LiveSession, live_frame
    from facefilter.demo.service import DemoService, InlineImage, Limits

    service = DemoService([run], limits=Limits(max_megabytes=1, max_megapixels=1))
    session, name = LiveSession(), next(iter(service.runs))
    frame = InlineImage(data_url(astronaut_frame()))
    answer = live_frame(service, session, frame, name, "anime", 1.0)
    assert answer.image is not None and answer.image.shape == (480, 640, 3)
    assert answer.message.startswith("1 face") and session.frames == 1
    assert live_frame(service, session, None, name, "anime", 1.0).message.startswith("Press")
    wrong = live_frame(service, session, frame, name, "cartoon", 1.0)
    assert wrong.image is not None and "has no target 'cartoon'" in wrong.message  # as sent
    big = InlineImage(data_url(np.zeros((1200, 1000, 3), np.uint8), "PNG"))
    assert "megapixels" in live_frame(service, session, big, name, "anime", 1.0).message
    junk = InlineImage("data:image/jpeg;base64,bm90IGFuIGltYWdl")
    assert "not an image" in live_frame(service, session, junk, name, "anime", 1.0).message
    assert session.frames == 1


def test_a_live_frame_is_inline_and_never_a_path_a_client_names(tmp_path):
    pytest.importorskip("gradio")
    from facefilter.demo.app import sent_frame

    kept = tmp_path / "kept.txt"
    kept.write_text("not an image")
    assert sent_frame({"path": str(kept), "meta": {"_type": "gradio.FileData"}}) is None
    assert sent_frame(str(kept)) is None and sent_frame(None) is None
    url = "data:image/jpeg;base64,AAAA"
    assert sent_frame(url).url == url and sent_frame({"url": url}).url == url  # type: ignore[union-attr]
    assert kept.exists()


def test_a_stream_paused_starts_afresh_and_crafted_payloads_are_no_frames(run, monkeypatch):
    pytest.importorskip("dlib")
    from facefilter.demo.app import sent_frame
    from facefilter.face import DetectorSettings
    from facefilter.inference import Filter, PhotoFilter, Request, live

    flt = Filter.load(run)
    stream = live.LiveStream(PhotoFilter.build(flt, DetectorSettings(), video=True))
    request, frame = Request.of(flt, "anime"), astronaut_frame()
    stream(frame, request), stream(frame, request)
    assert stream.index == 2
    clock = live.time.monotonic() + live.PAUSE_SECONDS + 1  # the camera was off a while
    monkeypatch.setattr(live.time, "monotonic", lambda: clock)
    stream(frame, request)
    assert stream.index == 1  # the faces of before are not pasted where they were
    assert sent_frame(["not", "a", "frame"]) is None and sent_frame({"url": 3}) is None


def test_two_faces_close_together_keep_their_tracks_whichever_is_found_first():
    a, b = EYES, EYES + np.array([45.0, 0])  # closer than an eye distance (60 px)
    moved = EYES + np.array([25.0, 0])  # face a jumps towards b, found first: b is nearer

    tracker = Tracker()
    tracker.update(0, lambda: [Face((0, 0, 1, 1), a, 1.0), Face((0, 0, 1, 1), b, 1.0)])
    after = tracker.update(1, lambda: [Face((0, 0, 1, 1), moved, 1.0),
                                       Face((0, 0, 1, 1), b, 1.0)])  # fmt: skip
    np.testing.assert_allclose(after[1].landmarks, b)  # b kept its own track: still
    assert (after[0].landmarks[:, 0] < moved[:, 0]).all()  # a followed from where a was
