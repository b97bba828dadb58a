"""`facefilter demo`: the flags of the web page over trained filters (`facefilter.demo`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from facefilter.cli.flags import Detection, Running, Runtime
from facefilter.errors import UserError
from facefilter.face.detect import DetectorSettings


@dataclass
class Demo:
    """Serve a web page over trained filters: upload a photo or take one with the webcam,
    choose the filter, target and strength, see the faces filtered and pasted back, and
    download the result; or filter the camera live. Binds 127.0.0.1 unless --host says
    otherwise."""

    runs: Annotated[
        tuple[Path, ...],
        tyro.conf.Positional,
        tyro.conf.arg(
            metavar="RUN [RUN ...]",
            help_behavior_hint="(required)",
            help="run directories, export folders or exported .onnx files",
        ),
    ]
    port: int = 7860  # the page is at http://HOST:PORT
    host: str = "127.0.0.1"  # 0.0.0.0 serves other machines too (a warning is printed)
    share: bool = False  # also ask Gradio for a public link (needs internet)
    max_upload_mb: float = 10.0  # larger uploads are refused before they are stored
    max_megapixels: float = 16.0  # larger photos are refused before they are decoded
    concurrency: int = 1  # requests filtered at once; others wait in the queue
    queue_size: int = 16  # requests waiting at most; more are told to try again
    detect_every: int = 2  # live page: camera frames between face detections (tracked between)
    live_turn: float = 60.0  # live page: seconds a camera stream holds the filter while others wait
    detection: Detection = field(default_factory=DetectorSettings)
    running: Running = field(default_factory=Runtime)


def run_demo(command: Demo) -> int:
    from facefilter.demo.app import Serving, serve
    from facefilter.demo.service import DemoService, Engine, Limits

    serving = Serving(host=command.host, port=command.port, share=command.share,
                      concurrency=command.concurrency, queue_size=command.queue_size,
                      live_turn=command.live_turn)  # fmt: skip
    serving.check()  # a taken port is refused before the models load
    if command.detect_every < 1:
        raise UserError(f"--detect-every must be 1 or more, got {command.detect_every}")
    limits = Limits(command.max_upload_mb, command.max_megapixels)
    engine = Engine(command.running.engine, command.running.device, command.detection,
                    command.running.precision, command.running.threads,
                    command.detect_every)  # fmt: skip
    service = DemoService(command.runs, engine, limits)
    serve(service, serving, limits.max_megabytes)
    return 0
