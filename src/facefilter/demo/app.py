"""The demo's web page (Gradio): widgets over `DemoService`, which does all the work.

Safe by default: it binds the loopback address, makes no public link unless asked,
caps uploads before they are stored (Gradio refuses a file over --max-upload-mb while
it streams in) and before they are decoded (the header's pixel count), queues a bounded
number of requests, and never takes a path from the browser: runs and targets are
chosen from lists the server made.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facefilter.demo.live import LiveSession, live_frame
from facefilter.demo.service import MEGABYTE, Answer, DemoService, InlineImage, write_examples
from facefilter.errors import UserError
from facefilter.pictures import save_picture

STRENGTH = "0: unchanged, 1: the full filter, >1: exaggerated"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
LIVE_EVERY = 0.02  # seconds between camera frames at most; the answer sets the pace
CACHE_SWEEP = (600, 1800)  # every 10 min, delete uploads and results older than 30 min
INTRO = (
    "# facefilter\n"
    "Upload a photo with a face (or take one with the webcam), choose a filter and a "
    "target, and press **Filter**. Faces are found, aligned, filtered and pasted back "
    "into the whole photo; the result can be downloaded with the button above it. "
    "**Live** filters the camera as it streams."
)
LIVE_RESULT = "live-result"  # the element the filtered frames are shown in
# For a browser test or benchmark (page.evaluate): counts in window.frames_shown each new
# frame the page shows, seen as the page changes (polling would cost the CPU it measures)
FRAMES_SHOWN = f"""() => {{
  window.frames_shown = 0;
  new MutationObserver(() => {{
    const shown = document.querySelector('#{LIVE_RESULT} img');
    if (shown && shown.src !== window.last_src) {{
      window.last_src = shown.src;
      window.frames_shown++;
    }}
  }}).observe(document.body, {{subtree: true, childList: true, attributes: true,
                               attributeFilter: ['src']}});
}}"""
LIVE_INTRO = (
    "Allow the camera, press record, and the filtered frames appear here; change the "
    "filter, target or strength while it runs."
)


@dataclass(frozen=True)
class Serving:
    """Where and how the page is served (the `facefilter demo` flags)."""

    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    concurrency: int = 1
    queue_size: int = 16
    live_turn: float = 60.0  # seconds a live stream holds the filter when others wait

    def warnings(self) -> list[str]:
        """What to tell the user about who can reach the page, if anyone but them can."""
        said = []
        if self.address not in LOOPBACK:
            said.append(f"warning: --host {self.host} lets anyone who can reach this "
                        f"machine's port {self.port} use the demo and its CPU/GPU")  # fmt: skip
        if self.share:
            said.append("warning: --share makes a public link: anyone who has it can use the demo")
        return said

    def check(self) -> None:
        if not 1 <= self.port <= 65535:
            raise UserError(f"--port {self.port} must be between 1 and 65535")
        if self.concurrency < 1:
            raise UserError(f"--concurrency {self.concurrency} must be at least 1")
        if not 1 <= self.live_turn <= 86400:
            raise UserError(f"--live-turn {self.live_turn} must be 1 to 86400 seconds")
        if self.queue_size < 1:
            raise UserError(f"--queue-size {self.queue_size} must be at least 1")
        # Gradio tries the port on 127.0.0.1 before it binds the host, and takes a refusal
        # there for a crash: a port taken only on 127.0.0.1 is refused here too
        for address in {self.address, "127.0.0.1"}:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            try:
                with socket.create_server((address, self.port), family=family):
                    pass
            except OSError as error:
                raise UserError(f"cannot serve on {self.host}:{self.port} ({error.strerror}); "
                                "choose another --port or --host") from None  # fmt: skip

    @property
    def address(self) -> str:
        """The address to bind: the host without the brackets of a URL (`[::1]` -> `::1`)."""
        return self.host.removeprefix("[").removesuffix("]")

    @property
    def url_host(self) -> str:
        """The host as Gradio's `server_name` takes it: an IPv6 address in brackets, which
        Gradio strips to bind but keeps in the URL it builds and calls at startup (a bare
        `::1` makes that URL unparsable, `http://::1:7860/`)."""
        return f"[{self.address}]" if ":" in self.address else self.address


def import_gradio() -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine
    try:
        import gradio
    except ImportError:
        raise UserError("the demo needs Gradio: pip install 'facefilter[demo]'") from None
    return gradio


def sent_frame(payload: object) -> InlineImage | None:
    """A live frame as the browser streams it: a `data:` URL, bare or in a payload. Never
    a path: a camera frame is always inline, and whatever else a client sends is no frame
    (a path named by a client must not reach the filesystem)."""
    url = payload.get("url") if isinstance(payload, dict) else payload
    return InlineImage(url) if isinstance(url, str) and url.startswith("data:") else None


def sent_photo(payload: dict[str, Any] | None) -> str | InlineImage | None:
    """The photo as the client sent it, undecoded: an `InlineImage` for a base64 `data:`
    URL (as Gradio's Image takes one first), else the path of the uploaded file, which
    Gradio has already checked is in its upload folder. Gradio's own preprocessing would
    decode a data URL before any size check (a 400 MP image for 11 s) and, on a file it
    cannot open, answer with an error showing the server's upload path."""
    if payload is None:
        return None
    url = payload.get("url") or ""
    return InlineImage(url) if url.startswith("data:") else payload.get("path")


class Results:
    """The filtered photos as PNG files that carry the "made by a filter" label (Gradio
    would encode an array itself, without it), in a folder of the server's own; a file
    is deleted once it is older than the cache's sweep age, by then long served."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(exist_ok=True)

    def save(self, answer: Answer) -> str | None:
        if answer.image is None:
            return None
        self.sweep(time.time() - CACHE_SWEEP[1])
        path = self.folder / f"filtered-{uuid.uuid4().hex[:12]}.png"
        save_picture(path, answer.image, provenance=answer.label)
        return str(path)

    def sweep(self, before: float) -> None:
        for old in self.folder.glob("filtered-*.png"):
            with contextlib.suppress(OSError):  # another request swept it first
                if old.stat().st_mtime < before:
                    old.unlink()


def build_page(
    service: DemoService, examples: list[Path], results: Results, serving: Serving = Serving()
) -> Any:
    """The page: a Photo tab (a photo filtered on request) and a Live tab (the camera
    filtered as it streams)."""
    gr = import_gradio()
    with gr.Blocks(title="facefilter demo", analytics_enabled=False,
                   delete_cache=CACHE_SWEEP) as page:  # fmt: skip
        gr.Markdown(INTRO)
        with gr.Tab("Photo", id="photo-tab", elem_id="photo-tab"):
            photo_tab(gr, service, examples, results)
        with gr.Tab("Live", id="live-tab", elem_id="live-tab"):
            live_tab(gr, service, serving)
    return page


def settings_for(gr: Any, service: DemoService, prefix: str = "") -> tuple[Any, Any, Any]:
    """The filter, target and strength widgets, the target's choices following the filter."""
    runs = list(service.runs)
    run = gr.Dropdown(runs, value=runs[0], label="Filter", elem_id=f"{prefix}run")
    target = gr.Dropdown(service.targets(runs[0]), value=service.targets(runs[0])[0],
                         allow_custom_value=True,  # API callers name any run's
                         label="Target", elem_id=f"{prefix}target")  # fmt: skip
    strength = gr.Slider(0, 2, value=1, step=0.05, label="Strength", info=STRENGTH,
                         elem_id=f"{prefix}strength")  # fmt: skip

    def choose_run(name: str) -> Any:
        choices = service.targets(name)
        return gr.Dropdown(choices=choices, value=choices[0] if choices else None)

    run.change(choose_run, inputs=run, outputs=target, api_name=False)
    return run, target, strength


def photo_tab(gr: Any, service: DemoService, examples: list[Path], results: Results) -> None:
    """Photo, filter, target, strength, faces and outline on the left; the filtered
    photo, a message and its download button on the right."""
    with gr.Row():
        with gr.Column():
            # Gradio never opens the photo (sent_photo); were it to, image_mode=None would
            # keep it from decoding a 64 MP gray PNG for a colour conversion
            photo = gr.Image(label="Photo", sources=["upload", "webcam", "clipboard"],
                             type="filepath", image_mode=None, elem_id="photo")  # fmt: skip
            run, target, strength = settings_for(gr, service)
            faces = gr.Radio(["all", "largest"], value="all", label="Faces to filter")
            outline = gr.Checkbox(False, label="Outline the faces found")
            button = gr.Button("Filter", variant="primary", elem_id="filter")
        with gr.Column():
            result = gr.Image(label="Filtered", type="filepath", format="png",
                              interactive=False, buttons=["download", "fullscreen"],
                              elem_id="result")  # fmt: skip
            message = gr.Markdown(elem_id="message")
    if examples:
        gr.Examples([[str(path)] for path in examples], [photo], elem_id="examples")
    settings = [run, target, strength, faces, outline]

    # The parameters' names are the API's: gradio_client shows /filter as taking
    # photo, filter, target, strength, faces and outline (a `*args` handler was
    # param_0 ... param_5 to every API caller)
    def filter_photo(
        photo: dict[str, Any] | None,
        filter: str,  # the run: the API's name for it, shadowing the builtin here only
        target: str,
        strength: float,
        faces: str,
        outline: bool,
    ) -> tuple[Any, str]:
        # The event skips Gradio's preprocessing for the photo's sake (sent_photo);
        # the other inputs keep theirs (the slider's bounds, the radio's choices)
        sent = (filter, target, strength, faces, outline)
        values = [field.preprocess(value) for field, value in zip(settings, sent, strict=True)]
        answer: Answer = service.filter_photo(sent_photo(photo), *values)
        return results.save(answer), answer.message

    button.click(filter_photo, inputs=[photo, *settings], outputs=[result, message],
                 api_name="filter", preprocess=False)  # fmt: skip


def live_tab(gr: Any, service: DemoService, serving: Serving) -> None:
    """The camera on the left, streamed frame by frame; the filtered frames on the right.
    The browser sends the next frame once the last is answered (Gradio drops the frames
    in between), so a slow filter lowers the frame rate instead of adding delay."""
    with gr.Row():
        with gr.Column():
            camera = gr.Image(label="Camera", sources=["webcam"], streaming=True,
                              elem_id="live-camera")  # fmt: skip
            run, target, strength = settings_for(gr, service, "live-")
        with gr.Column():
            shown = gr.Image(label="Filtered live", streaming=True, format="jpeg",
                             interactive=False, elem_id=LIVE_RESULT)  # fmt: skip
            message = gr.Markdown(LIVE_INTRO, elem_id="live-message")
    session = gr.State(None)  # a tab's LiveSession, made on its first frame
    settings = [run, target, strength]

    def stream_frame(
        frame: Any, state: LiveSession | None, filter: str, target: str, strength: float
    ) -> tuple[Any, str, LiveSession]:
        state = state if isinstance(state, LiveSession) else LiveSession()
        sent = (filter, target, strength)
        try:  # a crafted client's values: a message, never a stopped stream
            values = [field.preprocess(value) for field, value in zip(settings, sent, strict=True)]
        except Exception:
            return None, "the filter, target or strength sent is not one the page offers", state
        answer = live_frame(service, state, sent_frame(frame), *values)
        return answer.image, answer.message, state

    camera.stream(stream_frame, inputs=[camera, session, *settings],
                  outputs=[shown, message, session], stream_every=LIVE_EVERY,
                  time_limit=serving.live_turn, concurrency_limit=serving.concurrency,
                  preprocess=False, api_name=False, show_progress="hidden")  # fmt: skip


def serve(service: DemoService, serving: Serving, max_megabytes: float) -> None:
    """Serve until Ctrl-C or SIGTERM, then close the server and return. The caller runs
    `serving.check()` first (`run_demo` does, before the models load)."""
    gr = import_gradio()
    for warning in serving.warnings():
        print(warning, file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="facefilter-demo-") as folder:
        examples = write_examples(Path(folder), service)
        page = build_page(service, examples, Results(Path(folder) / "results"), serving)
        page.queue(max_size=serving.queue_size, default_concurrency_limit=serving.concurrency)
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            _, local_url, share_url = page.launch(
                server_name=serving.url_host, server_port=serving.port, share=serving.share,
                max_file_size=int(max_megabytes * MEGABYTE), allowed_paths=[folder],
                prevent_thread_lock=True, quiet=True, show_error=True, ssr_mode=False,
                theme=gr.themes.Default(),
            )  # fmt: skip
            shown = share_url or local_url
            print(f"facefilter demo: serving {', '.join(service.runs)} at {shown} "
                  "(Ctrl-C stops it)", flush=True)  # fmt: skip
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            page.close(verbose=False)
    print("facefilter demo: stopped", flush=True)
