"""Who may write a run directory, and what a `--resume` continues.

- One writer per run: `train` holds `OUT/.lock` while it runs (`facefilter.runs.lock`).
- `--resume` reads the run's own config.json: flags not given keep the run's values. A
  flag that would change the networks is refused, naming the saved value; a training
  setting (`ModelConfig.tunable`, max steps, time budget, ...) takes the new value from
  the saved step on, and config.json records the change and its step under "changes".
- A run that died during its first save (a config.json but no complete checkpoint) is
  not a dead end: `--resume` starts it again from step 0, with a note. A run with trained
  weights or a state/ folder that lacks a file is not that: starting over would overwrite
  its weights, so it is refused, naming what is missing.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facefilter.data.spec import spec_folder
from facefilter.errors import UserError
from facefilter.models.base import ModelConfig
from facefilter.runs import checkpoint
from facefilter.runs.config import CONFIG_FILE, read_run_config
from facefilter.sizes import ImageSize
from facefilter.training.config import TrainConfig

# Settings of one invocation, never carried over from the saved run by --resume.
PER_INVOCATION = ("out", "resume", "stop_at")
# Settings a run may have filled in itself (the span a --train-time budget was estimated
# to reach): unset on a resume, the run's own value stays, so its schedules do too.
FILLED_IN = ("schedule_steps",)
# Settings that act only when a run starts: a resume cannot change them.
STARTS_ONLY = ("init_from",)


@dataclass
class Resumed:
    """What `prepare_run` decided: the settings to train with, and where to start."""

    config: TrainConfig
    model: ModelConfig
    step: int | None = None  # the checkpoint to continue from; None: start at step 0
    changes: dict[str, Any] = field(default_factory=dict)  # flag -> [saved, new]
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier resumes' changes


def prepare_run(
    config: TrainConfig, family_name: str, model: ModelConfig, given: set[str] | None = None
) -> Resumed:
    """Refuse to overwrite another run (`train` has refused an --out inside the data);
    on --resume, merge the run's saved settings with the flags `given` on the command
    line (all of them when None)."""
    out = config.out
    step = checkpoint.saved_step(out) if out.is_dir() else None
    has_config = (out / CONFIG_FILE).is_file()
    if not config.resume:
        if step is not None or has_config:
            hint = "" if step is not None else " (it stopped before its first checkpoint)"
            raise UserError(f"{out} already holds a run{hint}; pass --resume to continue it "
                            "or choose another --out")  # fmt: skip
        return Resumed(config, model)
    if not has_config:
        raise UserError(f"--resume: {out} holds no run to resume; drop --resume to start one")
    resumed = merge_saved(config, family_name, model, given)
    if step is None:
        refuse_partial_state(out)
        print(f"note: {out} has no complete checkpoint (stopped during its first save); "
              "starting it again from step 0")  # fmt: skip
    resumed.step = step
    return resumed


def data_folders(config: TrainConfig) -> list[Path]:
    """The folders the training data is read from (synthetic data has none)."""
    specs = [spec for spec in (config.data, config.data_a, config.data_b) if spec]
    return [folder for folder in map(spec_folder, specs) if folder is not None]


def refuse_partial_state(out: Path) -> None:
    """One line when `out` has trained but its state/ is incomplete or gone (deleted by
    hand, a partial copy): resuming from step 0 would overwrite its weights."""
    state = out / "state"
    needed = ("trainer.json", "networks.safetensors", "extra.safetensors")
    missing = [name for name in needed if not (state / name).is_file()]
    fix = (f"restore it from a copy, or train again with another --out (a restart from "
           f"step 0 would overwrite {out / checkpoint.WEIGHTS_FILE})")  # fmt: skip
    if state.is_dir():
        raise UserError(f"--resume: {state} lacks {', '.join(missing)}; {fix}")
    if (out / checkpoint.WEIGHTS_FILE).is_file():
        raise UserError(f"--resume: {out} holds trained weights but no state/; {fix}")


def merge_saved(
    config: TrainConfig, family_name: str, model: ModelConfig, given: set[str] | None
) -> Resumed:
    """The run's saved settings, overridden by the flags given; one line for a flag that
    would change the networks."""
    out = config.out
    saved = read_run_config(out)
    if saved.family != family_name:
        raise UserError(
            f"{out} holds a {saved.family!r} run; resume it with `facefilter train {saved.family}`"
        )
    given = set(given) if given is not None else everything(config, model)
    changes: dict[str, Any] = {}
    kept_model = saved.model_config()
    values = {}
    for name, kept in dataclasses.asdict(kept_model).items():
        value = getattr(model, name)
        if name not in given or value == kept:
            values[name] = getattr(kept_model, name)
        elif name in model.tunable or name in model.inference_only:
            values[name], changes[name] = value, [kept, value]
        else:
            refuse_change(out, name, kept, value)
    merged_model = type(model)(**values)
    if "size" in given and ImageSize.parse(config.size) != saved.image_size:
        refuse_change(out, "size", saved.image_size.json(), config.size)
    settings: dict[str, Any] = {"size": saved.image_size.json()}
    for spec in dataclasses.fields(config):
        name = spec.name
        if name in PER_INVOCATION or name == "size":
            continue
        value = plain(getattr(config, name))
        if name in STARTS_ONLY:  # absent from an older run's config: it started from none
            settings[name] = kept = saved.train.get(name)
            if name in given and value != plain(kept):
                flag = "--" + name.replace("_", "-")
                raise UserError(f"--resume: {flag} only starts a run, and {out} goes on from "
                                f"its own checkpoint (it started from {kept or 'scratch'}); "
                                f"drop {flag}")  # fmt: skip
            continue
        if name not in saved.train:
            continue
        kept = saved.train[name]
        if name not in given or (name in FILLED_IN and value is None):
            settings[name] = kept  # out, the one Path, is per invocation
        elif value != kept:
            changes[name] = [kept, value]
    merged = dataclasses.replace(config, **settings)
    return Resumed(merged, merged_model, changes=changes,
                   history=saved.changes)  # fmt: skip


def plain(value: Any) -> Any:
    """A setting as config.json holds it: a path as its text (a Path never equals one)."""
    return str(value) if isinstance(value, Path) else value


def everything(config: TrainConfig, model: ModelConfig) -> set[str]:
    """Every setting counts as given when called from code, not from the command line."""
    names = {f.name for f in dataclasses.fields(config)}
    return names | {f.name for f in dataclasses.fields(model)}


def refuse_change(out: Path, name: str, kept: Any, value: Any) -> None:
    flag = "--" + name.replace("_", "-")
    raise UserError(
        f"--resume: {flag} {value} would change the model, which {out} trained with "
        f"{flag} {kept}; drop {flag} to continue the run, or train a new one in another --out"
    )


def check_progress(resumed: Resumed, total: int) -> None:
    """A resume must have steps left to train, before anything is rewritten."""
    start, config = resumed.step or 0, resumed.config
    if resumed.step is None:
        return
    if total == start and read_run_config(config.out).train.get("finished") is False:
        return  # its steps are done but its last stage is not (a stop in the final save)
    if total <= start and config.schedule_steps == total:
        raise UserError(f"--resume: {config.out} is at step {start}, where its schedules end "
                        f"(schedule_steps {total} in config.json); give --schedule-steps and "
                        "--max-steps past it to train on")  # fmt: skip
    if total <= start:
        given = f"--max-steps {config.max_steps}" if config.epochs is None else (
            f"--epochs {config.epochs} ({total} steps)")  # fmt: skip
        raise UserError(f"--resume: {config.out} is at step {start} and {given} is not past "
                        "it; raise it to train on")  # fmt: skip
    if config.stop_at is not None and config.stop_at <= start:
        raise UserError(f"--stop-at {config.stop_at} is not past the saved step {start}; "
                        "give a later step")  # fmt: skip


def change_log(resumed: Resumed) -> list[dict[str, Any]]:
    """config.json's "changes": every resume that changed a setting, with its step."""
    if not resumed.changes:
        return resumed.history
    return [*resumed.history, {"step": resumed.step or 0, **resumed.changes}]


def launch_rank() -> int:
    """This process's rank in its launch (torchrun and accelerate set RANK; MPI its own)."""
    for name in ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0
