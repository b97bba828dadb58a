"""How fast the built-in synthetic faces render, and how fast `data synth` writes them.

A benchmark, run on demand (not a test):

    python benchmarks/synth_speed.py --size 128 --count 512

For each style: faces per second rendered in memory, then written to disk as
`facefilter data synth` does (render + PNG encode + write), and the ratio of the two.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from facefilter.synth import STYLES, render, sample_params, write_dataset


def faces_per_second(style: str, size: int, count: int, repeats: int) -> float:
    """Best of `repeats` timed renders of `count` faces (after one warm-up render)."""
    params = sample_params(count, seed=0)
    render(params.rows(slice(0, min(count, 64))), style, size)  # warm-up: allocator, caches
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        render(params, style, size)
        best = min(best, time.perf_counter() - began)
    return count / best


def written_per_second(style: str, size: int, count: int, repeats: int = 2) -> float:
    """Faces per second of `write_dataset` (what `data synth` runs) into a temporary
    folder, best of `repeats` like the render figure (the first also warms up)."""
    best = float("inf")
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            began = time.perf_counter()
            write_dataset(Path(tmp), count, size, seed=0, styles=[style])
            best = min(best, time.perf_counter() - began)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (32..256)")
    parser.add_argument("--count", type=int, default=512, help="faces rendered per timing")
    parser.add_argument("--repeats", type=int, default=2, help="timings per style; best is kept")
    parser.add_argument("--styles", nargs="+", default=list(STYLES), choices=STYLES)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    args = parser.parse_args()
    if args.threads > 0:  # on a busy machine one thread beats two fighting for the cores
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.count} faces at {args.size}x{args.size}")  # fmt: skip
    began = time.perf_counter()
    sample_params(args.count, seed=0)
    sampling = args.count / (time.perf_counter() - began)
    print(f"{'sample_params':>14}: {sampling:8.0f} faces/s")
    print(f"{'style':>14}  {'rendered':>9}  {'written':>9}  written / rendered")
    for style in args.styles:
        rate = faces_per_second(style, args.size, args.count, args.repeats)
        written = written_per_second(style, args.size, args.count)
        print(f"{style:>14}  {rate:7.0f}/s  {written:7.0f}/s  {written / rate:.2f}")


if __name__ == "__main__":
    main()
