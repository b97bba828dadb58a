"""Whole-photo pipeline speed on the CPU: every engine and precision side by side.

A 640x480 frame with one face (the astronaut from scikit-image) goes through the full
journey, detect + track + align + translate + paste, as `apply` on a video or
`--webcam` runs it, and is compared with the translator alone, in the same run; first,
the translators alone of every engine (torch fp32, onnxruntime fp32 and int8, torch
bf16 where the CPU has bf16 units) are timed in turn, crop by crop. The
model is `cyclegan-lite` in its default config with random weights (speed does not
depend on training). Goals: with tracking (detect every 5th frame) the pipeline runs at
0.85 or more of the translator alone; detecting on every frame, 0.6 or more.

    python benchmarks/apply_speed.py [--size 128] [--frames 180] [--detect-every 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data

from facefilter.data.framing import synth_framing
from facefilter.face import create_detector
from facefilter.hardware import bf16_refusal
from facefilter.inference import FaceOptions, Filter, PhotoFilter, Request
from facefilter.inference.onnx import export_onnx
from facefilter.inference.quantize import Calibration
from facefilter.inference.video import Tracker, filter_frame
from facefilter.models import create_family
from facefilter.runs import checkpoint


def webcam_frame() -> np.ndarray:
    """The astronaut in a 640x480 frame. (480, 640, 3) uint8"""
    return np.pad(data.astronaut()[:480], ((0, 0), (64, 64), (0, 0)), mode="edge")


def filters(size: int, folder: Path) -> dict[str, Filter]:
    """The same untrained run loaded as users load it, on each engine and precision this
    machine runs natively (bf16 only where the CPU has bf16 units)."""
    torch.manual_seed(0)
    family = create_family("cyclegan-lite", None, ["photo", "anime"], size)
    folder.mkdir()
    checkpoint.save_checkpoint(folder, family, 0, {"framing": synth_framing()})
    loaded = {"torch": Filter.load(folder, "torch", "cpu"), "onnx": Filter.load(folder, "onnx")}
    int8 = folder.parent / f"{folder.name}-int8"  # calibrated on synthetic photos
    export_onnx(folder, int8, quantize="int8", calibration=Calibration(64, "synth:photo"))
    loaded["onnx-int8"] = Filter.load(int8, "onnx")
    refusal = bf16_refusal(torch.device("cpu"))
    if refusal is None:
        loaded["torch-bf16"] = Filter.load(folder, "torch", "cpu", precision="bf16")
    else:
        print(f"(no torch-bf16: {refusal})")
    return loaded


def round_robin(flts: dict[str, Filter], size: int, rounds: int) -> dict[str, float]:
    """The translator alone, frames per second per engine, one crop each in turn, so every
    engine sees the same machine (this 2-core VM drifts by 10-20% within a minute)."""
    crop = [np.full((size, size, 3), 128, np.uint8)]
    seconds = dict.fromkeys(flts, 0.0)
    for flt in flts.values():  # warm-up: allocate (and export)
        flt.translate_crops(crop, flt.resolve("anime"))
    for _ in range(rounds):
        for name, flt in flts.items():
            start = time.perf_counter()
            flt.translate_crops(crop, flt.resolve("anime"))
            seconds[name] += time.perf_counter() - start
    return {name: rounds / total for name, total in seconds.items()}


def alternating(
    photo_filter: PhotoFilter, request: Request, frame: np.ndarray, frames: int, every: int,
    full_every: int,
) -> tuple[float, float]:  # fmt: skip
    """(translator alone, whole pipeline) in frames per second, timed frame by frame
    alternately: a translation of a crop, then a frame through the pipeline, so both
    see the same machine (this 2-core VM drifts by 10-20% within a minute)."""
    tracker = Tracker(detect_every=every, full_every=full_every)
    crop = [np.full((*photo_filter.size.hw, 3), 128, np.uint8)]
    direction = request.directions[0]
    photo_filter.filter.translate_crops(crop, direction)  # warm-up: allocate (and export)
    filter_frame(photo_filter, request, tracker, frame, 0, compare=False)
    alone = pipeline = 0.0
    for index in range(frames):
        start = time.perf_counter()
        photo_filter.filter.translate_crops(crop, direction)
        middle = time.perf_counter()
        filter_frame(photo_filter, request, tracker, frame, index, compare=False)
        alone, pipeline = alone + middle - start, pipeline + time.perf_counter() - middle
    return frames / alone, frames / pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=180)
    parser.add_argument("--detect-every", type=int, default=5)
    args = parser.parse_args()
    frame = webcam_frame()
    detector = create_detector("dlib", upsample=0, rotations=())
    print(f"cyclegan-lite (default config) at {args.size} px, 640x480 frame, one face, "
          f"{torch.get_num_threads()} torch threads; frames per second, and (in brackets) "
          "the share of the translator alone, timed alternately with it")  # fmt: skip
    columns = ("translator", f"track (every {args.detect_every})", "detect every frame",
               "whole frame every frame")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        flts = filters(args.size, Path(tmp) / "run")
        alone_fps = round_robin(flts, args.size, args.frames)
        print("translator alone, engines in turn, one crop each: "
              + ", ".join(f"{name} {fps:.1f} fps ({fps / alone_fps['torch']:.2f}x torch)"
                          for name, fps in alone_fps.items()))  # fmt: skip
        print(f"{'engine':<11}" + "".join(f"{name:>26}" for name in columns))
        for name, flt in flts.items():
            photo_filter = PhotoFilter(flt, detector, FaceOptions())
            request = Request((flt.resolve("anime"),))
            runs = [(args.detect_every, Tracker.full_every), (1, Tracker.full_every), (1, 1)]
            measured = [alternating(photo_filter, request, frame, args.frames, every, full)
                        for every, full in runs]  # fmt: skip
            alone = max(fps for fps, _ in measured)
            cells = [f"{alone:.1f}"] + [f"{fps:.1f} ({fps / mine:.2f})" for mine, fps in measured]
            print(f"{name:<11}" + "".join(f"{cell:>26}" for cell in cells))


if __name__ == "__main__":
    main()
