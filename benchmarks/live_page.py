"""Frames a second on the demo's live page, round trip, as a user sees them.

A benchmark, run on demand, alone on the machine (not a test):

    python benchmarks/live_page.py [--seconds 20] [--size 128] [--engine onnx]
        [--configs "--detect-every 1;;--threads 1"]

It trains nothing worth keeping: `cyclegan-lite` at --size in its default config for
one step (speed does not depend on training), exports it to ONNX, serves it with
`facefilter demo` and opens the Live tab in Debian's chromium (Playwright) with a fake
camera: a 640x480 Y4M clip of the astronaut moving slowly, with sensor noise. It counts
the filtered frames the page shows (each a new image in the page: capture, JPEG, send,
decode, track, filter, paste, encode, fetch, show) over --seconds after a warm-up, and
prints them beside the server's own pace (frames it filtered a second, from the page's
message). Each of --configs (`facefilter demo` flags, `;` between them; empty: the
defaults) is served and measured in turn, in the same run. The goal: 12 frames a second
at 640x480 with cyclegan-lite at 128 px on onnxruntime on a 2-core CPU; the browser
shares those two cores.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

from facefilter.data.real_photos import astronaut
from facefilter.demo.app import FRAMES_SHOWN
from facefilter.inference.video_writers import write_y4m

CONFIGS = "--detect-every 1;;--threads 1;--upsample 0;--threads 1 --upsample 0"
FACEFILTER = [sys.executable, "-c", "from facefilter.console import run; run()"]
CHROMIUM = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]  # fmt: skip


def camera_clip(path: Path, frames: int = 60) -> Path:
    """640x480: the astronaut drifting 1 px a frame and back, with fresh sensor noise."""
    rng = np.random.default_rng(0)
    face = np.asarray(Image.fromarray(astronaut()).resize((480, 480)))
    clip = []
    for index in range(frames):
        frame = np.full((480, 640, 3), 96, np.uint8)
        left = 80 + (index if index < frames // 2 else frames - index) - frames // 4
        frame[:, left : left + 480] = face
        clip.append(np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8))
    return write_y4m(path, clip)


def model(folder: Path, size: int, engine: str) -> Path:
    """A cyclegan-lite run at `size` (one training step), exported for onnx."""
    run = folder / "run"
    subprocess.run([*FACEFILTER, "train", "cyclegan-lite", "--data-a", "synth:photo?count=8",
                    "--data-b", "synth:anime?count=8", "--size", str(size), "--batch-size", "1",
                    "--max-steps", "1", "--num-workers", "0", "--no-progress", "--out",
                    str(run)], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    if engine == "torch":
        return run
    export = folder / "export"
    subprocess.run([*FACEFILTER, "export", str(run), "-o", str(export)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return export


def serve(target: Path, flags: list[str], port: int, log: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [*FACEFILTER, "demo", str(target), *flags, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
        env={**os.environ, "GRADIO_TEMP_DIR": str(log.parent)},
    )  # fmt: skip
    assert child.stdout is not None
    for line in child.stdout:
        if "serving" in line:
            return child
    raise SystemExit(f"the demo did not start; see {log}")


def measure(port: int, clip: Path, seconds: float, warmup: float) -> tuple[float, str]:
    """(frames a second the page showed, the page's last message)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[*CHROMIUM, f"--use-file-for-fake-video-capture={clip}"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}")
        page.get_by_role("tab", name="Live").click()
        page.get_by_text("Click to Access Webcam").click()
        page.locator("#live-camera button", has_text="Record").first.click()
        page.evaluate(FRAMES_SHOWN)
        page.wait_for_timeout(warmup * 1000)
        start, began = page.evaluate("window.frames_shown"), time.monotonic()
        page.wait_for_timeout(seconds * 1000)
        shown = page.evaluate("window.frames_shown") - start
        rate = shown / (time.monotonic() - began)
        message = page.inner_text("#live-message")
        browser.close()
    return rate, message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--engine", choices=("onnx", "torch"), default="onnx")
    parser.add_argument("--configs", default=CONFIGS, help="demo flags to compare, ';' between")
    parser.add_argument("--port", type=int, default=7871)
    args = parser.parse_args()
    print(f"live page, 640x480 camera, cyclegan-lite {args.size} px on {args.engine}, "
          f"{os.cpu_count()} CPU cores shared with the browser; frames a second:")  # fmt: skip
    print(f"{'demo flags':>24}  {'page':>5}  {'server':>6}  goal 12 in the page")
    with tempfile.TemporaryDirectory(prefix="live-page-") as folder:
        root = Path(folder)
        clip = camera_clip(root / "camera.y4m")
        target = model(root, args.size, args.engine)
        for config in args.configs.split(";"):
            flags = ["--engine", args.engine, *config.split()]
            child = serve(target, flags, args.port, root / "server.log")
            try:
                rate, message = measure(args.port, clip, args.seconds, args.warmup)
            finally:
                child.terminate()
                child.wait(timeout=30)
            pace = re.search(r"([\d.]+) frames a second", message)
            server = pace.group(1) if pace else "?"
            print(f"{config or '(defaults)':>24}  {rate:5.1f}  {server:>6}  "
                  f"{'PASS' if rate >= 12 else 'FAIL'}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
