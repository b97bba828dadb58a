"""Resume state: what `--resume` needs beyond the run's public files (`facefilter.runs.config`).

    runs/<name>/state/   every network (EMA copies too), optimizer and extra state, the step

A checkpoint writes config.json, model.safetensors and state/, each atomically
(write beside, then rename; state/ is swapped in by renames), so a crash or Ctrl-C
in the middle of saving leaves the previous checkpoint whole.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from facefilter import __version__
from facefilter.errors import UserError
from facefilter.models.base import Family
from facefilter.runs.config import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    read_run_config,
    run_config,
    write_run_config,
)
from facefilter.runs.weights import flat_state, load_flat_state, save_weights
from facefilter.safe_io import os_error_message, sync

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "load_checkpoint", "save_checkpoint", "saved_step"]
EMA_PREFIX = "ema."


# --- training state ------------------------------------------------------------------------
def save_checkpoint(run: Path, family: Family, step: int, train: Mapping[str, Any]) -> None:
    """Write config.json, state/ and model.safetensors for `step`, each atomically.

    state/ is built as state.tmp/ and swapped in with renames, so at every instant
    either the old or the new complete state exists on disk. The weights come last:
    a failure before them leaves the previous model.safetensors, never a newer one
    than the state a resume would continue from.
    """
    save_config(run, family, train)
    save_state(run, family, step)
    save_weights(run / WEIGHTS_FILE, family, step)


def save_config(run: Path, family: Family, train: Mapping[str, Any]) -> None:
    write_run_config(run / CONFIG_FILE, run_config(family, train))


def save_state(run: Path, family: Family, step: int) -> None:
    """state/: every network (EMA copies too), optimizer, extra state and the step."""
    tmp, state, old = run / "state.tmp", run / "state", run / "state.old"
    shutil.rmtree(tmp, ignore_errors=True)
    nets = {name: family.unwrapped(name) for name in family.nets}
    nets |= {EMA_PREFIX + name: average for name, average in family.ema.items()}
    world = family.accelerator.num_processes if family.accelerator is not None else 1
    files = {
        "networks.safetensors": safetensors_bytes(flat_state(nets)),
        "extra.safetensors": safetensors_bytes(
            {k: v.detach().cpu().contiguous() for k, v in family.extra_state().items()}),
        "trainer.json": json.dumps({"step": step, "processes": world,
                                    "version": __version__}).encode(),
    }  # fmt: skip
    for name, optimizer in family.opts.items():
        buffer = io.BytesIO()
        torch.save(optimizer.state_dict(), buffer)
        files[f"optimizer-{name}.pt"] = buffer.getvalue()
    try:
        tmp.mkdir(parents=True)
        for name, data in files.items():  # bytes first: a full disk is a plain OSError
            (tmp / name).write_bytes(data)
            sync(tmp / name)  # on the disk before the swap below: a power cut keeps one
        sync(tmp)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = saved_step(run)
        intact = f"the checkpoint of step {kept} is intact" if kept is not None else (
            "no checkpoint was saved yet")  # fmt: skip
        raise UserError(f"{os_error_message(error, tmp / 'file')} ({intact})") from None
    if state.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(state, old)
    os.replace(tmp, state)
    sync(run)
    shutil.rmtree(old, ignore_errors=True)


def saved_step(run: Path) -> int | None:
    """The step of the last complete checkpoint in `run`, or None if there is none."""
    state = _state_dir(run)
    if state is None:
        return None
    return int(_trainer(state)["step"])


def saved_world(run: Path) -> int:
    """How many processes trained the last checkpoint (1 for runs that did not record it)."""
    state = _state_dir(run)
    if state is None:
        return 1
    return int(_trainer(state).get("processes", 1))


def saved_networks(run: Path) -> dict[str, torch.Tensor] | None:
    """Every network of `run`'s last checkpoint (not the EMA copies), flat; None when
    it has no state/ (`--init-from` takes its discriminators from here)."""
    state = _state_dir(run)
    if state is None:
        return None
    networks = read_state(state / "networks.safetensors")
    return {k: v for k, v in networks.items() if not k.startswith(EMA_PREFIX)}


def _state_dir(run: Path) -> Path | None:
    # state.old/ survives only when the process died between the two renames.
    for name in ("state", "state.old"):
        if (run / name / "trainer.json").is_file():
            return run / name
    return None


def _trainer(state: Path) -> dict[str, Any]:
    trainer = read_state(state / "trainer.json")
    if not isinstance(trainer, dict) or not isinstance(trainer.get("step"), int):
        raise damaged(state / "trainer.json", "no step in it")
    return trainer


def read_state(path: Path, *, torch_file: bool = False) -> Any:
    """One file of state/, or one line saying it is damaged (truncated, junk, missing)."""
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text())
        if torch_file:
            return torch.load(path, map_location="cpu", weights_only=True)
        return load_file(path)
    except Exception as error:  # junk fails in many ways (KeyError, UnpicklingError, ...)
        first = str(error).splitlines()[0] if str(error) else ""
        why = first if isinstance(error, (OSError, ValueError)) and first else (
            f"{type(error).__name__}: {first}")  # fmt: skip
        raise damaged(path, why) from None


def damaged(path: Path, why: str) -> UserError:
    return UserError(
        f"{path} is damaged ({why}); this checkpoint cannot be resumed: restore {path.parent} "
        f"from a copy, or start a new run (its model.safetensors still applies)"
    )


def load_checkpoint(run: Path, family: Family) -> int:
    """Restore networks, optimizers and extra state from `run/state`; return the step."""
    state = _state_dir(run)
    if state is None:
        raise UserError(f"{run} has no saved training state to resume; drop --resume to start")
    config = read_run_config(run)
    if config.family != family.registry_name:
        raise UserError(
            f"{run} holds a {config.family!r} run; resume it with "
            f"`facefilter train {config.family}` or choose another --out"
        )
    if config.domains != family.domains:
        raise UserError(
            f"{run} was trained on domains {config.domains}, the data now gives "
            f"{family.domains}; pass the same data to resume"
        )
    nets = {n: family.unwrapped(n) for n in family.nets}
    nets |= {EMA_PREFIX + name: average for name, average in family.ema.items()}
    saved = read_state(state / "networks.safetensors")
    if family.ema and not any(k.startswith(EMA_PREFIX) for k in saved):
        saved |= {EMA_PREFIX + k: v for k, v in saved.items()}  # EMA switched on at resume
    try:
        load_flat_state(nets, saved)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise UserError(
            f"{run}: the saved networks do not match these settings ({first}); resume with "
            f"the model settings in {run / CONFIG_FILE}"
        ) from None
    for name, optimizer in family.opts.items():
        # The moments come from the checkpoint; lr, betas and the rest from this run's
        # settings, so a learning rate changed at --resume is the one used.
        settings = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        path = state / f"optimizer-{name}.pt"
        try:
            optimizer.load_state_dict(read_state(path, torch_file=True))
        except (ValueError, KeyError, TypeError) as error:
            raise damaged(path, f"it does not fit this optimizer: {error}") from None
        for group, setting in zip(optimizer.param_groups, settings, strict=True):
            group.update(setting)
    extra = read_state(state / "extra.safetensors")
    family.load_extra_state({k: v.to(family.device) for k, v in extra.items()})
    return int(_trainer(state)["step"])
