"""The training engine's own overhead: steps per second through `facefilter train`'s loop
against a bare loop of the same networks and losses, written here, in one process.

At 16 px the networks' work is tiny, so what is left is the engine: data loading
(synthetic faces rendered once at 32 px into folders of PNGs, decoded and resized per
item; the renderer draws 32 px at the least), flips, the
schedule, the stop check, EMA, logging every `log_every` steps. The bare loop calls the
same family's `train_step` on batches already in memory, with the learning-rate
schedule and nothing else. Start-up (model build, first steps, the final save) is taken
out of the engine's figure by running two lengths and timing the difference. Runs
alternate, engine and bare, and the medians are compared; goal: the engine at 0.90 or
more of the bare loop's steps per second.

    python benchmarks/engine_overhead.py [--steps 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from facefilter.data.sources import open_source
from facefilter.models import config_class, create_family
from facefilter.models.base import Progress
from facefilter.pictures import save_picture
from facefilter.pixels import to_pixels
from facefilter.training.config import TrainConfig
from facefilter.training.engine import train

SIZE, BATCH, COUNT = 16, 2, 64
TINY = {"ngf": 8, "ndf": 8, "n_blocks": 1}


def model_config():
    return config_class("cyclegan-lite")(**TINY)


def engine_seconds(root: Path, steps: int, data: tuple[str, str], workers: int) -> float:
    """Seconds of `steps` steps through the engine: a run of 2N minus a run of N."""
    took = []
    for length in (steps, 2 * steps):
        config = TrainConfig(out=root / f"run-{length}", data_a=data[0], data_b=data[1],
                             size=SIZE, batch_size=BATCH, max_steps=length, num_workers=workers,
                             progress=False, sample_every=10**6, save_every=10**6)  # fmt: skip
        start = time.perf_counter()
        train(config, "cyclegan-lite", model_config())
        took.append(time.perf_counter() - start)
    return took[1] - took[0]


def bare_seconds(steps: int, faces: dict[str, torch.Tensor]) -> float:
    """Seconds of `steps` calls of the same family's train_step on batches in memory."""
    torch.manual_seed(0)
    family = create_family("cyclegan-lite", model_config(), ["photo", "anime"], SIZE)
    family.setup(Accelerator(cpu=True))
    family.train()
    total = 2 * steps + 5

    def step(index: int) -> None:
        batch = {}
        for key, images in faces.items():
            at = (index * BATCH) % (len(images) - BATCH)
            batch[key] = images[at : at + BATCH]
        progress = Progress(index, total)
        family.set_learning_rates(progress)
        family.train_step(batch, progress)

    for index in range(5):  # warm-up, as the engine's first steps are in both its runs
        step(index)
    start = time.perf_counter()
    for index in range(5, 5 + steps):
        step(index)
    return time.perf_counter() - start


def write_pngs(folder: Path, style: str) -> str:
    """`COUNT` synthetic faces of `style` as PNGs (32 px, the renderer's least)."""
    source = open_source(f"synth:{style}?count={COUNT}", 32, "train")
    for index in range(len(source)):
        picture = to_pixels(source[index]["image"]).permute(1, 2, 0).numpy()  # (H, W, 3)
        save_picture(folder / f"{index:03d}.png", picture)
    return f"folder:{folder}"


def loaded(spec: str) -> torch.Tensor:
    source = open_source(spec, SIZE, "train")
    return torch.stack([source[i]["image"] for i in range(len(source))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pngs = (write_pngs(root / "a", "photo"), write_pngs(root / "b", "anime"))
        faces = {"real_a": loaded(pngs[0]), "real_b": loaded(pngs[1])}
        cases = {"engine, 0 workers": 0, "engine, 2 workers": 2}
        rates: dict[str, list[float]] = {name: [] for name in ("bare loop", *cases)}
        for repeat in range(args.repeats):  # alternating: every case sees the same machine
            rates["bare loop"].append(args.steps / bare_seconds(args.steps, faces))
            for name, workers in cases.items():
                folder = root / f"{repeat}-{workers}"
                seconds = engine_seconds(folder, args.steps, pngs, workers)
                rates[name].append(args.steps / seconds)
    bare = statistics.median(rates["bare loop"])
    threads = torch.get_num_threads()
    print(f"cyclegan-lite {TINY} at {SIZE} px, batch {BATCH}, {args.steps} steps, {threads} "
          f"torch threads; medians of {args.repeats} alternating runs")  # fmt: skip
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"  {name:<20} {median:7.1f} steps/s  ({median / bare:.2f} of the bare loop)")
    print("goal: the engine at 0.90 or more of the bare loop")


if __name__ == "__main__":
    main()
