"""The steps a run's schedules span: `Progress.total`, which every schedule divides by.

`--max-steps` or `--epochs` give it, or `--schedule-steps` outright. A `--train-time`
budget gives minutes, not steps, and a schedule spread over `--max-steps` (20,000 by
default) would never anneal in a ten-minute run: its span is the steps the budget will
reach, estimated once from the pace of the run's first steps. The run then ends where
its schedules do (or where the budget does, if first): steps past the span would train
at a learning rate decayed to nothing. The estimate is recorded in config.json as
`schedule_steps`, so `--resume` continues the same schedules instead of guessing again.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast

from facefilter.training.config import TrainConfig

SKIP_STEPS = 5  # not timed: the first steps allocate, start the loader, warm caches
TIMED_STEPS = 20  # then at least this many are timed, and the span fixed from their pace


class ScheduleSpan:
    """Progress.total for each step. Until a time budget's estimate is in, the schedules
    span the steps the run may take at most (`--max-steps`): a schedule moves little in
    its first steps either way, though a budget of very few steps jumps when it is fixed.
    The pace is timed between two logged steps, where the engine has waited for the
    device, so steps still queued on a GPU do not count as done; the time samples,
    checkpoints and --eval-every take later is not in it."""

    def __init__(self, config: TrainConfig, total: int) -> None:
        given = config.schedule_steps
        self.steps = given if given is not None else total
        self.estimating = given is None and config.train_time is not None
        self._every = config.log_every
        self._timed_from: tuple[int, float] | None = None  # (step, time) the timing began

    @property
    def settled(self) -> bool:
        """The span will not change in this run (a growth schedule may fix itself to it)."""
        return not self.estimating

    def observe(
        self, step: int, start: int, deadline: float, accelerator: Accelerator,
        summary: dict[str, Any],
    ) -> None:  # fmt: skip
        """After each step, once its logs are read (`step` steps done): fix the span when
        enough steps are timed, record it in `summary` (config.json) and say so."""
        if not self.estimating or step % self._every:
            return
        if self._timed_from is None:
            if step - start >= SKIP_STEPS:
                self._timed_from = (step, time.monotonic())
            return
        if step - self._timed_from[0] < TIMED_STEPS:
            return
        estimate = expected_end(step, *self._timed_from, deadline)
        self.steps = agree(min(self.steps, max(estimate, step + 1)), accelerator)
        self.estimating = False
        summary["schedule_steps"] = self.steps  # config.json: --resume keeps the span
        accelerator.print(f"--train-time: the schedules span {self.steps} steps, at the pace "
                          f"of steps {self._timed_from[0] + 1}-{step}")  # fmt: skip


def expected_end(step: int, start: int, began: float, deadline: float) -> int:
    """The step a time budget will end at, at the pace of the steps since `start` (taken
    from time `began`): the progress bar's end, and a budget's span."""
    now = time.monotonic()
    elapsed = max(now - began, 1e-6)
    return step + round((step - start) * max(deadline - now, 0.0) / elapsed)


def agree(steps: int, accelerator: Accelerator) -> int:
    """The main process's estimate, for every process: the schedules must match."""
    if accelerator.num_processes == 1:
        return steps
    value = torch.tensor([steps], device=accelerator.device)
    return int(broadcast(value, from_process=0).item())
