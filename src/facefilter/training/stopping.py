"""Stopping a training run cleanly: Ctrl-C, a time budget, and every process agreeing.

The first Ctrl-C asks the loop to finish its step, save and exit (130); a second one
aborts at once. With several processes the decision is reduced across them, so no
process waits in a gradient all-reduce while another saves.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import torch
from accelerate import Accelerator


class StopRequest:
    """First Ctrl-C asks the loop to save and stop after the current step; a second aborts."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: Any = None
        self.pid = os.getpid()

    def __enter__(self) -> StopRequest:
        self.pid = os.getpid()
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if os.getpid() != self.pid:
            return  # a data-loading worker forked from us: the main process decides
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping: finishing this step and saving a checkpoint (Ctrl-C again to abort)")

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self.previous)


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
