"""One writer per run directory: `train` holds `OUT/.lock` while it runs.

The lock is an advisory `flock` on the file, so the kernel drops it when its holder
dies (kill -9, a crash, a container restart that reuses the pid): a lock left behind is
simply taken over, with a note. The file also names the holder (host, pid) for the
message a second writer gets.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facefilter.errors import UserError

LOCK_FILE = ".lock"


@contextmanager
def run_lock(out: Path, enabled: bool = True, command: str = "train") -> Iterator[None]:
    """Hold OUT/.lock while `command` writes into the run (training; vectors and eval
    into an existing run); only the main process of a launch takes it."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; choose a directory")
    if not enabled:
        yield
        return
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    lock = out / LOCK_FILE
    descriptor = take_lock(lock, command)
    try:
        yield
    finally:
        release_lock(lock, descriptor)
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # refused before writing anything: leave no empty folder


def lock_if_inside(run: Path, out: Path, command: str) -> contextlib.AbstractContextManager[None]:
    """The run's lock when `out` lies inside the run folder `run` (eval's default report
    folder), so that no two commands write into one run at once; else nothing to hold."""
    if run.is_dir() and out.resolve().is_relative_to(run.resolve()):
        return run_lock(run, command=command)
    return contextlib.nullcontext()


def take_lock(lock: Path, command: str = "train") -> int:
    """An open descriptor holding the lock on `lock`, or a UserError naming the holder."""
    for _ in range(5):
        descriptor = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise UserError(
                f"{lock.parent} is being written by {describe(read_holder(lock))}; wait for it "
                "to end (or choose another --out)"
            ) from None
        if not same_file(lock, descriptor):  # its last holder removed it as we opened it
            os.close(descriptor)
            continue
        previous = read_holder(lock)
        if previous is not None and previous.get("pid") != os.getpid():
            print(f"note: taking over {lock}, left by {describe(previous)}, which has ended")
        os.ftruncate(descriptor, 0)
        me = {"host": socket.gethostname(), "pid": os.getpid(), "command": command}
        os.pwrite(descriptor, json.dumps(me).encode(), 0)
        return descriptor
    raise UserError(f"could not take {lock}: other processes keep taking it; try again")


def same_file(path: Path, descriptor: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(descriptor).st_ino
    except FileNotFoundError:
        return False


def read_holder(lock: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None  # not written yet, or by something else
    return holder if isinstance(holder, dict) else None


def describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "another process"
    where = f"host {holder.get('host', '?')}, process {holder.get('pid', '?')}"
    return f"another facefilter {holder.get('command', 'train')} ({where})"


def release_lock(lock: Path, descriptor: int) -> None:
    """Remove the file while still holding it (no one can hold this file meanwhile), then
    let go."""
    with contextlib.suppress(OSError):
        if same_file(lock, descriptor):
            lock.unlink()
    os.close(descriptor)
