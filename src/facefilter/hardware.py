"""What the machine computes natively: bf16 units on this CPU or GPU.

bf16 is fast only where the hardware has bf16 units (CPUs with AMX or AVX512-BF16:
Intel Sapphire Rapids and later, AMD Zen 4 and later; GPUs from Ampere on). Elsewhere
oneDNN emulates it in fp32 arithmetic, many times slower than fp32 itself, so inference
(`--precision bf16`) and training (`--mixed-precision bf16`) refuse it in one line
rather than quietly run slow.
"""

from __future__ import annotations

from pathlib import Path

import torch

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo names of the units
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: Path | None = None) -> set[str] | None:
    """The CPU's feature flags (Linux), or None where they cannot be read."""
    cpuinfo = cpuinfo or CPUINFO
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return None


def bf16_refusal(device: torch.device, cpuinfo: Path | None = None) -> str | None:
    """Why bf16 would be emulated on `device` (a clause the caller puts after its flag),
    or None when it is native."""
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return None
        return f"{torch.cuda.get_device_name(device)} has no bf16 units"
    flags = cpu_flags(cpuinfo)
    if flags is None:
        return f"cannot tell whether this CPU computes bf16 natively (no {cpuinfo or CPUINFO})"
    if not flags & set(NATIVE_BF16_FLAGS):
        return (
            "this CPU has no bf16 units (neither avx512_bf16 nor amx_bf16), so bf16 would "
            "be emulated, slower than fp32"
        )
    return None
