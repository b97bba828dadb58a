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

from facefilter.data.framing import align_config, synth_framing
from facefilter.export import OnnxFilter, export_module, session
from facefilter.face import create_detector
from facefilter.models import create_family
from facefilter.pipeline import FaceOptions, Filter, PhotoFilter, Translator
from facefilter.video import Tracker, filter_frame


def webcam_frame() -> np.ndarray:
    """The astronaut in a 640x480 frame. (480, 640, 3) uint8"""
    return np.pad(data.astronaut()[:480], ((0, 0), (64, 64), (0, 0)), mode="edge")


def translators(size: int, folder: Path) -> dict[str, Translator]:
    torch.manual_seed(0)
    family = create_family("cyclegan-lite", None, ["photo", "anime"], size)
    family.eval()
    module = family.export_module("anime")
    export_module(module, folder / "to-anime.onnx", size)
    return {
        "torch": Filter(family, module, None, "anime", torch.device("cpu")),
        "onnxruntime": OnnxFilter(session(folder / "to-anime.onnx"), None, "anime", size),
    }


def per_face_ms(translator: Translator, size: int, repeats: int) -> float:
    crop = [np.full((size, size, 3), 128, np.uint8)]
    translator(crop)  # warm-up: first calls allocate
    start = time.perf_counter()
    for _ in range(repeats):
        translator(crop)
    return 1000 * (time.perf_counter() - start) / repeats


def frames_per_second(photo_filter: PhotoFilter, frame: np.ndarray, frames: int, every: int):
    tracker = Tracker(detect_every=every)
    filter_frame(photo_filter, tracker, frame, 0, compare=False)  # warm-up
    start = time.perf_counter()
    for index in range(frames):
        filter_frame(photo_filter, tracker, frame, index, compare=False)
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--detect-every", type=int, default=5)
    args = parser.parse_args()
    frame = webcam_frame()
    detector = create_detector("dlib", upsample=0, rotations=())
    align = align_config(synth_framing(), args.size)
    print(f"cyclegan-lite (default config) at {args.size} px, 640x480 frame, one face, "
          f"{torch.get_num_threads()} torch threads")  # fmt: skip
    print(f"{'engine':<12} {'ms/face':>8} {'fps (detect every frame)':>26} "
          f"{f'fps (detect every {args.detect_every})':>22}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, translator in translators(args.size, Path(tmp)).items():
            photo_filter = PhotoFilter([translator], align, detector, FaceOptions())
            ms = per_face_ms(translator, args.size, repeats=20)
            every_frame = frames_per_second(photo_filter, frame, args.frames // 4, 1)
            tracked = frames_per_second(photo_filter, frame, args.frames, args.detect_every)
            print(f"{name:<12} {ms:8.1f} {every_frame:26.1f} {tracked:22.1f}")


if __name__ == "__main__":
    main()
