"""Does the makeover GAN turn men into women, and women into men, at its defaults?

    python benchmarks/makeover_quality.py --direction both --size 32x40 --train-time 10 \\
        --classifier runs/judge
    python benchmarks/makeover_quality.py --direction mtf ... -- --pixel-scale 50   # a change

Each direction is trained through the real CLI as a new user would run it: the family's
defaults, the README's data filters (`SETS`), a --train-time budget, a checkpoint kept
every --every steps; any flags after `--` go to `facefilter train` too. Every kept
checkpoint is then scored by `facefilter eval` on --curve-count held-out faces (the
test split; no dlib) for the curve, and the final model on the whole test split with
dlib identity. The figures the issue asks for, each beside its bar:

- verdict: the share of outputs the attribute classifier (--classifier, e.g. `make
  judge`'s runs/judge) puts on the target side of Male (bar 0.80), beside the share it
  gives the inputs and the true twins (a judge that calls the twins men judges nothing);
- identity top-1 among the true twins (bar 0.9; the renderer draws each held-out face
  with Male flipped and every other target term forced: the same person, pose, light);
- L1 to the true twins as a share of doing nothing's (bar 0.85);
- dlib: the share of outputs dlib calls the same person as their input (< 0.6), and the
  share of pairs of different inputs it calls so (the control it must beat).

`--docs DIR` copies each direction's eval sheet (inputs, outputs, true twins) there.
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

from facefilter.safe_io import atomic_write

# The README's filters: glasses out on both sides (deep-makeover's), and a target set that
# looks as the true twins do. Synthetic women wear lipstick half the time and the twin of
# a man does not; a woman's twin as a man is clean-shaven and keeps her hair.
SETS = {
    "mtf": ("synth:photo?where=Male,-Eyeglasses",
            "synth:photo?where=-Male,-Eyeglasses,-Wearing_Lipstick&name=female"),
    "ftm": ("synth:photo?where=-Male,-Eyeglasses",
            "synth:photo?where=Male,-Eyeglasses,No_Beard,-Bald&name=male"),
}  # fmt: skip
WANTED_MALE = {"mtf": False, "ftm": True}
BARS = {"verdict": 0.80, "top1": 0.9, "l1_ratio": 0.85}


def facefilter(*args: str) -> None:
    command = [sys.executable, "-m", "facefilter", *args]
    print("$ facefilter " + " ".join(args), flush=True)
    subprocess.run(command, check=True)


def train(direction: str, run: Path, args: argparse.Namespace, extra: list[str]) -> float:
    data_a, data_b = SETS[direction]
    shutil.rmtree(run, ignore_errors=True)
    started = time.monotonic()
    facefilter(
        "train",
        "makeover",
        "--data-a",
        data_a,
        "--data-b",
        data_b,
        "--size",
        args.size,
        "--train-time",
        f"{args.train_time:g}",
        "--save-every",
        str(args.every),
        "--keep-checkpoints",
        "1000",
        "--no-progress",
        "--out",
        str(run),
        *extra,
    )
    return (time.monotonic() - started) / 60


def evaluate(run: str, out: Path, classifier: Path, count: int | None) -> dict[str, Any]:
    flags = ["--classifier", str(classifier), "-o", str(out)]
    flags += ["--count", str(count), "--no-identity"] if count else []
    facefilter("eval", run, *flags)
    metrics: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    return metrics


def figures(metrics: dict[str, Any], direction: str) -> dict[str, float]:
    paired, male = metrics["paired"], metrics["attributes"]["edited"]["Male"]
    result = {
        "verdict": male["after"],
        "verdict_inputs": male["before"],
        "verdict_twins": male.get("truth", float("nan")),
        "top1": paired["filter"]["top1"],
        "top1_nothing": paired["do_nothing"]["top1"],
        "l1_ratio": paired["filter"]["l1"] / paired["do_nothing"]["l1"],
    }
    assert male["wanted"] == WANTED_MALE[direction], male
    dlib = metrics.get("identity_dlib")
    if dlib:
        result |= {
            "dlib_same": dlib["same_person"],
            "dlib_different": dlib["different_inputs_same_person"],
        }
    return result


def line(figs: dict[str, float]) -> str:
    text = (
        f"verdict {figs['verdict']:.2f} (inputs {figs['verdict_inputs']:.2f}, twins "
        f"{figs['verdict_twins']:.2f})  top-1 {figs['top1']:.2f} (nothing "
        f"{figs['top1_nothing']:.2f})  L1 ratio {figs['l1_ratio']:.3f}"
    )
    if "dlib_same" in figs:
        text += f"  dlib same {figs['dlib_same']:.2f} (different: {figs['dlib_different']:.2f})"
    return text


def verdict(figs: dict[str, float]) -> str:
    met = {
        "verdict": figs["verdict"] >= BARS["verdict"],
        "top1": figs["top1"] >= BARS["top1"],
        "l1_ratio": figs["l1_ratio"] < BARS["l1_ratio"],
    }
    missed = [name for name, ok in met.items() if not ok]
    return "misses: " + ", ".join(missed) if missed else "meets all three bars"


def pace(run: Path) -> str:
    """The steps the run took and its median images a second, from its own log."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = sorted(row["images_per_s"] for row in rows)
    return f"{rows[-1]['step']} steps at a median {rates[len(rates) // 2]:.0f} images/s"


def one_direction(direction: str, args: argparse.Namespace, extra: list[str]) -> None:
    run = args.out / direction
    minutes = train(direction, run, args, extra)
    print(f"{direction}: trained {minutes:.1f} min (with start-up), {pace(run)}", flush=True)
    curve = []
    for snapshot in sorted((run / "checkpoints").glob("step-*.safetensors")):
        step = int(snapshot.stem.split("-")[1])
        metrics = evaluate(
            f"{run}@step-{step}", run / "curve" / str(step), args.classifier, args.curve_count
        )
        curve.append((step, figures(metrics, direction)))
    final = figures(evaluate(str(run), run / "eval", args.classifier, None), direction)
    steps = json.loads((run / "config.json").read_text())["train"].get("schedule_steps")
    print(
        f"\n{direction} ({' -> '.join(SETS[direction])}), {args.size}, --train-time "
        f"{args.train_time:g}, schedules spanning {steps} steps {' '.join(extra)}"
    )
    for step, figs in curve:
        print(f"  step {step:>6} ({args.curve_count} faces): {line(figs)}")
    print(f"  final (all test faces): {line(final)}")
    print(f"  {verdict(final)} (bars: verdict >= 0.80, top-1 >= 0.9, L1 ratio < 0.85)")
    if args.docs:
        target = args.docs / f"makeover_{direction}_{args.size}.png"
        atomic_write(target, lambda part: shutil.copyfile(run / "eval" / "samples.png", part))
        print(f"  sheet: {target}")


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--direction", choices=[*sorted(SETS), "both"], default="both")
    parser.add_argument("--size", default="32x40")
    parser.add_argument("--train-time", type=float, default=10.0, help="minutes per direction")
    parser.add_argument("--every", type=int, default=300, help="steps between curve points")
    parser.add_argument("--curve-count", type=int, default=64, help="faces per curve point")
    parser.add_argument("--classifier", type=Path, default=Path("runs/judge"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench-makeover"))
    parser.add_argument("--docs", type=Path, help="copy each direction's sheet here")
    args = parser.parse_args(argv)
    if not (args.classifier / "config.json").is_file():
        parser.error(f"--classifier {args.classifier}: no run there; `make judge` trains one")
    for direction in sorted(SETS) if args.direction == "both" else [args.direction]:
        one_direction(direction, args, extra)


if __name__ == "__main__":
    main()
