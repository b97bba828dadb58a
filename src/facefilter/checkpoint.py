"""Resume state: what `--resume` needs beyond the run's public files (`facefilter.run`).

    runs/<name>/state/   every network (EMA copies too), optimizer and extra state, the step

A checkpoint writes config.json, model.safetensors and state/, each atomically
(write beside, then rename; state/ is swapped in by renames), so a crash or Ctrl-C
in the middle of saving leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from facefilter import __version__
from facefilter.errors import UserError
from facefilter.models.base import Family
from facefilter.run import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    flat_state,
    load_flat_state,
    read_run_config,
    run_config,
    save_weights,
    write_run_config,
)

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
    write_run_config(run / CONFIG_FILE, run_config(family, train))
    save_state(run, family, step)
    save_weights(run / WEIGHTS_FILE, family, step)


def save_state(run: Path, family: Family, step: int) -> None:
    """state/: every network (EMA copies too), optimizer, extra state and the step."""
    tmp, state, old = run / "state.tmp", run / "state", run / "state.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    nets = {name: family.unwrapped(name) for name in family.nets}
    nets |= {EMA_PREFIX + name: average for name, average in family.ema.items()}
    save_file(flat_state(nets), tmp / "networks.safetensors")
    for name, optimizer in family.opts.items():
        torch.save(optimizer.state_dict(), tmp / f"optimizer-{name}.pt")
    save_file({k: v.detach().cpu().contiguous() for k, v in family.extra_state().items()},
              tmp / "extra.safetensors")  # fmt: skip
    world = family.accelerator.num_processes if family.accelerator is not None else 1
    trainer = {"step": step, "processes": world, "version": __version__}
    (tmp / "trainer.json").write_text(json.dumps(trainer))
    if state.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(state, old)
    os.replace(tmp, state)
    shutil.rmtree(old, ignore_errors=True)


def saved_step(run: Path) -> int | None:
    """The step of the last complete checkpoint in `run`, or None if there is none."""
    state = _state_dir(run)
    if state is None:
        return None
    return int(json.loads((state / "trainer.json").read_text())["step"])


def saved_world(run: Path) -> int:
    """How many processes trained the last checkpoint (1 for runs that did not record it)."""
    state = _state_dir(run)
    if state is None:
        return 1
    return int(json.loads((state / "trainer.json").read_text()).get("processes", 1))


def _state_dir(run: Path) -> Path | None:
    # state.old/ survives only when the process died between the two renames.
    for name in ("state", "state.old"):
        if (run / name / "trainer.json").is_file():
            return run / name
    return None


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
    saved = load_file(state / "networks.safetensors")
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
        saved = torch.load(state / f"optimizer-{name}.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(saved)
    family.load_extra_state(load_file(state / "extra.safetensors", device=str(family.device)))
    step = json.loads((state / "trainer.json").read_text())["step"]
    return int(step)
