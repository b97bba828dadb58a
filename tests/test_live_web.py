"""The demo's live page, served for real and driven by Debian's chromium through
Playwright with a fake camera: a Y4M clip made here from a real photo (the astronaut,
with fresh sensor noise each frame) that chromium plays as the webcam. Frames must come
back filtered (the face changed, the background not), and the page must survive the
camera stopping, a run switched mid-stream, a tab closed mid-stream and two tabs at
once (they take turns). The frame rate is printed, not asserted: it is a benchmark's
(benchmarks/live_page.py), measured alone on a quiet machine.

FACEFILTER_DEMO_RUN=runs/demo FACEFILTER_SCREENSHOT=docs/live_page.jpg pytest
tests/test_live_web.py  takes the README's screenshot on a trained run.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_photo_anime_run
from facefilter.cli.main import main
from facefilter.demo.app import FRAMES_SHOWN
from facefilter.inference.video_writers import write_y4m
from test_demo_web import CHROMIUM_FLAGS, TINY_TRVAE, Server, demo_child, launch_chromium

pytest.importorskip("dlib")
skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api")

WIDTH, HEIGHT = 640, 480
FACE = (250, 60, 400, 230)  # x0, y0, x1, y1 of the astronaut's face in the camera frame
TURN = 3  # seconds a stream holds the filter while another tab waits (--live-turn)


def camera_frames(count: int = 20) -> list[np.ndarray]:
    """The astronaut in a 640x480 frame, with fresh sensor noise in every frame."""
    rng = np.random.default_rng(0)
    astronaut = np.asarray(Image.fromarray(skimage_data.astronaut()).resize((480, 480)))
    frame = np.full((HEIGHT, WIDTH, 3), 96, np.uint8)
    frame[:, 80:560] = astronaut
    noisy = [frame + rng.normal(0, 2, frame.shape) for _ in range(count)]
    return [np.clip(f, 0, 255).astype(np.uint8) for f in noisy]


@pytest.fixture
def live_server(tmp_path) -> Iterator[Server]:
    run = Path(os.environ.get("FACEFILTER_DEMO_RUN") or tiny_photo_anime_run(tmp_path / "run"))
    trvae = tmp_path / "trvae"  # a second run to switch to mid-stream
    assert main(["train", "trvae", "--data", "synth:photo,anime,cartoon?count=12", "--size", "32",
                 "--batch-size", "6", "--max-steps", "1", "--num-workers", "0", "--no-progress",
                 "--out", str(trvae), *TINY_TRVAE]) == 0  # fmt: skip
    clip = write_y4m(tmp_path / "camera.y4m", camera_frames())
    extra = ("--concurrency", "1", "--live-turn", str(TURN))
    with demo_child(tmp_path, [run, trvae], {"camera": clip}, extra=extra) as served:
        yield served


def fake_camera(clip: Path) -> list[str]:
    """Chromium's flags to play `clip` as the webcam, allowed without asking."""
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}"]  # fmt: skip


def open_live(browser, server: Server):
    """A tab of its own (a browser context: its own session) on the Live page, streaming."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(server.url)
    page.get_by_role("tab", name="Live").click()
    page.get_by_text("Click to Access Webcam").click()
    record(page)
    page.evaluate(FRAMES_SHOWN)
    return page


def record(page) -> None:
    page.locator("#live-camera button", has_text="Record").first.click()


def shown(page) -> int:
    return int(page.evaluate("window.frames_shown"))


def more_frames(page, count: int, seconds: float = 60) -> float:
    """Wait for `count` more filtered frames in `page`; returns their frames a second."""
    start, began = shown(page), time.monotonic()
    deadline = began + seconds
    while shown(page) < start + count:
        assert time.monotonic() < deadline, f"only {shown(page) - start} of {count} frames came"
        page.wait_for_timeout(20)
    return count / (time.monotonic() - began)


def last_frame(page) -> np.ndarray:
    """The filtered frame the page shows, as the browser fetched it."""
    source = page.evaluate("document.querySelector('#live-result img').src")
    answer = page.request.get(source)
    assert answer.ok, source
    return np.asarray(Image.open(io.BytesIO(answer.body())).convert("RGB")).astype(int)


def face_filtered_only(result: np.ndarray) -> None:
    """The face changed, the wall and the suit did not (beyond two JPEG round trips);
    the page mirrors the camera, as a selfie view does."""
    original = camera_frames(1)[0][:, ::-1].astype(int)
    assert result.shape == original.shape
    change = np.abs(result - original).mean(axis=2)
    x0, y0, x1, y1 = FACE
    mirrored = change[y0:y1, WIDTH - x1 : WIDTH - x0]
    assert mirrored.mean() > 10, f"the face changed by {mirrored.mean():.1f} only"
    for corner in (change[:80, :80], change[-80:, -80:], change[-80:, :80]):
        assert corner.mean() < 4, f"the background changed by {corner.mean():.1f}"


def test_live_page_filters_the_camera_and_survives_what_users_do(live_server, tmp_path):
    with sync_api.sync_playwright() as playwright:
        camera = live_server.photos["camera"]
        browser = launch_chromium(playwright, [*CHROMIUM_FLAGS, *fake_camera(camera)])
        page = open_live(browser, live_server)
        more_frames(page, 5)  # the first frames search the whole frame
        rate = more_frames(page, 20)
        print(f"live page: {rate:.1f} frames a second (tiny 32 px run, torch, while testing)")
        face_filtered_only(last_frame(page))
        sync_api.expect(page.locator("#live-message")).to_contain_text("1 face")
        page.screenshot(path=os.environ.get("FACEFILTER_SCREENSHOT") or tmp_path / "live.png")

        page.locator("#live-camera button", has_text="Stop").first.click()  # the camera stops
        page.wait_for_timeout(1000)
        stopped = shown(page)
        page.wait_for_timeout(1500)
        assert shown(page) <= stopped + 1, "frames kept coming after the camera stopped"
        record(page)  # and starts again
        more_frames(page, 5)

        page.locator("#live-run input").click()  # another run, mid-stream
        page.get_by_role("option", name="trvae").click()
        sync_api.expect(page.locator("#live-target input")).to_have_value("photo → anime")
        more_frames(page, 5)
        assert "error" not in page.inner_text("#live-message")

        closing = open_live(browser, live_server)  # a second tab: the two take turns
        more_frames(closing, 3, seconds=6 * TURN)
        more_frames(page, 3, seconds=6 * TURN)
        closing.close()  # closed mid-stream
        more_frames(page, 10, seconds=6 * TURN)
        browser.close()
    assert "Traceback" not in live_server.log.read_text()
    assert live_server.child.poll() is None
