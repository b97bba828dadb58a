"""A picture of `--strength`: held-out synthetic faces at strengths 0 to 1.5.

    python benchmarks/strength_sheet.py RUN --to anime [--from photo] -o strength.png

Columns: the input, then the filter at each strength (0 must equal the input, 1 is
the full filter); one row per face, rendered with a seed no run trains on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torchvision.utils import save_image

from facefilter.data.images import center_crop
from facefilter.inference import Filter
from facefilter.pixels import to_unit
from facefilter.synth import SynthFaces

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
HELD_OUT_SEED = 12345


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--to", dest="target", default="anime")
    parser.add_argument("--from", dest="source", default="photo")
    parser.add_argument("--faces", type=int, default=4)
    parser.add_argument("-o", "--output", type=Path, default=Path("strength.png"))
    args = parser.parse_args()
    flt = Filter.load(args.run)
    direction = flt.resolve(args.target, args.source)
    faces = SynthFaces(args.source, flt.size.side, count=args.faces, seed=HELD_OUT_SEED)
    images = center_crop(torch.stack([faces[i]["image"] for i in range(args.faces)]), flt.size)
    columns = [images] + [flt.translate(images, direction, s).cpu() for s in STRENGTHS]
    grid = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: one face per row
    save_image(to_unit(grid), args.output, nrow=len(columns), padding=2, pad_value=1.0)
    zero = (columns[1] - images).abs().max().item()
    print(
        f"{direction}: columns input, strength {', '.join(map(str, STRENGTHS))}; "
        f"max |strength 0 - input| = {zero:.2e}; wrote {args.output}"
    )


if __name__ == "__main__":
    main()
