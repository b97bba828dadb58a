"""Training throughput: the reference recipe and the fast path, side by side in one run.

    python benchmarks/train_throughput.py                       # ResNet-9 at 256 px (GPU)
    python benchmarks/train_throughput.py --family cyclegan-lite --size 64 --steps 5   # CPU

Reference: fp32, eager, batch 1, plain Adam (the CycleGAN paper's recipe).
Fast path: bf16 autocast, channels_last, torch.compile, fused Adam (GPU), a
larger batch, and the batch already on the device. Both go through the same
`Family.train_step` the trainer uses; the figure is image pairs per second.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from facefilter.models import config_class, create_family
from facefilter.models.base import Progress


def measure(args: argparse.Namespace, *, fast: bool) -> float:
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    batch_size = args.fast_batch if fast else 1
    base = config_class(args.family)()
    fields = {"n_blocks": args.n_blocks} if args.n_blocks else {}
    if fast and device.type == "cuda":
        fields["fused_adam"] = True  # one kernel per parameter group instead of per tensor
    cfg = replace(base, **fields)  # type: ignore[type-var]
    torch.manual_seed(0)
    family = create_family(args.family, cfg, ["photo", "anime"], args.size)
    precision = args.fast_precision if fast else "no"
    AcceleratorState._reset_state(reset_partial_state=True)  # one process, two precisions
    accelerator = Accelerator(
        mixed_precision=precision,
        cpu=device.type == "cpu",
        dynamo_backend="inductor" if fast and args.compile else "no",
    )
    if fast:
        for net in family.nets.values():
            net.to(memory_format=torch.channels_last)  # NHWC: what tensor cores want
    family.setup(accelerator)
    for optimizer in family.opts.values():
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
    memory = torch.channels_last if fast else torch.contiguous_format
    batch = {
        key: torch.rand(batch_size, 3, args.size, args.size, device=device)
        .mul(2)
        .sub(1)
        .contiguous(memory_format=memory)
        for key in ("real_a", "real_b")
    }  # data already on the device: the loader is not what is measured
    family.train()
    total = args.warmup + args.steps
    for step in range(args.warmup):  # compile, cudnn autotune, allocator warm-up
        family.train_step(batch, Progress(step, total))
    sync(device)
    start = time.perf_counter()
    for step in range(args.steps):
        family.train_step(batch, Progress(args.warmup + step, total))
    sync(device)
    return args.steps * batch_size / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="cyclegan", help="a registered two-domain family")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--n-blocks", type=int, default=None, help="override residual blocks")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per recipe")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--fast-batch", type=int, default=16, help="batch size on the fast path")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument(
        "--fast-precision",
        default="bf16",
        choices=["bf16", "fp16", "no"],
        help="fast path's mixed precision (CPUs without bf16 units: no)",
    )
    parser.add_argument("--cpu", action="store_true", help="measure on the CPU even with a GPU")
    args = parser.parse_args()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and not args.cpu else "CPU"
    print(f"device: {device}; torch {torch.__version__}; {args.family} at {args.size} px")
    reference = measure(args, fast=False)
    print(f"reference (fp32, eager, batch 1):            {reference:8.2f} pairs/s")
    fast = measure(args, fast=True)
    what = f"{args.fast_precision}, channels_last, " + ("compile, " if args.compile else "")
    what += "fused Adam" if device != "CPU" else "plain Adam (fused is GPU-only)"
    print(f"fast path ({what}, batch {args.fast_batch}): {fast:8.2f} pairs/s")
    print(f"speed-up: {fast / reference:.2f}x")


if __name__ == "__main__":
    main()
