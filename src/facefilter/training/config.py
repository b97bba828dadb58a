"""`TrainConfig`: the settings of one training run, which are also `facefilter train`'s flags.

Kept apart from the engine so that parsing the command line (and reading a run's
settings back for `--resume`) imports neither Accelerate nor the data pipeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from facefilter.errors import UserError
from facefilter.hardware import bf16_refusal
from facefilter.memory import refuse_over_memory
from facefilter.sizes import ImageSize


@dataclass
class TrainConfig:
    """Where the data comes from, how long to train, and where the run goes."""

    out: Path  # run directory: config.json, model.safetensors, state/, samples/, loss.png
    data_a: str | None = None  # two-domain families: source domain spec, e.g. synth:photo
    data_b: str | None = None  # two-domain families: target domain spec, e.g. synth:anime
    data: str | None = None  # one-set families: classes (trvae) or an attribute table (dcae, pgae)
    # pixels per side, or WIDTHxHEIGHT (makeover: 80x100, the middle of the square face
    # crop at the longer side); each family sets its default
    size: int | str = 128
    batch_size: int = 1  # images per step (each family sets its own default)
    # stop here; schedules (lr decay, annealing) span these steps unless --train-time or
    # --schedule-steps says otherwise
    max_steps: int = 20_000
    epochs: float | None = None  # if set, train this many passes over the data instead
    train_time: float | None = None  # minutes of training; stop when they run out
    stop_at: int | None = None  # pause after this step (schedules still span the full run)
    # steps the schedules (learning-rate fall, annealing, noise decay, growth) span, where
    # the run ends; unset: --epochs or --max-steps, or with --train-time the steps the
    # budget will reach at the pace of the first steps (estimated once, then recorded here
    # so --resume keeps it)
    schedule_steps: int | None = None
    seed: int = 0  # same seed, same data order, flips and weights
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"  # bf16 on recent GPUs
    cpu: bool = False  # train on the CPU even when a GPU is present
    compile: bool = False  # torch.compile the networks: faster GPU steps after a warm-up
    channels_last: bool = False  # NHWC memory layout: faster convolutions on tensor cores
    num_workers: int = 2  # data-loading processes (0: load in the main process)
    flip: bool = True  # random horizontal flips: faces are near-symmetric, so free data
    # load images at this many pixels a side, then cut each to --size at a random place
    # (CycleGAN's resize_and_crop: 286 for 256); unset: no crop
    load_size: int | None = None
    color_jitter: float = 0.0  # brightness, contrast, saturation each scaled within 1 +- this
    # Domain randomisation: this share of one domain's training images goes through a random
    # camera (colour cast, exposure, grey, blur, sensor noise, JPEG: facefilter.degrade), so
    # a filter trained on clean renderings learns to ignore how real photos differ from them
    randomize: float = 0.0
    randomize_domain: str | None = None  # the domain it acts on; unset: the first (the source)
    log_every: int = 10  # steps between metrics.jsonl lines
    sample_every: int = 500  # steps between sample grids in samples/
    save_every: int = 1000  # steps between checkpoints
    # also keep the weights of the last N checkpoints (RUN/checkpoints/step-005000.safetensors)
    # to apply or export an earlier one: `facefilter apply RUN@step-5000 ...`; 0: the last only
    keep_checkpoints: int = 0
    # score the model on held-out faces every N steps (0: never): paired L1 / SSIM / top-1
    # on synthetic data, KID on real data, accuracy for a classifier; logged under eval/
    eval_every: int = 0
    eval_count: int = 64  # held-out faces per direction (the val split) for --eval-every
    eval_classifier: Path | None = None  # real data: KID on this classifier run's features
    inception_weights: Path | None = None  # real data: KID on InceptionV3 (torch-fidelity's)
    resume: bool = False  # continue the run in --out from its last checkpoint
    # start from the weights of this earlier run of the same family and architecture (its
    # generators, and its discriminators where it kept its state/): a new style from a few
    # hundred pictures, starting from a filter in another style
    init_from: Path | None = None
    # keep the discriminators' first N layers as --init-from gave them (FreezeD, Mo et al.
    # 2020): their low-level filters then cannot overfit a small target set; 0: train all
    freeze_d: int = 0
    tensorboard: bool = False  # also write TensorBoard events to OUT/tensorboard
    progress: bool = True  # show a tqdm progress bar (main process only)


def total_steps(config: TrainConfig, epoch_size: int, processes: int = 1) -> int:
    """The steps the run takes at most: --epochs wins over --max-steps, and a run ends
    where its schedules do (--schedule-steps, or a --train-time budget's estimate,
    `training.span`). Each step takes `batch_size` images in each of `processes`."""
    if config.epochs is None:
        steps = config.max_steps
    else:
        steps = max(1, math.ceil(config.epochs * epoch_size / (config.batch_size * processes)))
    return steps if config.schedule_steps is None else min(steps, config.schedule_steps)


LOAD_SIZE_FACTOR = 2  # --load-size at most this many times --size: crops, not a zoom lens


def check_memory(config: TrainConfig) -> None:
    """One line for a --load-size or --batch-size whose batches alone would not fit in
    memory, before any is made (they used to grow until the kernel killed the run)."""
    size = ImageSize.parse(config.size)
    load = config.load_size
    if load is not None and load < size.side:
        raise UserError(f"--load-size {load} is below --size {config.size}; give "
                        "at least the size (e.g. 286 for 256), or leave it unset")  # fmt: skip
    if load is not None and load > LOAD_SIZE_FACTOR * size.side:
        most = LOAD_SIZE_FACTOR * size.side
        raise UserError(f"--load-size {load} is over {LOAD_SIZE_FACTOR}x --size {config.size}: "
                        "a random crop of it would show a small part of a face; give "
                        f"{size.side} to {most} (e.g. 286 for 256)")  # fmt: skip
    pixels = load * load if load is not None else size.width * size.height
    # float32, two sets, and the batches the loader's workers prepare ahead (2 each)
    needed = config.batch_size * 2 * 3 * pixels * 4 * (2 + 2 * config.num_workers)
    refuse_over_memory(needed, f"--batch-size {config.batch_size} at {load or size} px",
                       "lower --batch-size")  # fmt: skip


def check_config(config: TrainConfig) -> None:
    try:
        ImageSize.parse(config.size)
    except UserError as error:
        raise UserError(f"--size: {error}") from None
    if config.eval_every < 0:
        raise UserError(f"--eval-every must be 0 (never) or more, got {config.eval_every}")
    for name in ("batch_size", "max_steps", "log_every", "sample_every", "save_every"):
        if getattr(config, name) < 1:
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} must be at least 1, got {getattr(config, name)}")
    if config.epochs is not None and config.epochs <= 0:
        raise UserError(f"--epochs must be positive, got {config.epochs}")
    if config.train_time is not None and config.train_time <= 0:
        raise UserError(f"--train-time must be positive minutes, got {config.train_time}")
    if config.schedule_steps is not None and config.schedule_steps < 1:
        raise UserError(f"--schedule-steps must be at least 1, got {config.schedule_steps}")
    if config.stop_at is not None and config.stop_at < 1:
        raise UserError(f"--stop-at must be at least 1, got {config.stop_at}")
    check_memory(config)
    if not 0 <= config.color_jitter < 1:
        raise UserError(f"--color-jitter {config.color_jitter} must lie in [0, 1), e.g. 0.1")
    if not 0 <= config.randomize <= 1:
        raise UserError(f"--randomize {config.randomize} must lie in [0, 1], e.g. 0.5")
    if config.freeze_d < 0:
        raise UserError(f"--freeze-d must be 0 (train every layer) or more, got {config.freeze_d}")
    if config.freeze_d and config.init_from is None:
        raise UserError(f"--freeze-d {config.freeze_d} keeps the discriminators' first layers as "
                        "an earlier run left them; give that run with --init-from RUN")  # fmt: skip
    if config.keep_checkpoints < 0:
        raise UserError(f"--keep-checkpoints must be 0 or more, got {config.keep_checkpoints}")
    if config.num_workers < 0:
        raise UserError(f"--num-workers must be 0 or more, got {config.num_workers}")
    if config.mixed_precision == "fp16" and (config.cpu or not torch.cuda.is_available()):
        raise UserError("--mixed-precision fp16 needs a CUDA GPU; on the CPU use bf16 or no")
    if config.mixed_precision == "bf16":
        on_gpu = torch.cuda.is_available() and not config.cpu
        refusal = bf16_refusal(torch.device("cuda" if on_gpu else "cpu"))
        if refusal is not None:
            raise UserError(f"--mixed-precision bf16: {refusal}; use --mixed-precision no")
