"""The real training loop never waits on the device between two log steps.

`test_contract.test_a_training_step_never_waits_on_the_device` counts host reads in
`family.train_step` alone; this runs `engine.train` itself (data loading, augmentation,
the learning-rate schedule, the stop check, EMA, the progress bar, logging) and charges
each wait to the step during which it happens. On a GPU three things make the host wait
until the device has finished all it was given (its queue drains; the GPU then idles
while Python catches up):
- a read of a value on the host: `.item()`, `.tolist()`, `.cpu()`, `float(t)`, `if t:`,
  ... (`test_contract.READS`). A step that does not log makes none; a log step makes
  exactly one, in `engine.record` (all the losses in one `torch.stack(...).tolist()`);
- a copy of host memory to the device with `non_blocking=False` (`t.to(device)`,
  `torch.tensor(data, device=...)`): torch synchronises the stream after it
  (`at::cuda::memcpy_and_sync`). The engine's own batch copy is non-blocking;
- an operation on device tensors that checks its result or sizes its output on the host
  (`torch.linalg.inv`, `nonzero`, `x[mask]`: `SYNCING`), which Python never sees read.

No step may wait outside `engine.record` but for KNOWN_WAITS (augmentation's, for now),
and each of those must still happen: the set is exact.

A CPU-only machine has no device, so `HostTensors` tells the tensors a GPU machine would
hold on the host from those on the device: a tensor made with no device (a random draw
from a CPU generator, a constant, the loader's batch) or computed from host tensors alone
is on the host; the weights, the batch once moved (`engine.to_device`) and what is computed
from them are on the device. Not counted, then:
- reads of host tensors, which wait for nothing: the loader making the next batch, the
  random draws augmentation makes on the host (`test_contract.HOST_DRAWS`), the step count
  torch's optimizers keep on the host (`test_contract.OPTIMIZERS`);
- start-up before the first step, and `engine.finish` after the last (after-training
  state, the checkpoint, the sample grid), which run once and may wait.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

import facefilter
from facefilter.models import config_class
from facefilter.training import engine
from facefilter.training.config import TrainConfig
from test_contract import READS, SIZE, TINY, data_flags

LOG_EVERY, STEPS = 4, 9
LOG_STEPS = {4, 8, 9}  # every LOG_EVERY steps, and the last (a short run gets its curves)
FAMILIES = ["cyclegan-lite", "trvae"]  # two data kinds: unpaired domains, and classes
# The waits a training step still makes (file, function, what): augmentation copies its
# host draws, and the camera of --randomize its constants, to the device; JPEG inverts a
# matrix there. Each is short but drains the GPU's queue. Fix one (pinned memory and
# non_blocking=True, constants made once per device, the inverse taken on the host), then
# remove it here: the test wants this set exact.
HOST_COPY, DATA_COPY = "to(device) of a host tensor", "torch.tensor(data, device=...)"
KNOWN_WAITS = {
    ("training/augment.py", "flip_batch", HOST_COPY),  # on by default (--flip)
    ("training/augment.py", "jitter_batch", HOST_COPY),  # --color-jitter
    ("training/augment.py", "camera_batch", HOST_COPY),  # --randomize, and below
    ("degrade.py", "camera", HOST_COPY),
    ("degrade.py", "draw", HOST_COPY),
    ("degrade.py", "jpeg", HOST_COPY),
    ("degrade.py", "jpeg", DATA_COPY),
    ("degrade.py", "jpeg", "torch.linalg.inv on the device"),
    ("degrade.py", "_tables", DATA_COPY),
    ("degrade.py", "grey", DATA_COPY),
}
SOURCE = Path(facefilter.__file__).parent
HERE = Path(__file__)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # where `train` puts the networks
FROM_DATA = (torch.tensor, torch.as_tensor, torch.asarray)  # copy their data when given a device
# On device tensors these wait for the device: they check their result on the host (torch's
# documentation says "synchronizes that device with the CPU"), or their output's size
# depends on the values
SYNCING = {
    *(getattr(torch.linalg, name) for name in (
        "cholesky", "cond", "eig", "eigh", "eigvals", "eigvalsh", "inv", "ldl_factor",
        "lu_factor", "matrix_rank", "pinv", "solve", "svd", "svdvals")),
    torch.inverse, torch.nonzero, Tensor.nonzero, torch.argwhere, Tensor.argwhere,
    torch.unique, Tensor.unique, torch.unique_consecutive, Tensor.unique_consecutive,
    torch.masked_select, Tensor.masked_select, torch.repeat_interleave,
    Tensor.repeat_interleave, torch.bincount, Tensor.bincount,
}  # fmt: skip


def on_host(tensor: Tensor) -> bool:
    return getattr(tensor, "on_host", False)


def mark_host(out: Any) -> None:
    for tensor in tree_leaves(out):
        if isinstance(tensor, Tensor):
            tensor.on_host = True  # type: ignore[attr-defined]


def placed(where: Any) -> str | None:
    """Where a `device=` argument puts a tensor: "host" for the literal "cpu" (torch's
    optimizers keep their step count there), else the device's type (a torch.device is
    one the code took from a tensor or the accelerator: on a CPU-only machine, "cpu")."""
    if where is None:
        return None
    if isinstance(where, str) and torch.device(where).type == "cpu":
        return "host"
    return torch.device(where).type


def ours(function: str) -> bool:
    """Whether a function of facefilter or of this test (not of its counting) did it."""
    return not function.startswith("<") and function not in ("__torch_function__", "move", "read")


class Wait:
    """One wait for the device: what waited, where, and the facefilter (or test) function
    that led to it: `key` is (file, function, what), with no line number."""

    def __init__(self, what: str, frame: FrameType | None) -> None:
        self.what, self.where = what, "?"
        self.key: tuple[str, str, str] = ("?", "?", what)
        first = frame
        while frame is not None:
            path = Path(frame.f_code.co_filename)
            if (path == HERE or path.is_relative_to(SOURCE)) and ours(frame.f_code.co_name):
                shown = path.name if path == HERE else str(path.relative_to(SOURCE))
                self.key = (shown, frame.f_code.co_name, what)
                self.where = f"{shown}:{frame.f_lineno} ({frame.f_code.co_name})"
                break
            frame = frame.f_back
        if first is not None and first is not frame:  # made in torch or Accelerate
            name = f"{Path(first.f_code.co_filename).name}:{first.f_lineno}"
            self.where = name if frame is None else f"{name} from {self.where}"

    def __repr__(self) -> str:
        return f"{self.what} at {self.where}"


class Ledger:
    """The waits of one training run, by the step they happen in (numbered as the engine
    logs them: the first step is 1)."""

    def __init__(self) -> None:
        self.step: int | None = None  # the step running; None before the loop and after it
        self.logging: int | None = None  # `engine.record` is logging this step
        self.steps: list[int] = []
        self.waits: dict[int, list[Wait]] = defaultdict(list)  # outside `record`
        self.logged: dict[int, list[Wait]] = defaultdict(list)  # in `record`, by step logged
        self.depth = 0  # inside a read already (float(t) may call t.item()): counted once

    def note(self, what: str, caller: FrameType) -> None:
        if self.step is None:
            return
        wait = Wait(what, caller)
        if self.logging is not None:
            self.logged[self.logging].append(wait)
        else:
            self.waits[self.step].append(wait)


class HostTensors(TorchFunctionMode):
    """Marks the tensors a GPU machine would hold on the host (`on_host`; unmarked ones
    are on the device), and notes what waits for the device: moves between the two,
    and `SYNCING` operations on the device."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs, caller = kwargs or {}, sys._getframe(1)
        inputs = [x for x in tree_leaves((args, kwargs)) if isinstance(x, Tensor)]
        on_device = [x for x in inputs if not on_host(x)]
        if func in (Tensor.to, Tensor.cuda) and args:
            destination, non_blocking = self.destination(func, args, kwargs)
            if destination is not None:
                return self.move(func, args, kwargs, destination, non_blocking, caller)
        if func is Tensor.copy_ and on_host(args[0]) != on_host(args[1]):
            non_blocking = (*args[2:], kwargs.get("non_blocking", False))[0]
            if on_host(args[0]):
                self.ledger.note("copy_ from a device tensor to a host one", caller)
            elif not non_blocking:
                self.ledger.note("copy_ from a host tensor to a device one", caller)
        if on_device and (func in SYNCING or self.masks(func, args)):
            self.ledger.note(f"{torch.overrides.resolve_name(func)} on the device", caller)
        device = placed(kwargs.get("device"))
        if func in FROM_DATA and device == DEVICE and not on_device:
            self.ledger.note(DATA_COPY, caller)
        out = func(*args, **kwargs)
        if func is not Tensor.copy_ and (
            (not inputs and device in (None, "host")) or (inputs and not on_device)
        ):
            mark_host(out)  # a factory with no device, or host tensors in and out
        return out

    @staticmethod
    def masks(func: Any, args: tuple) -> bool:
        """Whether it indexes with a boolean mask (its output's size is the mask's count)."""
        if func not in (Tensor.__getitem__, Tensor.__setitem__) or len(args) < 2:
            return False
        return any(isinstance(x, Tensor) and x.dtype == torch.bool for x in tree_leaves(args[1]))

    def destination(self, func: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[Any, bool]:
        """("host" or "device", non_blocking) of a `to` or `cuda` that moves a tensor,
        (None, _) of one that only changes its dtype."""
        if func is Tensor.cuda:
            return "device", bool(kwargs.get("non_blocking", False))
        device, _, non_blocking, _ = torch._C._nn._parse_to(*args[1:], **kwargs)
        if device is None:
            return None, non_blocking
        target = next((x for x in (*args[1:], kwargs.get("other")) if isinstance(x, Tensor)), None)
        named = next((x for x in (*args[1:], kwargs.get("device")) if isinstance(x, str)), None)
        if target is not None:
            return ("host" if on_host(target) else "device"), non_blocking
        if placed(named) == "host" or device.type != DEVICE:
            return "host", non_blocking
        return "device", non_blocking

    def move(
        self, func: Any, args: tuple, kwargs: dict[str, Any], destination: str,
        non_blocking: bool, caller: FrameType,
    ) -> Tensor:  # fmt: skip
        tensor = args[0]
        if destination == "device" and on_host(tensor) and not non_blocking:
            self.ledger.note(HOST_COPY, caller)
        if destination == "host" and not on_host(tensor):
            self.ledger.note("to(host) of a device tensor", caller)
        out = func(*args, **kwargs)
        out = out.view_as(out) if out is tensor else out  # on the CPU: the same tensor
        if destination == "host":
            mark_host(out)
        return out


def watch(monkeypatch: pytest.MonkeyPatch) -> tuple[Ledger, HostTensors]:
    """A ledger of the waits of the next run while the mode returned is on."""
    ledger = Ledger()

    def counting(method: str) -> Callable[..., Any]:
        original = getattr(Tensor, method)

        def read(self: Tensor, *args: Any, **kwargs: Any) -> Any:
            if not ledger.depth and not on_host(self):
                ledger.note(method, sys._getframe(1))
            ledger.depth += 1
            try:
                return original(self, *args, **kwargs)
            finally:
                ledger.depth -= 1

        return read

    should_stop, record, finish = engine.should_stop, engine.record, engine.finish

    def stop_check(*args: Any, **kwargs: Any) -> bool:  # the first thing each step does
        step = kwargs.get("step", args[3] if len(args) > 3 else None)
        if step is not None:
            ledger.step = step + 1
            ledger.steps.append(step + 1)
        return should_stop(*args, **kwargs)

    def logging(log: Any, step: int, *args: Any, **kwargs: Any) -> dict[str, float]:
        ledger.logging = step
        try:
            return record(log, step, *args, **kwargs)
        finally:
            ledger.logging = None

    def finishing(*args: Any, **kwargs: Any) -> None:
        ledger.step = None
        return finish(*args, **kwargs)

    for method in READS:
        monkeypatch.setattr(Tensor, method, counting(method))
    monkeypatch.setattr(engine, "should_stop", stop_check)
    monkeypatch.setattr(engine, "record", logging)
    monkeypatch.setattr(engine, "finish", finishing)
    return ledger, HostTensors(ledger)


def run(name: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    """The waits of STEPS real engine steps of a tiny `name`, with every augmentation on,
    logging every LOG_EVERY steps; no sample, checkpoint or evaluation until the run ends."""
    config = TrainConfig(
        out=out, size=SIZE, batch_size=2, max_steps=STEPS, num_workers=0, progress=True,
        log_every=LOG_EVERY, sample_every=1000, save_every=1000, load_size=SIZE + 4,
        color_jitter=0.1, randomize=0.5, **data_flags(name),
    )  # fmt: skip
    model = config_class(name)(**TINY[name][0])
    ledger, mode = watch(monkeypatch)
    try:
        with mode:
            engine.train(config, name, model)
    finally:
        monkeypatch.undo()
    assert ledger.steps == list(range(1, STEPS + 1))
    return ledger


def by_step(waits: dict[int, list[Wait]], keep: Callable[[Wait], bool]) -> dict[int, list[str]]:
    kept = {step: sorted({repr(w) for w in found if keep(w)}) for step, found in waits.items()}
    return {step: found for step, found in kept.items() if found}


@pytest.mark.parametrize("name", FAMILIES)
def test_only_log_steps_wait_on_the_device(name, tmp_path, monkeypatch):
    ledger = run(name, tmp_path / "run", monkeypatch)
    new = by_step(ledger.waits, lambda wait: wait.key not in KNOWN_WAITS)
    assert not new, f"{name}: steps wait for the device outside logging: {new}"
    seen = {wait.key for found in ledger.waits.values() for wait in found}
    gone = KNOWN_WAITS - seen
    assert not gone, f"{name}: these no longer wait; remove them from KNOWN_WAITS: {gone}"
    # each log step reads all its losses at once, and nothing else waits while it logs
    logged = {step: len(found) for step, found in ledger.logged.items()}
    assert logged == dict.fromkeys(LOG_STEPS, 1), by_step(ledger.logged, bool)


def test_the_ledger_catches_a_wait_in_a_step_that_does_not_log(tmp_path, monkeypatch):
    """A test that cannot fail proves nothing: a `.item()`, a blocking copy and a masked
    selection added to step 3 are caught, in step 3 alone, and named by file and line;
    a non-blocking copy and a read of a host tensor are not."""
    from facefilter.models.cyclegan import CycleGAN

    original = CycleGAN.train_step

    def train_step(self: CycleGAN, batch: dict[str, Tensor], progress: Any) -> Any:
        logs = original(self, batch, progress)
        if progress.step == 2:  # the third step
            logs = {**logs, "peeked": next(iter(logs.values())).item()}
            torch.ones(2).to(self.device)
            batch["real_a"][batch["real_a"] > 0]
            torch.ones(2).to(self.device, non_blocking=True)
            assert torch.ones(1).item() == 1
        return logs

    monkeypatch.setattr(CycleGAN, "train_step", train_step)
    ledger = run("cyclegan-lite", tmp_path / "run", monkeypatch)
    first = train_step.__code__.co_firstlineno
    caught = [("item", 3), (HOST_COPY, 4), ("torch.Tensor.__getitem__ on the device", 5)]
    expected = [f"{what} at {HERE.name}:{first + line} (train_step)" for what, line in caught]
    assert by_step(ledger.waits, lambda wait: wait.key[0] == HERE.name) == {3: sorted(expected)}
