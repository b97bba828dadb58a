"""The training loop: data -> family.train_step -> logs, samples, checkpoints.

Devices, mixed precision and multi-GPU belong to HF Accelerate, so the same
code runs on a CPU, one GPU, or several GPUs / nodes under `accelerate launch`
or `torchrun`. Every source of randomness is a function of (seed, step): the
batch order (`data.loading`), the flips, and the global RNG, reseeded before
each step. A run stopped at step k and resumed therefore ends bit-identical to
one that never stopped (on the same device).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from torch import Tensor
from torchvision.utils import save_image
from tqdm.auto import tqdm

from facefilter.data.framing import domain_framings, framing_for_spec
from facefilter.data.loading import TrainingData, build_training_data
from facefilter.errors import UserError
from facefilter.models import config_class, create_family, family_class
from facefilter.models.base import Family, ModelConfig, Progress, StepLogs
from facefilter.runs import checkpoint
from facefilter.runs.init_from import init_from
from facefilter.runs.lock import run_lock
from facefilter.runs.weights import keep_snapshot
from facefilter.safe_io import atomic_write, refuse_output_over_inputs
from facefilter.sizes import ImageSize
from facefilter.training.augment import (
    camera_batch,
    camera_domain,
    center_batch,
    crop_batch,
    flip_batch,
    jitter_batch,
    step_seed,
)
from facefilter.training.config import TrainConfig, check_config, total_steps
from facefilter.training.log import RunLog, plot_losses
from facefilter.training.resume import (
    Resumed,
    change_log,
    check_progress,
    data_folders,
    launch_rank,
    plain,
    prepare_run,
)
from facefilter.training.span import ScheduleSpan, expected_end
from facefilter.training.stopping import (
    StopRequest,
    check_finite_logs,
    check_finite_weights,
    should_stop,
)

if TYPE_CHECKING:  # scoring while training imports torchmetrics: only when asked for
    from facefilter.evaluation.during import TrainingEval


def to_device(batch: dict[str, Tensor], device: torch.device, channels_last: bool):
    moved = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if channels_last:
        moved = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                 for k, v in moved.items()}  # fmt: skip
    return moved


def augment(
    batch: dict[str, Tensor], config: TrainConfig, step: int, rank: int,
    domain: int | None = None,
) -> dict[str, Tensor]:  # fmt: skip
    """Flips, random crops, colour jitter and a camera for `domain`'s images, as configured
    (`facefilter.training.augment`)."""
    if config.load_size:
        batch = crop_batch(batch, ImageSize.parse(config.size), config.seed, step, rank)
    if config.flip:
        batch = flip_batch(batch, config.seed, step, rank)
    if config.color_jitter:
        batch = jitter_batch(batch, config.color_jitter, config.seed, step, rank)
    if config.randomize:
        batch = camera_batch(batch, config.randomize, domain, config.seed, step, rank)
    return batch


def make_accelerator(config: TrainConfig, family_name: str) -> Accelerator:
    """Accelerate for this launch: one process, or the group torchrun / accelerate formed."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and "MASTER_ADDR" not in os.environ:
        raise UserError(
            f"WORLD_SIZE={launched} is set but no launcher started this process (no "
            "MASTER_ADDR); launch with torchrun or accelerate launch, or unset WORLD_SIZE"
        )
    # torchrun on a machine without GPUs: Accelerate would run every process alone (each
    # writing the same run) unless told to use the CPU, where processes meet over gloo.
    on_cpu = config.cpu or (launched > 1 and not torch.cuda.is_available())
    unused = family_class(family_name).unused_parameters  # e.g. blocks not grown yet
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        cpu=on_cpu,
        dynamo_backend="inductor" if config.compile else "no",
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=unused)],
    )
    if launched != accelerator.num_processes:
        raise UserError(
            f"WORLD_SIZE={launched} is set, but Accelerate formed a group of "
            f"{accelerator.num_processes}; launch with torchrun, or unset WORLD_SIZE"
        )
    return accelerator


def train(
    config: TrainConfig, family_name: str, model_config: ModelConfig | None = None,
    given: set[str] | None = None,
) -> Path:  # fmt: skip
    """Train family `family_name` as `config` says; return the run directory. With
    --resume, `given` names the settings set on the command line: the others come from
    the run's config.json (`facefilter.training.resume`)."""
    if not config.resume:  # a resume is checked once merged with the run's own settings
        check_config(config)
    model_config = model_config if model_config is not None else config_class(family_name)()
    # before the lock makes --out: no folder is left inside the data by a refusal
    refuse_output_over_inputs(config.out, data_folders(config), "--out")
    with run_lock(config.out, enabled=launch_rank() == 0):
        resumed = prepare_run(config, family_name, model_config, given)
        if config.resume:
            check_config(resumed.config)  # the merged settings: saved ones meet new ones here
        return train_prepared(resumed, family_name)


def train_prepared(resumed: Resumed, family_name: str) -> Path:
    config, model_config = resumed.config, resumed.model
    size = ImageSize.parse(config.size)
    model_config.validate_size(size)  # before anything is read or written
    model_config.check_engine(config.compile, config.mixed_precision)
    accelerator = make_accelerator(config, family_name)
    loaded = ImageSize(config.load_size, config.load_size) if config.load_size else size
    data = build_training_data(
        family_class(family_name).data_kind, size=loaded, seed=config.seed,
        data=config.data, data_a=config.data_a, data_b=config.data_b,
    )  # fmt: skip
    check_progress(resumed, total_steps(config, data.epoch_size, accelerator.num_processes))
    torch.manual_seed(config.seed)  # same seed, same initial weights
    family = create_family(family_name, model_config, data.domains, size)
    for note in family.start_notes():
        accelerator.print(note)
    start_weights(config, family, resumed.step is None, accelerator)
    family.setup(accelerator)
    # a bad --eval-* setting fails here, in every process (none is left waiting for one
    # that stopped), before the run's folder gets anything; the main process scores
    evaluator = held_out_eval(config, family)
    for note in evaluator.notes if evaluator is not None else []:
        accelerator.print(note)
    domain = camera_domain(config.randomize_domain, data.domains, family.data_kind)
    start = checkpoint.load_checkpoint(config.out, family) if resumed.step is not None else 0
    note_world(config.out, resumed, accelerator, start)
    for name, (before, after) in resumed.changes.items():
        accelerator.print(f"note: --{name.replace('_', '-')} changed from {before} to {after} "
                          f"at step {start}; recorded in config.json")  # fmt: skip
    (config.out / "samples").mkdir(parents=True, exist_ok=True)  # every rank, every node
    summary = {k: plain(v) for k, v in asdict(config).items()}  # as config.json holds it
    # How the training faces are framed: `apply` aligns photos to the same framing.
    summary["framing"] = framing_for_spec(config.data_a or config.data)  # older readers
    summary["framings"] = domain_framings(data.domains, config.data, config.data_a, config.data_b)
    summary["changes"] = change_log(resumed)
    summary["finished"] = False  # until after_training is saved: a resume then finishes it
    log = RunLog(config.out, start, config.tensorboard) if accelerator.is_main_process else None
    try:
        with StopRequest() as stop:
            step = _loop(config, family, data, accelerator, start, log, summary, stop,
                         evaluator, domain)  # fmt: skip
    finally:
        if log is not None:
            log.close()
    if step == start and not summary["finished"]:  # (a run finished now says where it is)
        accelerator.print(f"no training step ran; {config.out} holds step {step}")
    else:
        accelerator.print(f"run saved in {config.out} at step {step}: model.safetensors, "
                          "samples/, loss.png, metrics.jsonl")  # fmt: skip
    return config.out


def start_weights(config: TrainConfig, family: Family, fresh: bool, acc: Accelerator) -> None:
    """Before Accelerate wraps the networks: FreezeD's frozen layers, the weights of
    --init-from (a fresh run only; a resume has its own), the memory layout."""
    if config.freeze_d:
        family.freeze_critics(config.freeze_d)
    if config.init_from is not None and fresh:
        acc.print(init_from(Path(config.init_from), family, critics=config.freeze_d > 0))
    if config.channels_last:
        for net in family.nets.values():
            net.to(memory_format=torch.channels_last)


def held_out_eval(config: TrainConfig, family: Family) -> TrainingEval | None:
    """`--eval-every`'s scorer on the held-out faces (None when it is 0)."""
    if not config.eval_every:
        return None
    from facefilter.evaluation.during import TrainingEval
    from facefilter.evaluation.truth import TrainedOn

    trained = TrainedOn(family.data_kind, tuple(family.domains), config.data, config.data_a,
                        config.data_b)  # fmt: skip
    return TrainingEval(
        family,
        trained,
        seed=config.seed,
        count=config.eval_count,
        classifier=config.eval_classifier,
        inception=config.inception_weights,
    )


def note_world(out: Path, resumed: Resumed, accelerator: Accelerator, start: int) -> None:
    saved_world = checkpoint.saved_world(out) if resumed.step is not None else None
    if saved_world not in (None, accelerator.num_processes):
        accelerator.print(
            f"note: {out} was trained with {saved_world} process(es), resumed with "
            f"{accelerator.num_processes}: the global batch and the data order change from "
            f"step {start} on, so the run is no longer bit-identical to an uninterrupted one"
        )


def _loop(
    config: TrainConfig, family: Family, data: TrainingData, accelerator: Accelerator,
    start: int, log: RunLog | None, summary: dict[str, Any], stop: StopRequest,
    evaluator: TrainingEval | None = None, domain: int | None = None,
) -> int:  # fmt: skip
    """Train from step `start`; returns the step the run stopped at. `domain`: the one
    `--randomize` puts through the camera (`augment.camera_domain`)."""
    total = total_steps(config, data.epoch_size, accelerator.num_processes)
    last = total if config.stop_at is None else min(total, config.stop_at)
    deadline = began = math.inf  # --train-time counts from the first batch: start-up is free
    batches = data.batches(config.batch_size, start, config.num_workers,
                           accelerator.process_index, accelerator.num_processes)  # fmt: skip
    show = config.progress and accelerator.is_main_process
    bar = tqdm(total=total, initial=start, disable=not show, desc=family.registry_name)
    step, tick, saved_at, logged_at = start, time.monotonic(), start, start
    out_of_time = False
    span = ScheduleSpan(config, total)
    per_step = config.batch_size * accelerator.num_processes  # images in one step, all processes
    logs: StepLogs = {}  # tensors: read (one wait for the device) only when logged
    while step < min(last, span.steps):  # a budget's run ends where its schedules do
        if should_stop(stop, deadline, accelerator, step):
            out_of_time = not stop.requested  # --train-time ran out: the run is over
            break
        batch = to_device(next(batches), accelerator.device, config.channels_last)
        if config.train_time and deadline == math.inf:
            began, deadline = time.monotonic(), time.monotonic() + 60 * config.train_time
        batch = augment(batch, config, step, accelerator.process_index, domain)
        torch.manual_seed(step_seed(config.seed, step, accelerator.process_index))
        progress = Progress(step, span.steps, span.settled)
        family.set_learning_rates(progress)
        family.train()
        logs = family.train_step(batch, progress)
        family.update_ema()
        step += 1
        bar.update(1)
        if config.train_time:  # the bar ends where the time budget will, not at --max-steps
            bar.total = min(last, expected_end(step, start, began, deadline))
        if step % config.log_every == 0 and log is not None:
            shown = record(log, step, logs, family, (step - logged_at) * per_step, tick)
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(shown.items())[:4]})
            tick, logged_at = time.monotonic(), step
        span.observe(step, start, deadline, accelerator, summary)  # after the logs' wait
        if evaluator is not None and log is not None and step % config.eval_every == 0:
            log.log(step, evaluator(family))
        if step % config.sample_every == 0:
            write_sample(config.out, family, data, step, accelerator, log)
        if step % config.save_every == 0:
            save(config.out, family, step, summary, accelerator)
            saved_at = step
    bar.close()
    if log is not None and logged_at != step:  # the last step, so a short run has its curves
        record(log, step, logs, family, (step - logged_at) * per_step, tick)
        plot_losses(config.out)
    over = step >= min(total, span.steps) or out_of_time
    unsaved = step != saved_at or step == start
    finish(config, family, data, accelerator, stop, summary, step=step, unsaved=unsaved,
           over=over, log=log)  # fmt: skip
    return step


def record(
    log: RunLog, step: int, logs: StepLogs, family: Family, images: int, since: float
) -> dict[str, float]:
    """One metrics.jsonl line: the losses, the learning rate used, images per second.
    Returns the losses as numbers."""
    lr = next(iter(family.opts.values())).param_groups[0]["lr"]  # after the schedule
    rate = images / max(time.monotonic() - since, 1e-9)
    numbers = as_numbers(logs)
    log.log(step, {**numbers, "lr": lr, "images_per_s": rate})
    check_finite_logs(numbers, step, log.path.parent)
    return numbers


def as_numbers(logs: StepLogs) -> dict[str, float]:
    """The step's logs as floats, with one wait for the device for all its tensors."""
    tensors = {k: v for k, v in logs.items() if isinstance(v, Tensor)}
    read = torch.stack([v.float() for v in tensors.values()]).tolist() if tensors else []
    numbers = dict(zip(tensors, read, strict=True))
    return {k: numbers[k] if k in numbers else float(v) for k, v in logs.items()}


def finish(
    config: TrainConfig, family: Family, data: TrainingData, accelerator: Accelerator,
    stop: StopRequest, summary: dict[str, Any], *, step: int, unsaved: bool, over: bool,
    log: RunLog | None = None,
) -> None:  # fmt: skip
    """After the loop: compute after-training state when the run is over, save, report.
    A stop that comes once the steps are done does not cut the run short: it finishes."""
    if accelerator.num_processes > 1:
        should_stop(stop, math.inf, accelerator)  # a Ctrl-C during the last step, for all
    interrupted = stop.requested and not over  # agreed; a Ctrl-C during the save is not
    if over:
        if stop.requested:
            accelerator.print("the last step is done: finishing the run (Ctrl-C to abort)")
        family.eval()
        family.after_training(data)  # e.g. attribute vectors, saved in model.safetensors
        unsaved = True
    if unsaved:
        save(config.out, family, step, summary, accelerator)
        write_sample(config.out, family, data, step, accelerator, log)
    if over:  # only once all of it is saved: a failed save leaves the run to --resume
        summary["finished"] = True
        if accelerator.is_main_process:
            checkpoint.save_config(config.out, family, summary)
    if not over and not interrupted and step == config.stop_at:
        accelerator.print(f"paused at step {step} (--stop-at); continue with `facefilter "
                          f"train ... --out {config.out} --resume`")  # fmt: skip
    if interrupted:
        accelerator.print(f"stopped at step {step}; checkpoint saved in {config.out}, "
                          "continue with --resume")  # fmt: skip
        raise SystemExit(130)  # the shell's code for "interrupted by Ctrl-C"


def save(run: Path, family: Family, step: int, summary: dict[str, Any], acc: Accelerator) -> None:
    acc.wait_for_everyone()
    check_finite_weights(family, step, run)  # never NaN weights over the last good ones
    if acc.is_main_process:
        checkpoint.save_checkpoint(run, family, step, summary)
        keep_snapshot(run, step, int(summary.get("keep_checkpoints") or 0))
        plot_losses(run)


def write_sample(
    run: Path, family: Family, data: TrainingData, step: int, acc: Accelerator,
    log: RunLog | None = None,
) -> None:  # fmt: skip
    if not acc.is_main_process:
        return
    batch = center_batch({k: v.to(acc.device) for k, v in data.sample_batch.items()},
                         family.size)  # fmt: skip
    grid = family.sample_grid(batch)
    path = run / "samples" / f"step-{step:06d}.png"
    atomic_write(path, lambda tmp: save_image(grid, tmp, format="png"))
    if log is not None:
        log.image(step, grid)
