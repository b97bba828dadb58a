"""Whole-photo pipeline speed on the CPU: PyTorch and onnxruntime side by side.

A 640x480 frame with one face (the astronaut from scikit-image) goes through the full
journey, detect + align + translate + paste, as `apply` on a video or `--webcam` runs it.
The model is `cyclegan-lite` in its default config with random weights (speed does not
depend on training).

    python benchmarks/apply_speed.py [--size 128] [--frames 40] [--detect-every 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data

from facefilter import checkpoint
from facefilter.data.framing import synth_framing
from facefilter.face import create_detector
from facefilter.inference import FaceOptions, Filter, PhotoFilter, Request
from facefilter.inference.video import Tracker, filter_frame
from facefilter.models import create_family


def webcam_frame() -> np.ndarray:
    """The astronaut in a 640x480 frame. (480, 640, 3) uint8"""
    return np.pad(data.astronaut()[:480], ((0, 0), (64, 64), (0, 0)), mode="edge")


def filters(size: int, folder: Path) -> dict[str, Filter]:
    """The same untrained run loaded as users load it, on each engine."""
    torch.manual_seed(0)
    family = create_family("cyclegan-lite", None, ["photo", "anime"], size)
    checkpoint.save_checkpoint(folder, family, 0, {"framing": synth_framing()})
    return {"torch": Filter.load(folder, "torch", "cpu"), "onnx": Filter.load(folder, "onnx")}


def per_face_ms(flt: Filter, request: Request, size: int, repeats: int) -> float:
    crop = [np.full((size, size, 3), 128, np.uint8)]
    direction = request.directions[0]
    flt.translate_crops(crop, direction)  # warm-up: first calls allocate (and export)
    start = time.perf_counter()
    for _ in range(repeats):
        flt.translate_crops(crop, direction)
    return 1000 * (time.perf_counter() - start) / repeats


def frames_per_second(
    photo_filter: PhotoFilter, request: Request, frame: np.ndarray, frames: int, every: int
) -> float:
    tracker = Tracker(detect_every=every)
    filter_frame(photo_filter, request, tracker, frame, 0, compare=False)  # warm-up
    start = time.perf_counter()
    for index in range(frames):
        filter_frame(photo_filter, request, tracker, frame, index, compare=False)
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--detect-every", type=int, default=5)
    args = parser.parse_args()
    frame = webcam_frame()
    detector = create_detector("dlib", upsample=0, rotations=())
    print(f"cyclegan-lite (default config) at {args.size} px, 640x480 frame, one face, "
          f"{torch.get_num_threads()} torch threads")  # fmt: skip
    print(f"{'engine':<12} {'ms/face':>8} {'fps (detect every frame)':>26} "
          f"{f'fps (detect every {args.detect_every})':>22}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, flt in filters(args.size, Path(tmp)).items():
            photo_filter = PhotoFilter(flt, detector, FaceOptions())
            request = Request((flt.resolve("anime"),))
            ms = per_face_ms(flt, request, args.size, repeats=20)
            every_frame = frames_per_second(photo_filter, request, frame, args.frames // 4, 1)
            tracked = frames_per_second(photo_filter, request, frame, args.frames,
                                        args.detect_every)  # fmt: skip
            print(f"{name:<12} {ms:8.1f} {every_frame:26.1f} {tracked:22.1f}")


if __name__ == "__main__":
    main()
