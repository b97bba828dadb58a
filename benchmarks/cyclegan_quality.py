"""Does CycleGAN learn photo -> anime? Paired L1 / SSIM against the true anime faces.

    python benchmarks/cyclegan_quality.py --size 64 --steps 4000 --every 500

Trains `cyclegan-lite` (or `--family cyclegan`) on built-in synthetic photo and
anime faces, in chunks: each chunk resumes the run (resume is exact, so the
result equals one uninterrupted run), then scores the held-out test faces
against their true anime renderings. Prints the curve, the do-nothing baseline,
and writes the last sample grid and a before/after sheet next to the run.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facefilter.inference.photo import contact_sheet
from facefilter.metrics import identity_score, paired_score, synth_pairs
from facefilter.pixels import to_pixels
from facefilter.run import load_family
from facefilter.train import TrainConfig, train


def to_uint8(images: torch.Tensor) -> list[np.ndarray]:
    return list(to_pixels(images).permute(0, 2, 3, 1).numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="cyclegan-lite")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--every", type=int, default=500, help="steps between evaluations")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--count", type=int, default=2000, help="synthetic faces per style")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-cyclegan-quality"))
    parser.add_argument("--cpu", action="store_true")
    args = parser.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)
    sources, truths = synth_pairs("photo", "anime", args.size, count=args.count, limit=200)
    base = identity_score(sources, truths)
    print(f"{args.family} at {args.size} px, batch {args.batch_size}, {len(sources)} test faces")
    print(f"do nothing (photo vs true anime): L1 {base.l1:.4f}  SSIM {base.ssim:.4f}  "
          f"top-1 {base.top1:.3f} (chance {1 / base.count:.3f})")  # fmt: skip
    print(f"{'step':>6} {'L1':>8} {'SSIM':>8} {'top-1':>7} {'minutes':>8}")
    config = TrainConfig(
        out=args.out, data_a=f"synth:photo?count={args.count}",
        data_b=f"synth:anime?count={args.count}", size=args.size, batch_size=args.batch_size,
        max_steps=args.steps, sample_every=args.every, save_every=args.every, progress=False,
        cpu=args.cpu,
    )  # fmt: skip
    started = time.monotonic()
    for stop in range(args.every, args.steps + 1, args.every):
        config.resume, config.stop_at = stop > args.every, stop
        train(config, args.family)
        score = paired_score(load_family(args.out), sources, truths, "anime")
        minutes = (time.monotonic() - started) / 60
        print(f"{stop:>6} {score.l1:>8.4f} {score.ssim:>8.4f} {score.top1:>7.3f} "
              f"{minutes:>8.1f}", flush=True)  # fmt: skip
    model = load_family(args.out)
    fakes = model.translate(sources[:16].to(model.device), "anime").cpu()
    pairs = list(zip(to_uint8(sources[:16]), to_uint8(fakes), strict=True))
    Image.fromarray(contact_sheet(pairs)).save(args.out / "test_sheet.png")
    print(f"before/after sheet: {args.out / 'test_sheet.png'}; grids in {args.out / 'samples'}")


if __name__ == "__main__":
    main()
