"""Video writers: H.264 with the input's sound through the ffmpeg that imageio-ffmpeg
ships (what browsers and phones play), else OpenCV's own codecs (mp4v, MJPG; silent).
Both take RGB frames and raise an OSError naming the file when the video is not whole."""

from __future__ import annotations

import contextlib
import errno
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from facefilter.errors import UserError
from facefilter.face.arrays import import_cv2
from facefilter.safe_io import atomic_write, free_megabytes

CODECS = {".avi": "MJPG"}  # everything else: mp4v, which opencv-python writes without ffmpeg
DEFAULT_CODEC = "mp4v"
H264_EXTENSIONS = (".mp4", ".mov", ".m4v")  # written as H.264 when imageio-ffmpeg is there


def open_writer(path: Path, fps: float, width: int, height: int, audio: Path | None = None) -> Any:
    """A writer for `path`; `audio` is the video whose sound to carry over."""
    ffmpeg = find_ffmpeg()
    if ffmpeg is not None and path.suffix.lower() in H264_EXTENSIONS:
        return FfmpegWriter(ffmpeg, path, fps, width, height, audio)
    cv2 = import_cv2()
    codec = CODECS.get(path.suffix.lower(), DEFAULT_CODEC)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    if not writer.isOpened():
        raise UserError(f"cannot write video {path} with codec {codec}; try -o OUT.avi or .mp4")
    return OpenCVWriter(writer, path)


def find_ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):  # not installed, or no binary for this platform
        return None


class OpenCVWriter:
    """cv2.VideoWriter taking RGB frames (mp4v or MJPG; no audio)."""

    def __init__(self, writer: Any, path: Path) -> None:
        self.writer, self.path = writer, path

    def write(self, rgb: np.ndarray) -> None:
        self.writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))

    def release(self) -> None:
        self.writer.release()

    def check(self) -> None:
        """After release: OpenCV drops frames silently when the disk fills, so read the
        file back once."""
        cv2 = import_cv2()
        capture = cv2.VideoCapture(str(self.path))
        readable = capture.isOpened() and capture.read()[0]
        capture.release()
        if not readable:
            code = errno.ENOSPC if free_megabytes(self.path) < 1 else errno.EIO
            raise OSError(code, "the video could not be written completely", str(self.path))


class FfmpegWriter:
    """Raw RGB frames piped into ffmpeg: H.264 (yuv420p, even sides, faststart) plus the
    audio of `audio` as AAC when it has any. ffmpeg runs in its own session, so a Ctrl-C
    reaches facefilter alone, and writes its messages to a file, so it never blocks on a
    full pipe."""

    def __init__(
        self, ffmpeg: str, path: Path, fps: float, width: int, height: int, audio: Path | None
    ) -> None:
        source = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                  "-r", f"{fps:.6g}", "-i", "-"]  # fmt: skip
        sound = ["-i", str(audio), "-map", "0:v", "-map", "1:a?", "-c:a", "aac"] if audio else []
        video = [
            "-vf",
            "pad=ceil(iw/2)*2:ceil(ih/2)*2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-crf",
            "18",
            "-preset",
            "veryfast",
            "-movflags",
            "+faststart",
        ]
        command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *source, *sound, *video,
                   "-f", "mp4", str(path)]  # fmt: skip
        self.messages = tempfile.TemporaryFile()  # noqa: SIM115 - closed in release()
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=self.messages,
                                        start_new_session=True)  # fmt: skip
        self.path, self.failure = path, ""

    def write(self, rgb: np.ndarray) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(np.ascontiguousarray(rgb).tobytes())
        except BrokenPipeError:
            self.release()  # ffmpeg has stopped: its own message says why

    def check(self) -> None:
        """After release: ffmpeg has reported any failure there already."""

    def release(self) -> None:
        """Wait for ffmpeg; raise (once) when it failed. Safe to call again."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        if self.process.returncode is None:
            if self.process.wait() != 0:
                self.messages.seek(0)
                lines = self.messages.read().decode(errors="replace").strip().splitlines()
                self.failure = lines[-1] if lines else f"exit status {self.process.returncode}"
            self.messages.close()
            if self.failure:
                code = errno.ENOSPC if "No space left" in self.failure else errno.EIO
                message = f"ffmpeg could not write the video ({self.failure})"
                raise OSError(code, message, str(self.path))


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 30) -> Path:
    """Raw YUV 4:2:0 video (Y4M), what Chromium plays as a fake camera
    (`--use-file-for-fake-video-capture=PATH`, looped): how the live page is tested and
    timed without a camera. `frames`: RGB (H, W, 3) uint8, even sides, all one size."""
    cv2 = import_cv2()
    height, width = frames[0].shape[:2]
    if height % 2 or width % 2 or any(frame.shape != frames[0].shape for frame in frames):
        raise UserError(f"{path}: Y4M frames must share one size with even sides, got "
                        f"{sorted({frame.shape for frame in frames})}")  # fmt: skip

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
            for frame in frames:
                out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())

    atomic_write(path, write)
    return path
