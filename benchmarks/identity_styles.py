"""How dlib's face descriptors read drawn styles: what `eval`'s identity figure means.

    python benchmarks/identity_styles.py [--count 100] [--size 64]

Synthetic faces are the same person in every style by construction. For each pair of
styles this prints, over `--count` faces of a held-out seed: the median distance
between a face and its own twin in the other style, the share of those under dlib's
0.6 ("the same person"), the share of *different* faces under 0.6 (what a match is
worth on these faces), and top-1 (is each twin nearer its own face than any other?).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from facefilter.data.framing import align_config, synth_framing
from facefilter.face.identity import SAME_PERSON, FaceDescriber, identity_summary
from facefilter.pixels import to_pixels
from facefilter.synth import SynthFaces

HELD_OUT_SEED = 12345


def descriptors(
    describer: FaceDescriber, style: str, size: int, count: int
) -> tuple[np.ndarray, float]:
    """(count, 128) descriptors of one style's faces, and the seconds describing took."""
    faces = SynthFaces(style, size, count=count, seed=HELD_OUT_SEED)
    images = torch.stack([faces[i]["image"] for i in range(count)])
    crops = list(to_pixels(images).permute(0, 2, 3, 1).numpy())
    began = time.perf_counter()
    found = describer.describe_all(crops, align_config(synth_framing(style), size))
    return found, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    describer = FaceDescriber()
    styles = ("photo", "anime", "cartoon")
    timed = {s: descriptors(describer, s, args.size, args.count) for s in styles}
    found = {s: descriptor for s, (descriptor, _) in timed.items()}
    seconds = sum(spent for _, spent in timed.values())
    print(f"{args.count} faces of seed {HELD_OUT_SEED} at {args.size} px; dlib's threshold "
          f"{SAME_PERSON}; {1000 * seconds / (3 * args.count):.0f} ms a face to describe "
          "(enlarged to 200 px, landmarks, the ResNet)")  # fmt: skip
    print(f"{'from':>8} {'to':>8} {'median':>7} {'same<0.6':>9} {'others<0.6':>11} {'top-1':>6}")
    for source in styles:
        for target in styles:
            summary = identity_summary(found[source], found[target])
            across = np.linalg.norm(found[target][:, None] - found[source][None], axis=-1)
            others = across[~np.eye(len(across), dtype=bool)]  # twin i against face j != i
            own = "–" if source == target else f"{summary['median']:.3f}"
            same = "–" if source == target else f"{summary['same_person']:.2f}"
            top1 = "–" if source == target else f"{summary['top1']:.2f}"
            print(
                f"{source:>8} {target:>8} {own:>7} {same:>9} "
                f"{(others < SAME_PERSON).mean():11.2f} {top1:>6}"
            )


if __name__ == "__main__":
    main()
