"""Milliseconds per stage of the face pipeline on a 640x480 frame with one face (CPU).

    python benchmarks/face_pipeline_speed.py

Needs the `face` extra and scikit-image (for the astronaut photo). Prints the median of
several runs for detect (dlib HOG, upsample 0 and 1), align (128 and 256 px crops) and
paste-back, plus what a frame without a face costs when the roll retries run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import numpy as np

from facefilter.face import AlignConfig, align_face, create_detector, paste_back


def median_ms(work: Callable[[], object], repeats: int) -> float:
    work()  # warm-up: imports, caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def frame_with_one_face() -> np.ndarray:
    import cv2
    import skimage.data

    frame = np.full((480, 640, 3), 110, np.uint8)
    frame[:, 80:560] = cv2.resize(
        skimage.data.astronaut(), (480, 480), interpolation=cv2.INTER_AREA
    )
    return frame  # (480, 640, 3), face about 85 px wide


def main(repeats: int = 10) -> None:
    frame = frame_with_one_face()
    empty = np.full_like(frame, 110)
    rows: list[tuple[str, float]] = []
    for upsample in (0, 1):
        detector = create_detector("dlib", upsample=upsample)
        [face] = detector.detect(frame)
        rows.append(
            (
                f"detect dlib upsample={upsample}",
                median_ms(partial(detector.detect, frame), repeats),
            )
        )
        rows.append(
            (
                f"detect, no face (+5 roll retries) upsample={upsample}",
                median_ms(partial(detector.detect, empty), 3),
            )
        )
    for size in (128, 256):
        cfg = AlignConfig(size=size)
        rows.append((f"align {size} px", median_ms(partial(align_face, frame, face, cfg), 50)))
        crop, matrix = align_face(frame, face, cfg)
        rows.append(
            (f"paste_back {size} px", median_ms(partial(paste_back, frame, 255 - crop, matrix), 50))
        )
    for name, milliseconds in rows:
        print(f"{name:50s} {milliseconds:8.1f} ms")


if __name__ == "__main__":
    main()
