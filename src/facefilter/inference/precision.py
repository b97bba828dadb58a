"""The number format a torch filter computes in: fp32, or bf16 where the hardware has it.

bf16 halves the bytes every layer moves and, where the CPU or GPU has bf16 units, runs
convolutions in units fp32 cannot use: cyclegan-lite at 128 px ran 2.8x faster on this
project's 2-core Xeon (benchmarks/apply_speed.py). Where it would be emulated it is
refused in one line (`facefilter.hardware` says where).
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import nn

from facefilter.errors import UserError
from facefilter.hardware import bf16_refusal

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def check_precision(precision: str, engine: str, device: torch.device | None) -> None:
    """One line for a precision this engine and device cannot run natively."""
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r}: choose {' or '.join(PRECISIONS)}")
    if precision == "fp32":
        return
    if engine != "torch":
        raise UserError(
            f"--precision {precision} is for the torch engine; onnxruntime runs the graphs "
            "as exported (fp32, or int8 with `facefilter export --quantize int8`)"
        )
    refusal = bf16_refusal(device or torch.device("cpu"))
    if refusal is not None:
        raise UserError(f"--precision bf16: {refusal}; use --precision fp32")


def in_precision(module: nn.Module, precision: str) -> nn.Module:
    """`module` to run in `precision`: fp32 as it is; bf16 as a copy in bf16 weights and
    channels-last layout (oneDNN's fast path), so the trained fp32 model stays intact."""
    if precision == "fp32":
        return module
    converted = copy.deepcopy(module).to(DTYPES[precision])
    return converted.to(memory_format=torch.channels_last)


def run_in(
    module: nn.Module, images: torch.Tensor, strength: torch.Tensor, precision: str
) -> torch.Tensor:
    """The module's output for fp32 `images` and `strength`, computed in `precision` and
    handed back in fp32 (what every caller downstream works in)."""
    if precision == "fp32":
        out: torch.Tensor = module(images, strength)
        return out
    dtype = DTYPES[precision]
    images = images.to(dtype).contiguous(memory_format=torch.channels_last)
    return module(images, strength.to(dtype)).float().contiguous()
