"""The demo page served for real: `facefilter demo` in a child process on a free port,
driven by Debian's chromium through Playwright, and loaded with 16 requests, 4 at a
time, through gradio_client. No network, no GPU, no browser download: `make test`
installs chromium with apt-get (FACEFILTER_SKIP_BROWSER=1 skips only the browser test).

FACEFILTER_DEMO_RUN=runs/demo FACEFILTER_SCREENSHOT=docs/demo_page.jpg pytest
tests/test_demo_web.py -k browser  takes the README's screenshot on a trained run.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_photo_anime_run
from facefilter.cli.main import main

pytest.importorskip("dlib")
skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("gradio")

FACEFILTER = [sys.executable, "-c", "from facefilter.console import run; run()"]
MAX_UPLOAD_MB = 1
TINY_TRVAE = ["--channels", "8", "16", "--latent-dim", "8", "--mmd-dim", "16"]
FACE_BOX = (170, 80, 270, 200)  # x0, y0, x1, y1: around the astronaut's face
CHROMIUM_FLAGS = [  # as the machine's notes advise: no sandbox as root, no calls out
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@dataclass
class Server:
    url: str
    child: subprocess.Popen[str]
    run: str  # the run's name in the page
    log: Path  # the server's stderr
    uploads: Path  # Gradio's folder for uploads and results
    photos: dict[str, Path]


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, 0), family=family) as probe:
        return int(probe.getsockname()[1])


def wait_for_url(child: subprocess.Popen[str], timeout: float = 180) -> str:
    """The URL the demo announces on stdout once it serves."""
    deadline = time.monotonic() + timeout
    assert child.stdout is not None
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if "serving" in line:
            return line.split(" at ", 1)[1].split()[0]
        if not line and child.poll() is not None:
            pytest.fail(f"the demo exited with {child.returncode}")
    pytest.fail("the demo did not start serving in time")


@pytest.fixture
def server(tmp_path) -> Iterator[Server]:
    """A demo of its own per test (each one ends it its own way)."""
    root = tmp_path
    run = Path(os.environ.get("FACEFILTER_DEMO_RUN") or tiny_photo_anime_run(root / "run"))
    trvae = root / "trvae"  # a second run, whose targets name their sources
    assert main(["train", "trvae", "--data", "synth:photo,anime,cartoon?count=12", "--size", "32",
                 "--batch-size", "6", "--max-steps", "1", "--num-workers", "0", "--no-progress",
                 "--out", str(trvae), *TINY_TRVAE]) == 0  # fmt: skip
    astronaut = skimage_data.astronaut()
    photos = {"astronaut": root / "astronaut.png", "mirrored": root / "mirrored.png",
              "heavy": root / "heavy.png"}  # fmt: skip
    Image.fromarray(astronaut).save(photos["astronaut"])
    Image.fromarray(astronaut[:, ::-1]).save(photos["mirrored"])
    noise = np.random.default_rng(0).integers(0, 256, (800, 800, 3), dtype=np.uint8)
    Image.fromarray(noise).save(photos["heavy"])  # ~1.9 MB: over the 1 MB cap
    with demo_child(root, [run, trvae], photos) as served:
        yield served


@contextmanager
def demo_child(
    root: Path,
    runs: list[Path],
    photos: dict[str, Path],
    host: str = "127.0.0.1",
    extra: tuple[str, ...] = (),
) -> Iterator[Server]:
    """`facefilter demo RUNS` in a child on a free port of `host`, until the block ends."""
    uploads, log = root / "gradio", root / "server.log"
    child = subprocess.Popen(
        [*FACEFILTER, "demo", *map(str, runs), "--host", host, "--port", str(free_port(host)),
         "--max-upload-mb", str(MAX_UPLOAD_MB), "--queue-size", "8", "--concurrency", "4",
         *extra],
        stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
        env={**os.environ, "GRADIO_TEMP_DIR": str(uploads)},
    )  # fmt: skip
    try:
        yield Server(wait_for_url(child), child, runs[0].name, log, uploads, photos)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def pixels(path: Path | str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def face_filtered(result: np.ndarray, original: np.ndarray) -> None:
    """Same size; the face changed, the photo's corners did not."""
    assert result.shape == original.shape
    change = np.abs(result - original).mean(axis=2)
    x0, y0, x1, y1 = FACE_BOX
    assert change[y0:y1, x0:x1].mean() > 10
    assert change[:60, :60].max() == 0 and change[-60:, -60:].max() == 0


def launch_chromium(playwright, flags: list[str] = CHROMIUM_FLAGS):
    browser = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(browser).exists():
        if os.environ.get("FACEFILTER_SKIP_BROWSER") == "1":
            pytest.skip("FACEFILTER_SKIP_BROWSER=1 and no chromium")
        pytest.fail("the browser test needs Debian's chromium: make install (apt-get install "
                    "chromium), or FACEFILTER_SKIP_BROWSER=1 to skip it")  # fmt: skip
    return playwright.chromium.launch(executable_path=browser, args=flags)


def test_browser_upload_pick_filter_and_download(server, tmp_path):
    import httpx

    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 960}, accept_downloads=True)
        page.goto(server.url)
        page.locator("#target input").click()
        page.get_by_role("option", name="anime").click()
        page.set_input_files("#photo input[type=file]", server.photos["astronaut"])
        page.locator("#photo img").wait_for()
        page.click("#filter")
        sync_api.expect(page.locator("#message")).to_contain_text("1 face found", timeout=60_000)
        assert "filtered to anime at strength 1" in page.inner_text("#message")
        with page.expect_download() as download:
            page.click("#result a[download]")
        saved = tmp_path / "result.png"
        download.value.save_as(saved)
        face_filtered(pixels(saved), pixels(server.photos["astronaut"]))
        page.screenshot(path=os.environ.get("FACEFILTER_SCREENSHOT") or tmp_path / "page.png",
                        full_page=True)  # fmt: skip

        page.locator("#run input").click()  # another run: its own targets
        page.get_by_role("option", name="trvae").click()
        page.locator("#target input").click()
        options = page.locator("#target [role=option]").all()
        offered = [option.inner_text().strip(" ✓\n") for option in options]
        assert "photo → cartoon" in offered and "anime → photo" in offered and len(offered) == 6
        page.get_by_role("option", name="photo → cartoon").click()
        page.click("#filter")
        sync_api.expect(page.locator("#message")).to_contain_text("filtered to photo → cartoon")

        assert page.locator("#examples button").count() == 7  # the astronaut, 3 photo, 3 anime
        page.locator("#examples button").nth(1).click()  # a synthetic photo
        sync_api.expect(page.locator("#photo img")).to_have_attribute("src", re.compile("synth"))
        page.click("#filter")
        message = page.locator("#message")
        sync_api.expect(message).to_contain_text(re.compile(r"in this (64|128|256)x\1 image"))

        page.set_input_files("#photo input[type=file]", server.photos["heavy"])
        sync_api.expect(page.get_by_text("exceed the maximum allowed size")).to_be_visible()
        browser.close()
    # A client that skips the page's own check is stopped while the file streams in.
    with open(server.photos["heavy"], "rb") as heavy:
        answer = httpx.post(f"{server.url}gradio_api/upload", files={"files": heavy})
    assert answer.status_code == 413 and "maximum allowed size" in answer.text
    assert not any(p.stat().st_size > MAX_UPLOAD_MB * 2**20 for p in server.uploads.rglob("*")
                   if p.is_file())  # fmt: skip


def test_no_path_the_client_names_is_read(server, tmp_path):
    import httpx

    secret = Path.cwd() / "pyproject.toml"  # the server's working folder: runs live there
    for path in (secret, Path("/etc/passwd"), server.photos["astronaut"]):
        served = httpx.get(f"{server.url}gradio_api/file={path}")
        assert served.status_code == 403, path
    bad = {"path": str(server.photos["astronaut"]), "meta": {"_type": "gradio.FileData"}}
    call = httpx.post(f"{server.url}gradio_api/call/filter",
                      json={"data": [bad, server.run, "anime", 1.0, "all", False]})  # fmt: skip
    assert call.status_code == 200 and logged(server, "it was not uploaded by a user")
    # A small file of many pixels (64 MP of gray) is refused from its header, undecoded.
    from gradio_client import Client, handle_file

    gray = tmp_path / "gray.png"
    Image.new("L", (8000, 8000), 128).save(gray)  # 79 KB
    client = Client(server.url, verbose=False, download_files=str(tmp_path / "answers"))
    image, message = client.predict(handle_file(str(gray)), server.run, "anime", 1.0, "all",
                                    False, api_name="/filter")  # fmt: skip
    assert image is None and "(64.0 megapixels); this demo takes up to 16" in message
    kept = [p for p in server.uploads.rglob("*.png") if Image.open(p).size == (8000, 8000)]
    assert kept == []  # neither the upload nor a converted copy of it stays
    server.child.send_signal(signal.SIGTERM)
    assert server.child.wait(timeout=30) == 0


def logged(server: Server, text: str, seconds: float = 60) -> bool:
    """Whether the server's log says `text` within `seconds` (a refused API call is
    logged there; its event stream is not always delivered to a late listener)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in server.log.read_text():
            return True
        time.sleep(0.2)
    return False


def resident_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_sixteen_requests_four_at_a_time_are_answered_then_it_stops(server, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server.url, verbose=False, download_files=str(tmp_path))
    names = ["astronaut", "mirrored"] * 8
    runs = {"astronaut": (server.run, "anime"), "mirrored": ("trvae", "photo → anime")}

    def ask(name: str) -> tuple[str, str]:  # two runs, filtering side by side
        photo = handle_file(str(server.photos[name]))
        run, target = runs[name]
        return client.predict(photo, run, target, 1.0, "all", False, api_name="/filter")

    ask("astronaut"), ask("mirrored")  # warm: the first requests build the translators
    before = resident_megabytes(server.child.pid)
    began = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, names))
    after = resident_megabytes(server.child.pid)
    print(f"16 requests, 4 at a time: {time.perf_counter() - began:.1f} s; "
          f"server memory {before:.0f} -> {after:.0f} MB")  # fmt: skip
    assert len(answers) == 16
    assert all(message.startswith("1 face found") for _, message in answers)
    results = {name: [pixels(image) for (image, _), n in zip(answers, names, strict=True)
                      if n == name] for name in ("astronaut", "mirrored")}  # fmt: skip
    for images in results.values():  # each answer is its own request's, none mixed up
        assert len(images) == 8 and all(np.array_equal(image, images[0]) for image in images)
    face_filtered(results["astronaut"][0], pixels(server.photos["astronaut"]))
    mirrored = pixels(server.photos["mirrored"])
    assert np.abs(results["mirrored"][0] - mirrored).mean() > 0.5  # the trVAE's work too
    assert after - before < 150, f"memory grew from {before:.0f} MB to {after:.0f} MB"
    server.child.send_signal(signal.SIGTERM)  # as a service manager stops it
    assert server.child.wait(timeout=30) == 0
    assert "facefilter demo: stopped" in server.child.stdout.read()  # type: ignore[union-attr]
    assert "Traceback" not in server.log.read_text()


# --- hostile requests, answered alike on the IPv4 and the IPv6 loopback ------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return tiny_photo_anime_run(tmp_path_factory.mktemp("tiny") / "run")


@pytest.fixture(scope="module", params=["127.0.0.1", "::1"])
def loopback(request, tiny_run, tmp_path_factory) -> Iterator[Server]:
    """The tiny run served on one loopback address (`--host ::1` once crashed at start)."""
    root = tmp_path_factory.mktemp("loopback")
    photos = {"astronaut": root / "astronaut.png"}
    Image.fromarray(skimage_data.astronaut()).save(photos["astronaut"])
    with demo_child(root, [tiny_run], photos, host=request.param) as served:
        yield served


def told(client, server: Server, photo: object) -> str:
    """What a client is told of `photo`: the answer's message, or the text of the error."""
    try:
        _, message = client.predict(photo, server.run, "anime", 1.0, "all", False,
                                    api_name="/filter")  # fmt: skip
    except Exception as error:  # gradio_client's AppError carries Gradio's own error text
        return f"error: {error}"
    return message


def png_claiming(width: int, height: int, pixels: bool = False) -> bytes:
    """A gray PNG whose header says width x height: with no pixel data at all, or with
    every row of zeros (a real image, about 1000 times smaller than its pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = b""
    if pixels:
        squeeze, row = zlib.compressobj(9), bytes(width + 1)  # a filter byte, then zeros
        idat = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
        rows = chunk(b"IDAT", idat)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + rows + chunk(b"IEND", b"")


def inline(data: bytes) -> dict:
    """A photo inside the API call itself, as a base64 data URL."""
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    return {"url": url, "meta": {"_type": "gradio.FileData"}}


def test_the_page_serves_on_the_loopback_address_asked_for(loopback, tmp_path):
    from gradio_client import Client, handle_file

    assert loopback.url.startswith(("http://127.0.0.1:", "http://[::1]:"))
    assert "--host" not in loopback.log.read_text()  # loopback: no warning
    client = Client(loopback.url, verbose=False, download_files=str(tmp_path))
    told_of = told(client, loopback, handle_file(str(loopback.photos["astronaut"])))
    assert told_of.startswith("1 face found")


def test_an_inline_photo_is_refused_from_its_length_and_header(loopback):
    from gradio_client import Client

    client = Client(loopback.url, verbose=False)
    for png in (png_claiming(20000, 20000), png_claiming(20000, 20000, pixels=True)):
        began = time.perf_counter()
        told_of = told(client, loopback, inline(png))
        assert time.perf_counter() - began < 3  # Gradio decoded the 400 MP for 11 s
        assert told_of.startswith("the photo is 20000x20000 (400.0 megapixels); this demo")
    heavy = inline(np.random.default_rng(0).bytes(3 * 2**20 // 2))  # 1.5 MB, not decoded
    assert told(client, loopback, heavy).startswith("the photo is 1.5 MB; this demo takes")


def test_unreadable_uploads_are_answered_without_server_paths(loopback, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(loopback.url, verbose=False, download_files=str(tmp_path / "answers"))
    cases = {
        "junk.png": (b"not an image", "the photo is not an image this demo can read"),
        "empty.png": (b"", "the photo is not an image this demo can read"),
        "huge.png": (png_claiming(30000, 30000), "the photo has far too many pixels"),
    }
    for name, (data, expected) in cases.items():
        (tmp_path / name).write_bytes(data)
        told_of = told(client, loopback, handle_file(str(tmp_path / name)))
        assert str(loopback.uploads) not in told_of and told_of.startswith(expected), told_of


def test_api_callers_see_named_inputs_and_get_a_labelled_png(loopback, tmp_path):
    """gradio_client sees /filter's inputs by name (they were param_0 ... param_5), calls
    it with keywords as the README does, and the PNG it gets says a filter made it."""
    from gradio_client import Client, handle_file

    from test_provenance import exiftool

    client = Client(loopback.url, verbose=False, download_files=str(tmp_path))
    api = client.view_api(print_info=False, return_format="dict")
    inputs = [p["parameter_name"] for p in api["named_endpoints"]["/filter"]["parameters"]]
    assert inputs == ["photo", "filter", "target", "strength", "faces", "outline"]
    photo = handle_file(str(loopback.photos["astronaut"]))
    image, message = client.predict(
        photo=photo, filter=loopback.run, target="anime", api_name="/filter"
    )
    assert message.startswith("1 face found") and Path(image).suffix == ".png"
    face_filtered(pixels(image), pixels(loopback.photos["astronaut"]))
    (tags,) = exiftool(Path(image))
    assert tags["DigitalSourceType"].endswith("/compositeWithTrainedAlgorithmicMedia")
    assert tags["Filter"] == f"{loopback.run} (cyclegan-lite)" and tags["Target"] == "anime"
