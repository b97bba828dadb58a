"""Memory a request would take, estimated before anything is allocated.

A count, a batch size or a picture size far beyond what the machine holds used to grow
until the kernel killed the process (or Python raised MemoryError) minutes later. The
commands estimate the bytes first and refuse in one line that names the value and the
range that fits.
"""

from __future__ import annotations

import os

from facefilter.errors import UserError

SHARE = 0.8  # of the memory available now: the rest is the system's, and our own overhead's


def available_bytes() -> int:
    """Memory available to a new allocation now (Linux: MemAvailable), else all of it."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (OSError, ValueError):
        return 2**63  # unknown: refuse nothing


def gib(size: float) -> str:
    return f"{size / 2**30:,.1f} GiB" if size >= 2**30 else f"{size / 2**20:,.0f} MiB"


def refuse_over_memory(needed: float, what: str, fix: str) -> None:
    """One line when `needed` bytes would not fit in the memory available now: `what` names
    the request (`--batch-size 100000 at 128x128`), `fix` the range or the way out."""
    available = available_bytes()
    if needed > SHARE * available:
        raise UserError(f"{what} needs about {gib(needed)} of memory, and {gib(available)} is "
                        f"free; {fix}")  # fmt: skip
