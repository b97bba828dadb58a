"""How fast does a makeover training step run at the defaults, beside the earlier defaults?

    python benchmarks/makeover_speed.py [--steps 40] [--rounds 2]

One process, the two settings timed in turn (each round both), at 32x40, batch 16, on
random images (speed does not depend on the faces): the defaults (masked generator, the
GAN loss with R1 every 4th step, one critic step) and the earlier ones (WGAN-GP, two
critic steps, unmasked). Prints images a second for each and their ratio.
"""

from __future__ import annotations

import argparse
import time

import torch
from accelerate import Accelerator

from facefilter.models import create_family
from facefilter.models.base import Progress
from facefilter.models.makeover import MakeoverConfig

BATCH, SIZE, WARMUP = 16, "32x40", 8
EARLIER = {"gan_loss": "wgan-gp", "critic_steps": 2, "masked": False, "pixel_scale": 30.0}


def images_per_second(settings: dict[str, object], steps: int) -> float:
    torch.manual_seed(0)
    family = create_family("makeover", MakeoverConfig(**settings), ["a", "b"], SIZE)  # type: ignore[arg-type]
    family.setup(Accelerator(cpu=True))
    family.train()
    batch = {"real_a": torch.randn(BATCH, 3, 40, 32), "real_b": torch.randn(BATCH, 3, 40, 32)}
    for step in range(WARMUP + steps):
        if step == WARMUP:
            began = time.perf_counter()
        family.set_learning_rates(Progress(step, 1000))
        family.train_step(batch, Progress(step, 1000))
        family.update_ema()
    return BATCH * steps / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for round in range(1, args.rounds + 1):
        earlier = images_per_second(EARLIER, args.steps)
        now = images_per_second({}, args.steps)
        print(f"round {round}: defaults {now:.0f} images/s, earlier defaults {earlier:.0f} "
              f"images/s: {now / earlier:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
