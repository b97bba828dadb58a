"""What a small style set costs a filter, and what DiffAugment and --init-from win back.

    python benchmarks/few_shot.py --classifier runs/judge            # the README's curve
    python benchmarks/few_shot.py --plan "plain=100,all"             # a part of it
    python benchmarks/few_shot.py --size 32 --steps 2400 --out runs/bench-few-shot-long \
        --plan "plain=50,300,all;diffaug=50;init-only=50,100"        # the longer runs

Photo -> anime with `cyclegan-lite` at 64 px, trained through the real CLI: the photo
side unlimited (`synth:photo`), the anime side limited to the first N faces of another
seed's set (`synth:anime?seed=1&limit=N`: no anime picture shows a person of the photo
set), every run the same steps, batch and seed. Arms:

- plain: the defaults;
- diffaug: `--diff-augment color,translation,cutout` on both discriminators;
- init-only: `--init-from` a photo -> cartoon run trained first on all its cartoon faces
  (the filter a user has); init: the same with DiffAugment; init+freezeD adds
  `--freeze-d 2`.

Each run is scored by `facefilter eval` on the 200 held-out photos against their true
anime twins: L1 and identity top-1 beside doing nothing, the classifier's style verdict
(the share of outputs it calls anime), KID on the classifier's features against the
held-out anime faces. Prints the table, each run's top-1 and verdict as a share of the
all-data plain run's (the issue's bars: 300 faces >= 90%, 100 with --init-from >= 80%),
writes results.json and a plot, and with --docs copies the plot and sheets there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from torchvision.utils import save_image

from facefilter.data.sources import open_source
from facefilter.safe_io import atomic_write

PHOTOS = "synth:photo"
TARGET = "synth:{style}?seed=1{limit}&name={style}"  # another seed: other people
AUGMENT = ["--diff-augment", "color,translation,cutout"]
ARMS: dict[str, list[str]] = {
    "plain": [],
    "diffaug": AUGMENT,
    "init-only": [],  # --init-from the cartoon run, nothing else
    "init": AUGMENT,  # and --init-from the cartoon run
    "init+freezeD": [*AUGMENT, "--freeze-d", "2"],
}
# which anime set sizes each arm trains on (a start matters where the target set is small)
PLAN = "plain=50,100,300,1000,all;diffaug=50,100,300;init-only=50,100;init=50,100;init+freezeD=100"
# the bars: the share of the all-data run's top-1 and verdict, by target set size
BARS = {"300": (("plain", "diffaug"), 0.9), "100": (("init-only", "init", "init+freezeD"), 0.8)}


def facefilter(*args: str) -> None:
    print("$ facefilter " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "facefilter", *args], check=True)


def target(limit: str, style: str = "anime") -> str:
    return TARGET.format(style=style, limit="" if limit == "all" else f"&limit={limit}")


def train(run: Path, data_b: str, args: argparse.Namespace, extra: list[str]) -> float:
    if (run / "model.safetensors").is_file() and args.keep:
        return float("nan")  # trained by an earlier call with --keep
    shutil.rmtree(run, ignore_errors=True)
    started = time.monotonic()
    facefilter("train", "cyclegan-lite", "--data-a", PHOTOS, "--data-b", data_b,
               "--size", str(args.size), "--batch-size", str(args.batch_size),
               "--max-steps", str(args.steps), "--save-every", str(args.steps),
               "--no-progress", "--out", str(run), *extra)  # fmt: skip
    return (time.monotonic() - started) / 60


def evaluate(run: Path, args: argparse.Namespace) -> dict[str, float]:
    out = run / "eval"
    if not (args.keep and (out / "metrics.json").is_file()):
        facefilter("eval", str(run), "--to", "anime", "--classifier", str(args.classifier),
                   "--reference", target("all"), "--no-identity", "-o", str(out))  # fmt: skip
    metrics: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    paired, kid = metrics["paired"], metrics["distribution"]
    return {
        "l1": paired["filter"]["l1"],
        "l1_nothing": paired["do_nothing"]["l1"],
        "top1": paired["filter"]["top1"],
        "top1_nothing": paired["do_nothing"]["top1"],
        "verdict": metrics["style"]["share"],
        "kid": kid["filter"]["kid_x100"],
        "kid_nothing": kid["do_nothing"]["kid_x100"],
    }


def run_all(args: argparse.Namespace) -> dict[str, dict[str, dict[str, float]]]:
    results: dict[str, dict[str, dict[str, float]]] = {}
    if any(arm.startswith("init") for arm in args.plan):
        source = args.out / "cartoon-all"
        minutes = train(source, target("all", "cartoon"), args, [])
        print(f"the filter to start from: photo -> cartoon, {minutes:.1f} min", flush=True)
    for arm, limits in args.plan.items():
        for limit in limits:
            run = args.out / f"{arm}-{limit}"
            extra = list(ARMS[arm])
            if arm.startswith("init"):
                extra += ["--init-from", str(args.out / "cartoon-all")]
            minutes = train(run, target(limit), args, extra)
            figures = evaluate(run, args) | {"minutes": minutes}
            results.setdefault(arm, {})[limit] = figures
            print(f"{arm} {limit} ({minutes:.1f} min): {line(figures)}", flush=True)
    return results


def emoji_example(args: argparse.Namespace) -> None:
    """Photo -> emoji from the font's faces, started from the all-data photo -> anime run:
    the README's few-shot example. No truth exists, so KID against the emoji beside doing
    nothing, and a sheet of held-out photos to look at."""
    run, start = args.out / "emoji", args.out / "plain-all"
    minutes = train(run, "emoji:", args, [*AUGMENT, "--init-from", str(start)])
    emoji = open_source("emoji:", args.size, "train")  # a strip of every fifth: what it saw
    strip = torch.stack([emoji[i]["image"] for i in range(0, len(emoji), 5)])
    atomic_write(run / "faces.png", lambda part: save_image(
        (strip + 1) / 2, part, format="png", nrow=12, padding=2, pad_value=1))  # fmt: skip
    photos = run / "held-out"
    facefilter("data", "synth", "--out", str(photos), "--count", "12", "--size",
               str(args.size), "--seed", "12345", "--styles", "photo")  # fmt: skip
    facefilter("apply", str(run), str(photos / "photo"), "--to", "emoji", "--detect", "never",
               "-o", str(run / "applied"), "--sheet", str(run / "sheet.png"))  # fmt: skip
    facefilter("eval", str(run), "--to", "emoji", "--classifier", str(args.classifier),
               "--no-identity", "-o", str(run / "eval"))  # fmt: skip
    kid = json.loads((run / "eval" / "metrics.json").read_text())["distribution"]
    print(f"photo -> emoji from the font's faces ({minutes:.1f} min): KID x100 "
          f"{kid['filter']['kid_x100']:.1f} (doing nothing {kid['do_nothing']['kid_x100']:.1f}); "
          f"sheet: {run / 'sheet.png'}")  # fmt: skip


def line(f: dict[str, float]) -> str:
    return (f"L1 {f['l1']:.3f} ({f['l1_nothing']:.3f})  top-1 {f['top1']:.3f} "
            f"({f['top1_nothing']:.3f})  verdict {f['verdict']:.2f}  KID x100 {f['kid']:.1f} "
            f"({f['kid_nothing']:.1f})")  # fmt: skip


def table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    full = results.get("plain", {}).get("all")
    print(
        "\narm            anime faces     L1  top-1  verdict  KID x100  top-1 / all  verdict / all"
    )
    for arm, rows in results.items():
        for limit, f in rows.items():
            shares = ("", "")
            if full is not None:
                shares = (f"{share(f, full, 'top1'):.2f}", f"{share(f, full, 'verdict'):.2f}")
            print(f"{arm:<14} {limit:>11} {f['l1']:6.3f} {f['top1']:6.3f} {f['verdict']:8.2f} "
                  f"{f['kid']:9.1f} {shares[0]:>12} {shares[1]:>14}")  # fmt: skip
    if full is None:
        return
    for limit, (arms, bar) in BARS.items():
        for arm in arms:
            f = results.get(arm, {}).get(limit)
            if f is not None:
                worst = min(share(f, full, "top1"), share(f, full, "verdict"))
                met = "meets" if worst >= bar else "misses"
                print(f"{arm} with {limit} faces: {worst:.2f} of the all-data run at worst; "
                      f"{met} the bar of {bar:.0%}")  # fmt: skip


def share(figures: dict[str, float], full: dict[str, float], key: str) -> float:
    """`figures[key]` as a share of the all-data run's (nan when that is 0)."""
    return figures[key] / full[key] if full[key] else float("nan")


def plot(results: dict[str, dict[str, dict[str, float]]], path: Path, everything: int) -> None:
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for arm, rows in results.items():
        sizes = [everything if limit == "all" else int(limit) for limit in rows]
        for axis, key in zip(axes, ("top1", "verdict", "kid"), strict=True):
            axis.plot(sizes, [rows[limit][key] for limit in rows], "o-", label=arm)
    titles = ("identity top-1 (held-out photos)", "style verdict (share called anime)",
              "KID x100 on the classifier's features")  # fmt: skip
    for axis, title in zip(axes, titles, strict=True):
        axis.set_xscale("log")
        axis.set_xlabel("anime training faces")
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    atomic_write(path, lambda part: figure.savefig(part, format="png", dpi=110))
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", default=PLAN, help="ARM=LIMIT,...;ARM=... (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--classifier", type=Path, default=Path("runs/judge"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench-few-shot"))
    parser.add_argument("--keep", action="store_true",
                        help="reuse the runs and scores already there")  # fmt: skip
    parser.add_argument("--docs", type=Path, help="copy the plot and the --sheets here")
    parser.add_argument("--docs-name", default="few_shot", help="their names' stem in --docs")
    parser.add_argument("--sheets", default="plain-100,init+freezeD-100",
                        help="the runs whose eval sheets --docs copies")  # fmt: skip
    parser.add_argument("--emoji", action="store_true",
                        help="also train photo -> emoji from the plain all-data run")  # fmt: skip
    args = parser.parse_args()
    args.plan = dict(part.split("=", 1) for part in args.plan.split(";"))
    for arm, limits in args.plan.items():
        if arm not in ARMS:
            parser.error(f"--plan: unknown arm {arm!r}; choose from {', '.join(ARMS)}")
        args.plan[arm] = limits.split(",")
    if not (args.classifier / "config.json").is_file():
        parser.error(f"--classifier {args.classifier}: no run there; `make judge` trains one")
    if args.emoji and "all" not in args.plan.get("plain", []):
        parser.error("--emoji starts from the plain all-data run: keep plain=...,all in --plan")
    args.out.mkdir(parents=True, exist_ok=True)
    results = run_all(args)
    table(results)
    if args.emoji:
        emoji_example(args)
    atomic_write(args.out / "results.json",
                 lambda part: part.write_text(json.dumps(results, indent=1)))  # fmt: skip
    every = len(open_source(target("all"), args.size, "train"))  # the all-data set's size
    plot(results, args.out / "few_shot.png", every)
    print(f"\nplot: {args.out / 'few_shot.png'}; figures: {args.out / 'results.json'}")
    if args.docs:
        copies = {f"{args.docs_name}.png": args.out / "few_shot.png"}
        for run in filter(None, args.sheets.split(",")):
            name = run.replace("+", "_").replace("-", "_")
            copies[f"{args.docs_name}_{name}.png"] = args.out / run / "eval" / "samples.png"
        if args.emoji:
            copies["few_shot_emoji.png"] = args.out / "emoji" / "sheet.png"
            copies["emoji_faces.png"] = args.out / "emoji" / "faces.png"
        for name, file in copies.items():
            atomic_write(args.docs / name, lambda part, f=file: shutil.copyfile(f, part))
            print(f"copied {args.docs / name}")


if __name__ == "__main__":
    main()
