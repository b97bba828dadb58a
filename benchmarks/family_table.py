"""Every family on its synthetic task, trained and scored by `facefilter eval`: the table
later changes are judged by.

    python benchmarks/family_table.py --classifier runs/classifier [--out runs/table]
        [--only cyclegan-lite,trvae] [--scale 0.5]

Each entry trains with the real CLI at 32 px (the makeover at 32x40), then runs
`facefilter eval` on the test split (held-out faces of the training seed) with the
attribute classifier given, and prints one markdown row per scored direction: L1,
SSIM and identity top-1 against the true outputs (with doing nothing beside them),
the share of outputs the classifier puts in the wanted style, attribute success (the
share of faces that end with the edited value; the other attributes kept), dlib's
same-person share, KID x 100 on the classifier's features, and the training minutes.
A run already in --out is scored again, not retrained. `--scale` multiplies every
step count (0.1 for a quick look).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

COMMON = ["--num-workers", "1", "--no-progress", "--save-every", "500", "--sample-every", "500"]
PHOTO_ANIME = ["--data-a", "synth:photo", "--data-b", "synth:anime"]
FEMALE = "synth:photo?count=4000&where=-Male,-Wearing_Lipstick&name=female"
# name -> (family, training flags, steps, [(eval flags, label)])
ENTRIES: dict[str, tuple[str, list[str], int, list[tuple[list[str], str]]]] = {
    "cyclegan-lite": ("cyclegan-lite", [*PHOTO_ANIME, "--size", "32", "--batch-size", "4"],
                      1600, [(["--to", "anime"], "photo -> anime")]),
    "cyclegan": ("cyclegan", [*PHOTO_ANIME, "--size", "32"], 1600,
                 [(["--to", "anime"], "photo -> anime")]),
    "trvae": ("trvae", ["--data", "synth:photo,anime,cartoon", "--size", "32"], 2000,
              [(["--from", "photo", "--to", "anime"], "photo -> anime"),
               (["--from", "photo", "--to", "cartoon"], "photo -> cartoon")]),
    "trvae-batch-1": ("trvae", ["--data", "synth:photo,anime,cartoon", "--size", "32",
                                "--batch-size", "1"], 2000,
                      [(["--from", "photo", "--to", "anime"], "photo -> anime (collapsed)")]),
    "dcae": ("dcae", ["--data", "synth:photo", "--size", "32"], 3000,
             [(["--to", "+Eyeglasses", "--strength", "1.5"], "+Eyeglasses"),
              (["--to", "+Smiling", "--strength", "1.5"], "+Smiling")]),
    "pgae": ("pgae", ["--data", "synth:photo", "--size", "32"], 3000,
             [(["--to", "+Eyeglasses", "--strength", "1.5"], "+Eyeglasses"),
              (["--to", "+Smiling", "--strength", "1.5"], "+Smiling")]),
    "makeover": ("makeover", ["--data-a", "synth:photo?count=4000&where=Male", "--data-b",
                              FEMALE, "--size", "32x40", "--annealing-half-life", "1000",
                              "--pixel-scale", "30", "--instance-noise", "0.1",
                              "--ema-decay", "0.99", "--critic", "32", "48", "64", "96",
                              "--critic-steps", "1"], 1500,
                 [([], "men -> women")]),
}  # fmt: skip


def facefilter(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "facefilter", *args], check=False)
    if done.returncode:
        raise SystemExit(f"facefilter {' '.join(args)} failed ({done.returncode})")


def train(run: Path, family: str, flags: list[str], steps: int) -> float:
    """Minutes of training (0 when the run was already there)."""
    if (run / "model.safetensors").is_file():
        return 0.0
    began = time.monotonic()
    facefilter("train", family, *flags, *COMMON, "--max-steps", str(steps), "--out", str(run))
    return (time.monotonic() - began) / 60


def score(run: Path, flags: list[str], classifier: Path, out: Path) -> dict:
    facefilter("eval", str(run), *flags, "--classifier", str(classifier), "-o", str(out))
    return json.loads((out / "metrics.json").read_text())


def cell(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def row(name: str, label: str, steps: int, minutes: float, metrics: dict) -> str:
    paired = metrics.get("paired", {})
    mine, nothing = paired.get("filter", {}), paired.get("do_nothing", {})
    style = metrics.get("style", {})
    attributes = metrics.get("attributes", {})
    identity = metrics.get("identity_dlib", {})
    kid = metrics.get("distribution", {}).get("filter", {}).get("kid_x100")
    pairs = " / ".join(f"{cell(mine.get(k))} ({cell(nothing.get(k))})"
                       for k in ("l1", "ssim", "top1"))  # fmt: skip
    return (f"| {name} | {label} | {steps} | {minutes:.1f} | {pairs} | "
            f"{cell(style.get('share'), 2)} | {cell(attributes.get('success'), 2)} | "
            f"{cell(attributes.get('kept'), 2)} | {cell(identity.get('same_person'), 2)} | "
            f"{cell(kid, 2)} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", type=Path, required=True, help="a classifier run")
    parser.add_argument("--out", type=Path, default=Path("runs/table"))
    parser.add_argument("--only", default="", help="comma list of entries (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every step count")
    args = parser.parse_args()
    chosen = [n for n in ENTRIES if not args.only or n in args.only.split(",")]
    lines = ["| family | task | steps | train min | L1 / SSIM / top-1 (do nothing) | style | "
             "attribute success | others kept | dlib same person | KID x100 |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in chosen:
        family, flags, steps, evals = ENTRIES[name]
        steps = max(1, round(steps * args.scale))
        run = args.out / name
        minutes = train(run, family, flags, steps)
        for eval_flags, label in evals:
            folder = run / "eval-table" / label.split(" (")[0].replace(" -> ", "-to-")
            lines.append(
                row(name, label, steps, minutes, score(run, eval_flags, args.classifier, folder))
            )
            print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
