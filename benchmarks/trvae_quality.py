"""How well does one trVAE move faces between photo, anime and cartoon?

    python benchmarks/trvae_quality.py --size 64 --steps 4000

Trains `trvae` on the three built-in synthetic styles as three classes, then,
for every ordered pair of classes, translates the held-out test faces and
scores them against the true renderings of the same faces in the target style
(paired L1, lower is better; SSIM, higher is better), next to the do-nothing
baseline. With `--cyclegan-steps N` it also trains cyclegan-lite on photo ->
anime on the same data for N steps and prints its score on the same faces, so
the two approaches are compared on one table.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

from facefilter.evaluation.paired import identity_score, paired_score, synth_pairs
from facefilter.models.base import Family
from facefilter.pixels import to_unit
from facefilter.runs.weights import load_filter
from facefilter.training.config import TrainConfig
from facefilter.training.engine import train

STYLES = ("photo", "anime", "cartoon")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--count", type=int, default=2000, help="synthetic faces per style")
    parser.add_argument("--cyclegan-steps", type=int, default=0, help="0: skip the comparison")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-trvae-quality"))
    parser.add_argument("--cpu", action="store_true")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)

    started = time.monotonic()
    run = train(
        TrainConfig(
            out=args.out / "trvae", data=f"synth:{','.join(STYLES)}?count={args.count}",
            size=args.size, batch_size=args.batch_size, max_steps=args.steps,
            sample_every=max(1, args.steps // 4), save_every=args.steps, progress=False,
            cpu=args.cpu,
        ),
        "trvae",
    )  # fmt: skip
    print(f"trvae at {args.size} px: {args.steps} steps, batch {args.batch_size}, "
          f"{(time.monotonic() - started) / 60:.1f} min")  # fmt: skip
    model = load_filter(run)
    print(f"{'from':>8} -> {'to':<8} {'L1':>7} {'SSIM':>7} {'top-1':>6}   "
          f"{'do-nothing L1':>13} {'SSIM':>7} {'top-1':>6}")  # fmt: skip
    for source, target in itertools.permutations(STYLES, 2):
        sources, truths = synth_pairs(source, target, args.size, count=args.count, limit=200)
        score = paired_score(model, sources, truths, target, source)
        base = identity_score(sources, truths)
        print(f"{source:>8} -> {target:<8} {score.l1:7.4f} {score.ssim:7.4f} {score.top1:6.3f}   "
              f"{base.l1:13.4f} {base.ssim:7.4f} {base.top1:6.3f}")  # fmt: skip
    write_grid(model, args.size, args.count, args.out / "trvae_grid.png")
    if args.cyclegan_steps:
        compare_cyclegan(args)


def write_grid(model: Family, size: int, count: int, path: Path) -> None:
    """Rows: 8 held-out photos, then for each other style the transfer and the truth."""
    rows = []
    for style in STYLES[1:]:
        photos, truths = synth_pairs("photo", style, size, count=count, limit=8)
        rows += [model.translate(photos.to(model.device), style, "photo").cpu(), truths]
    save_image(to_unit(torch.cat([photos, *rows])), path, nrow=len(photos), padding=2)
    print(f"grid (rows: input, ->anime, true anime, ->cartoon, true cartoon): {path}")


def compare_cyclegan(args: argparse.Namespace) -> None:
    run = train(
        TrainConfig(
            out=args.out / "cyclegan", data_a=f"synth:photo?count={args.count}",
            data_b=f"synth:anime?count={args.count}", size=args.size, batch_size=4,
            max_steps=args.cyclegan_steps, sample_every=args.cyclegan_steps,
            save_every=args.cyclegan_steps, progress=False, cpu=args.cpu,
        ),
        "cyclegan-lite",
    )  # fmt: skip
    sources, truths = synth_pairs("photo", "anime", args.size, count=args.count, limit=200)
    score = paired_score(load_filter(run), sources, truths, "anime")
    print(f"cyclegan-lite photo -> anime ({args.cyclegan_steps} steps, batch 4): "
          f"L1 {score.l1:.4f} SSIM {score.ssim:.4f} top-1 {score.top1:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
