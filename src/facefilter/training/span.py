"""The steps a run's schedules span: `Progress.total`, which every schedule divides by.

`--max-steps` or `--epochs` give it, or `--schedule-steps` outright. A `--train-time`
budget gives minutes, not steps, and a schedule spread over `--max-steps` (20,000 by
default) would never anneal in a ten-minute run: its span is the steps the budget will
reach, estimated once from the pace of the run's first steps. The estimate is recorded
in config.json as `schedule_steps`, so `--resume` continues the same schedules exactly
instead of guessing again at another pace.
"""

from __future__ import annotations

import time

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast

from facefilter.training.config import TrainConfig

SKIP_STEPS = 5  # not timed: the first steps allocate, start the loader, warm caches
TIMED_STEPS = 20  # timed after those: the span is fixed from their pace


class ScheduleSpan:
    """Progress.total for each step. Until a time budget's estimate is in (the first
    SKIP_STEPS + TIMED_STEPS steps), the schedules span the steps the run may take at
    most; a step-based schedule that far from its end has hardly moved either way."""

    def __init__(self, config: TrainConfig, total: int) -> None:
        given = config.schedule_steps
        self.steps = given if given is not None else total
        self.estimating = given is None and config.train_time is not None
        self._timed_since = 0.0

    def observe(self, step: int, start: int, deadline: float, accelerator: Accelerator) -> bool:
        """After each step (`step` steps done): True when the span was fixed just now."""
        if not self.estimating:
            return False
        done = step - start
        if done == SKIP_STEPS:
            self._timed_since = time.monotonic()
        if done < SKIP_STEPS + TIMED_STEPS:
            return False
        now = time.monotonic()
        pace = TIMED_STEPS / max(now - self._timed_since, 1e-9)  # steps a second
        estimate = step + round(pace * max(deadline - now, 0.0))
        self.steps = agree(min(self.steps, max(estimate, step + 1)), accelerator)
        self.estimating = False
        return True


def agree(steps: int, accelerator: Accelerator) -> int:
    """The main process's estimate, for every process: the schedules must match."""
    if accelerator.num_processes == 1:
        return steps
    value = torch.tensor([steps], device=accelerator.device)
    return int(broadcast(value, from_process=0).item())
