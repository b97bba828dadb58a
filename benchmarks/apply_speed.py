"""Whole-photo pipeline speed on the CPU: PyTorch and onnxruntime side by side.

A 640x480 frame with one face (the astronaut from scikit-image) goes through the full
journey, detect + track + align + translate + paste, as `apply` on a video or
`--webcam` runs it, and is compared with the translator alone, in the same run. The
model is `cyclegan-lite` in its default config with random weights (speed does not
depend on training). Goals: with tracking (detect every 5th frame) the pipeline runs at
0.85 or more of the translator alone; detecting on every frame, 0.6 or more.

    python benchmarks/apply_speed.py [--size 128] [--frames 60] [--detect-every 5] [--rounds 3]
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
    photo_filter: PhotoFilter, request: Request, frame: np.ndarray, frames: int, every: int,
    full_every: int = Tracker.full_every,
) -> float:  # fmt: skip
    tracker = Tracker(detect_every=every, full_every=full_every)
    filter_frame(photo_filter, request, tracker, frame, 0, compare=False)  # warm-up
    start = time.perf_counter()
    for index in range(frames):
        filter_frame(photo_filter, request, tracker, frame, index, compare=False)
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--detect-every", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; best kept")
    args = parser.parse_args()
    frame = webcam_frame()
    detector = create_detector("dlib", upsample=0, rotations=())
    print(f"cyclegan-lite (default config) at {args.size} px, 640x480 frame, one face, "
          f"{torch.get_num_threads()} torch threads; frames per second, and the share of "
          "the translator alone")  # fmt: skip
    columns = ("translator", f"track (every {args.detect_every})", "detect every frame",
               "whole frame every frame")  # fmt: skip
    print(f"{'engine':<8}" + "".join(f"{name:>26}" for name in columns))
    with tempfile.TemporaryDirectory() as tmp:
        for name, flt in filters(args.size, Path(tmp)).items():
            photo_filter = PhotoFilter(flt, detector, FaceOptions())
            request = Request((flt.resolve("anime"),))
            runs = [(args.detect_every, Tracker.full_every), (1, Tracker.full_every), (1, 1)]
            alone, rates = 0.0, [0.0] * len(runs)
            for _ in range(args.rounds):  # best of interleaved rounds: the least disturbed
                ms = per_face_ms(flt, request, args.size, repeats=args.frames)
                alone = max(alone, 1000 / ms)
                for index, (every, full) in enumerate(runs):
                    fps = frames_per_second(photo_filter, request, frame, args.frames, every, full)
                    rates[index] = max(rates[index], fps)
            cells = [f"{alone:.1f}"] + [f"{fps:.1f} ({fps / alone:.2f})" for fps in rates]
            print(f"{name:<8}" + "".join(f"{cell:>26}" for cell in cells))


if __name__ == "__main__":
    main()
