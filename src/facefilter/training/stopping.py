"""Stopping a training run cleanly: Ctrl-C, a time budget, and every process agreeing.

The first Ctrl-C asks the loop to finish its step, save and exit (130); a second one
aborts at once. SIGTERM, which batch schedulers (Slurm, Kubernetes) send before they
kill, is treated the same. With several processes the decision is reduced across them, so no
process waits in a gradient all-reduce while another saves.
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from facefilter.errors import UserError
from facefilter.models.base import Family
from facefilter.runs.checkpoint import saved_step

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """First Ctrl-C (or SIGTERM) asks the loop to save and stop after the current step; a
    second aborts."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: dict[int, Any] = {}
        self.pid = os.getpid()

    def __enter__(self) -> StopRequest:
        self.pid = os.getpid()
        self.previous = {number: signal.signal(number, self._handle) for number in SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if os.getpid() != self.pid:
            return  # a data-loading worker forked from us: the main process decides
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        cause = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
        print(f"\nstopping ({cause}): finishing this step and saving a checkpoint (Ctrl-C "
              "again to abort)")  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        for number, previous in self.previous.items():
            signal.signal(number, previous)


# Steps between the processes' agreement on stopping: agreeing is an all-reduce, which
# waits for the device, so it is not done every step (a Ctrl-C stops up to this many later).
AGREE_EVERY = 10


def should_stop(
    stop: StopRequest, deadline: float, accelerator: Accelerator, step: int | None = None
) -> bool:
    """Stop before `step`? Agreed by every process: one that stopped alone would wait in the
    checkpoint barrier while the others wait in a gradient all-reduce. Several processes
    agree every AGREE_EVERY steps (and whenever `step` is None)."""
    local = stop.requested or time.monotonic() >= deadline
    if accelerator.num_processes == 1:
        return local  # nothing to agree on: no wait for the device
    if step is not None and step % AGREE_EVERY:
        return False
    flags = torch.tensor([float(stop.requested), float(local)], device=accelerator.device)
    flags = accelerator.reduce(flags, reduction="sum")
    stop.requested = bool(flags[0] > 0)  # so every process saves and exits 130 alike
    return bool(flags[1] > 0)


# --- divergence: a NaN or infinite loss stops the run before it is saved --------------------
def check_finite_logs(numbers: dict[str, float], step: int, run: Path) -> None:
    """One line when a logged loss is NaN or infinite: the run has diverged, and saving it
    would put NaN weights over the last good checkpoint."""
    bad = {name: value for name, value in numbers.items() if not math.isfinite(value)}
    if bad:
        name, value = next(iter(bad.items()))
        raise diverged(f"{name} is {value} at step {step}", run)


def check_finite_weights(family: Family, step: int, run: Path) -> None:
    """One line (one wait for the device) when any weight is NaN or infinite, before a save."""
    params = [p for net in family.nets.values() for p in net.parameters()]
    if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
        raise diverged(f"the weights are no longer finite at step {step}", run)


def diverged(what: str, run: Path) -> UserError:
    kept = saved_step(run) if run.is_dir() else None
    if kept is None:
        then = "train again (nothing was saved)"
    else:
        then = f"--resume (it takes new ones) from step {kept}, whose checkpoint is kept"
    return UserError(
        f"training diverged: {what}; lower the learning rate or the loss weights and {then}"
    )
