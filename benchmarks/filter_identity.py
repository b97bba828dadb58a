"""Does a trained filter keep each person? Held-out synthetic faces through `Filter`.

    python benchmarks/filter_identity.py RUN --from photo --to anime [--count 32] [--strength 1]

Renders `--count` faces with a seed no training run uses (so every one is held out),
translates the source-style faces with the same `Filter` that `facefilter apply` uses,
and scores them against the true renderings in the target style: paired L1 and SSIM,
identity top-1 retrieval (is each output nearer its own truth than every other face's?
a mean face scores chance) and the pixel spread across outputs (0 for a mean face).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from facefilter.data.images import center_crop
from facefilter.evaluation.paired import score_outputs
from facefilter.inference import Filter
from facefilter.synth import SynthFaces

HELD_OUT_SEED = 12345  # no run trains on it: `synth:` specs default to the run's own seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run directory or export")
    parser.add_argument("--from", dest="source", default="photo")
    parser.add_argument("--to", dest="target", default="anime")
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--engine", default="torch", choices=["torch", "onnx"])
    args = parser.parse_args()

    flt = Filter.load(args.run, engine=args.engine)
    direction = flt.resolve(args.target, args.source)
    faces = {style: SynthFaces(style, flt.size.side, count=args.count, seed=HELD_OUT_SEED)
             for style in (args.source, args.target)}  # fmt: skip
    sources, truths = (center_crop(torch.stack([faces[s][i]["image"] for i in range(args.count)]),
                                   flt.size) for s in (args.source, args.target))  # fmt: skip
    outputs = flt.translate(sources, direction, args.strength).cpu()
    score, nothing = score_outputs(outputs, truths), score_outputs(sources, truths)
    spread = outputs.std(0).mean().item()
    print(f"{args.run}: {direction}, {args.count} held-out faces at {flt.size} px, "
          f"strength {args.strength}")  # fmt: skip
    print(f"{'':>12} {'L1':>7} {'SSIM':>7} {'top-1':>7} {'spread':>7}")
    print(f"{'filter':>12} {score.l1:7.4f} {score.ssim:7.4f} {score.top1:7.3f} {spread:7.4f}")
    print(f"{'do nothing':>12} {nothing.l1:7.4f} {nothing.ssim:7.4f} {nothing.top1:7.3f} "
          f"{sources.std(0).mean().item():7.4f}")  # fmt: skip
    print(f"chance top-1: {1 / args.count:.3f}")


if __name__ == "__main__":
    main()
