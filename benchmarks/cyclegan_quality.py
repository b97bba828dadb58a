"""Does CycleGAN learn photo -> anime? Scored against the true anime faces.

    python benchmarks/cyclegan_quality.py --size 64 --steps 4000 --every 500 [--disc dilated]

Trains `cyclegan-lite` (or `--family cyclegan`) on built-in synthetic photo and
anime faces, in chunks: each chunk resumes the run (resume is exact, so the
result equals one uninterrupted run), then scores the held-out test faces
against their true anime renderings: paired L1 and SSIM, identity top-1
retrieval, and two shape measures, the L1 inside the true anime eyes and inside
the jaw band (masks drawn by the renderer), where a translator that only recolours
a photo fails. Prints the curve, the do-nothing baseline and the training seconds
per step, and writes a before/after sheet next to the run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facefilter.evaluation.paired import identity_score, paired_score, synth_pairs
from facefilter.inference.photo import contact_sheet
from facefilter.models import config_class
from facefilter.pixels import to_pixels
from facefilter.runs.weights import load_filter
from facefilter.synth import masked_l1, synth_region_masks
from facefilter.training.config import TrainConfig
from facefilter.training.engine import train
from facefilter.training.log import METRICS_FILE

REGIONS = ("eyes", "chin")


def to_uint8(images: torch.Tensor) -> list[np.ndarray]:
    return list(to_pixels(images).permute(0, 2, 3, 1).numpy())


def seconds_per_step(run: Path, batch_size: int) -> float:
    """Median training time per step from metrics.jsonl (start-up and evaluation excluded)."""
    rows = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()]
    return batch_size / float(np.median([row["images_per_s"] for row in rows]))


def shape_scores(images: torch.Tensor, truths: torch.Tensor, masks: dict) -> str:
    eyes, chin = (masked_l1(images, truths, masks[r]).mean().item() for r in REGIONS)
    return f"eyes L1 {eyes:.4f}  chin L1 {chin:.4f}"


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
    parser.add_argument("--disc", default="patch", choices=["patch", "dilated"])
    parser.add_argument("--input-noise", type=float, default=0.0, help="D input noise std")
    args = parser.parse_args()
    if not 0 < args.every <= args.steps:
        parser.error(f"--every {args.every} must lie in 1..--steps ({args.steps})")

    shutil.rmtree(args.out, ignore_errors=True)
    sources, truths = synth_pairs("photo", "anime", args.size, count=args.count, limit=200)
    masks = synth_region_masks("anime", args.size, count=args.count, regions=REGIONS, limit=200)
    base = identity_score(sources, truths)
    print(f"{args.family} at {args.size} px, batch {args.batch_size}, --disc {args.disc}, "
          f"--input-noise {args.input_noise}, {len(sources)} test faces")  # fmt: skip
    print(f"do nothing (photo vs true anime): L1 {base.l1:.4f}  SSIM {base.ssim:.4f}  "
          f"top-1 {base.top1:.3f} (chance {1 / base.count:.3f})  "
          f"{shape_scores(sources, truths, masks)}")  # fmt: skip
    print(f"{'step':>6} {'L1':>8} {'SSIM':>8} {'top-1':>7} {'eyes L1':>8} {'chin L1':>8} "
          f"{'s/step':>7} {'minutes':>8}")  # fmt: skip
    config = TrainConfig(
        out=args.out, data_a=f"synth:photo?count={args.count}",
        data_b=f"synth:anime?count={args.count}", size=args.size, batch_size=args.batch_size,
        max_steps=args.steps, sample_every=args.every, save_every=args.every, progress=False,
        cpu=args.cpu,
    )  # fmt: skip
    model_config = config_class(args.family)(disc=args.disc, input_noise=args.input_noise)
    started = time.monotonic()
    for stop in range(args.every, args.steps + 1, args.every):
        config.resume, config.stop_at = stop > args.every, stop
        train(config, args.family, model_config)
        model = load_filter(args.out)
        score = paired_score(model, sources, truths, "anime")
        fakes = model.translate(sources.to(model.device), "anime").cpu()
        eyes, chin = (masked_l1(fakes, truths, masks[r]).mean().item() for r in REGIONS)
        minutes = (time.monotonic() - started) / 60
        print(f"{stop:>6} {score.l1:>8.4f} {score.ssim:>8.4f} {score.top1:>7.3f} {eyes:>8.4f} "
              f"{chin:>8.4f} {seconds_per_step(args.out, args.batch_size):>7.3f} {minutes:>8.1f}",
              flush=True)  # fmt: skip
    fakes = model.translate(sources[:16].to(model.device), "anime").cpu()
    pairs = list(zip(to_uint8(sources[:16]), to_uint8(fakes), strict=True))
    Image.fromarray(contact_sheet(pairs)).save(args.out / "test_sheet.png")
    print(f"before/after sheet: {args.out / 'test_sheet.png'}; grids in {args.out / 'samples'}")


if __name__ == "__main__":
    main()
