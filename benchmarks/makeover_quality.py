"""Does the makeover GAN turn men into women (and back)? Scored against the true twins.

    python benchmarks/makeover_quality.py --direction mtf --size 32x40 --steps 3000 --every 500
    python benchmarks/makeover_quality.py --direction ftm --size 32x40 --steps 3000

Trains `makeover` between two attribute filters of the built-in synthetic photo faces
(`synth:photo?where=Male` -> `where=-Male` for mtf, the other way for ftm), in chunks:
each chunk resumes the run (resume is exact, so the curve is one uninterrupted run).
After each chunk it translates 32 held-out faces (another seed than training's) and
compares each with the true rendering of the same face with Male flipped
(`synth_edit_pairs`: same person, pose, light and backdrop):

- L1 ratio: mean L1(output, twin) / mean L1(input, twin); the issue's bar is 0.85;
- top-1: is each output nearer its own twin than the 31 others? (bar 0.5; chance 0.03);
- the blurred mean of all twins, the output that games paired L1, as a control.

It also prints the untrained generator's L1 to its input (the near-identity start) and
writes a sheet, input / output / true twin, beside the run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from facefilter.evaluation.paired import identity_top1, l1_distance, synth_edit_pairs
from facefilter.models import create_family
from facefilter.models.makeover import MakeoverConfig
from facefilter.pictures import enlarge, labelled_grid, save_picture
from facefilter.pixels import to_pixels
from facefilter.runs.weights import load_filter
from facefilter.sizes import ImageSize
from facefilter.training.config import TrainConfig
from facefilter.training.engine import train
from facefilter.training.log import METRICS_FILE

SETS = {"mtf": ("where=Male", "where=-Male"), "ftm": ("where=-Male", "where=Male")}


def widths(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


def score(outputs: torch.Tensor, twins: torch.Tensor, inputs: torch.Tensor) -> str:
    base = float(l1_distance(inputs, twins).mean())
    l1 = float(l1_distance(outputs, twins).mean())
    return f"L1 {l1:.4f}  ratio {l1 / base:.3f}  top-1 {identity_top1(outputs, twins):.3f}"


def sheet(path: Path, inputs: torch.Tensor, outputs: torch.Tensor, twins: torch.Tensor,
          title: str) -> None:  # fmt: skip
    rows = [to_pixels(t[:8]).permute(0, 2, 3, 1).numpy() for t in (inputs, outputs, twins)]
    tiles = enlarge(np.stack(rows), 3)
    picture = labelled_grid(tiles, rows=["input", "makeover", "true twin"], title=title)
    save_picture(path, picture)


def images_per_second(run: Path) -> float:
    rows = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()]
    return float(np.median([row["images_per_s"] for row in rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--direction", choices=sorted(SETS), default="mtf")
    parser.add_argument("--size", default="32x40")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--count", type=int, default=4000, help="synthetic faces drawn")
    parser.add_argument("--half-life", type=int, default=1000, help="--annealing-half-life")
    parser.add_argument("--gan-loss", default="wgan-gp", choices=["wgan-gp", "wgan-clip", "gan"])
    parser.add_argument("--critic", type=widths, default=(32, 48, 64, 96))
    parser.add_argument("--pixel-scale", type=float, default=MakeoverConfig.pixel_scale)
    parser.add_argument("--pixel-loss-min", type=float, default=MakeoverConfig.pixel_loss_min)
    parser.add_argument("--lr-start", type=float, default=MakeoverConfig.lr_start)
    parser.add_argument("--instance-noise", type=float, default=MakeoverConfig.instance_noise)
    parser.add_argument("--ema-decay", type=float, default=0.99, help="0 applies the live G")
    parser.add_argument(
        "--narrow",
        default="",
        help="more terms for the target filter, "
        "e.g. -Wearing_Lipstick (deep-makeover: a narrower target helps)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/bench-makeover"))
    args = parser.parse_args()
    if not 0 < args.every <= args.steps:
        parser.error(f"--every {args.every} must lie in 1..--steps ({args.steps})")

    size = ImageSize.parse(args.size)
    source, target = SETS[args.direction]
    target = f"{target},{args.narrow}" if args.narrow else target
    inputs, twins = synth_edit_pairs("Male", args.direction == "ftm", size, count=32)
    model = MakeoverConfig(critic=args.critic, gan_loss=args.gan_loss,
                           annealing_half_life=args.half_life, pixel_scale=args.pixel_scale,
                           pixel_loss_min=args.pixel_loss_min, lr_start=args.lr_start,
                           instance_noise=args.instance_noise,
                           ema_decay=args.ema_decay)  # fmt: skip
    torch.manual_seed(0)
    untrained = create_family("makeover", model, ["a", "b"], size, training=False)
    with torch.no_grad():
        start = float(l1_distance(untrained.nets["gen"](inputs), inputs).mean())
    mean_face = twins.mean(0, keepdim=True).expand_as(twins)
    print(
        f"makeover {args.direction} ({source} -> {target}) at {size}, batch {args.batch_size}, "
        f"{args.gan_loss}, half-life {args.half_life}, critic {args.critic}, pixel scale "
        f"{args.pixel_scale}, instance noise {args.instance_noise}, EMA {args.ema_decay}"
    )
    print(f"untrained generator: L1 to its input {start:.4f} (bar 0.05)")
    print(f"do nothing:          {score(inputs, twins, inputs)}")
    print(f"blurred mean twin:   {score(mean_face, twins, inputs)}")

    shutil.rmtree(args.out, ignore_errors=True)
    config = TrainConfig(
        out=args.out, data_a=f"synth:photo?count={args.count}&{source}",
        data_b=f"synth:photo?count={args.count}&{target}", size=str(size),
        batch_size=args.batch_size, max_steps=args.steps, sample_every=args.every,
        save_every=args.every, progress=False,
    )  # fmt: skip
    started = time.monotonic()
    for stop in range(args.every, args.steps + 1, args.every):
        config.resume, config.stop_at = stop > args.every, stop
        train(config, "makeover", model)
        family = load_filter(args.out)
        direction = family.directions()[0]
        outputs = family.translate(inputs, direction.target, direction.source)
        minutes = (time.monotonic() - started) / 60
        print(
            f"step {stop:>6}: {score(outputs, twins, inputs)}  "
            f"({minutes:.1f} min, {images_per_second(args.out):.0f} images/s)",
            flush=True,
        )
    title = f"makeover {args.direction}, {args.steps} steps: held-out faces and their true twins"
    sheet(args.out / "test_sheet.png", inputs, outputs, twins, title)
    print(f"sheet: {args.out / 'test_sheet.png'}")


if __name__ == "__main__":
    main()
