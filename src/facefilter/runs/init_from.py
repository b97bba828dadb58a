"""Start a run from the weights of an earlier one (`train ... --init-from RUN`).

A filter in a new style needs far fewer pictures when it starts from a filter that
already turns photos into some other style: its generators know faces and its
discriminators know real from drawn. The earlier run must be of the same family and
architecture (its domains and learning settings may differ: photo -> anime becoming
photo -> cartoon); what does not fit is one line naming the setting that differs.

    inference networks (generators)  RUN/model.safetensors, or RUN@step-N's kept weights
    training networks (critics)      RUN/state/networks.safetensors, the last checkpoint;
                                     a run without state/ (a downloaded filter) leaves
                                     them freshly initialised, and says so

Optimizer moments, image pools and the step are not taken: the new run starts at step 0
with its own schedules.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from facefilter.errors import UserError
from facefilter.models import family_class
from facefilter.models.base import Family, ModelConfig
from facefilter.runs.checkpoint import saved_networks, saved_step
from facefilter.runs.config import CONFIG_FILE, WEIGHTS_FILE, read_run_config, split_snapshot
from facefilter.runs.weights import network_state


def init_from(source: Path, family: Family, *, critics: bool = False) -> str:
    """Copy the weights of run `source` into `family`'s networks (before training starts);
    return a line saying what was taken from where. `critics`: its discriminators are
    needed (--freeze-d keeps their first layers), so a run without them is refused."""
    run, snapshot = split_snapshot(Path(source))
    if not (run / CONFIG_FILE).is_file():
        raise UserError(f"--init-from {source}: no facefilter run there (no {CONFIG_FILE}); "
                        "give the folder of a trained run")  # fmt: skip
    config = read_run_config(run)
    if family_class(config.family) is not type(family):
        raise UserError(f"--init-from {source} is a {config.family} run; this run trains "
                        f"{family.registry_name}: start from a run of the same family")  # fmt: skip
    saved = config.model_config()
    weights = snapshot or run / WEIGHTS_FILE
    try:
        inference = load_file(weights)
    except (SafetensorError, OSError) as error:
        raise UserError(f"--init-from {source}: {weights} is unreadable ({error})") from None
    names = list(family.inference_names)
    taken = _load(family, names, inference, source, saved)
    trainers = [name for name in family.nets if name not in family.inference_names]
    try:
        networks = saved_networks(run) if snapshot is None else None
    except UserError as error:  # its advice is for a resume; here another run will do
        damage = str(error).split(";")[0]
        raise UserError(f"--init-from {source}: {damage}; restore it or start from another "
                        "run") from None  # fmt: skip
    if trainers and networks is not None:
        taken += _load(family, trainers, networks, source, saved)
        return (f"note: started from {source} (step {saved_step(run)}): "
                f"{', '.join(taken)}")  # fmt: skip
    if trainers and critics:
        raise UserError(f"--freeze-d keeps the first layers of the discriminators of --init-from "
                        f"{source}, but {why_fresh(run, snapshot)}; drop --freeze-d or give "
                        "a run that kept its state/")  # fmt: skip
    fresh = f"; {', '.join(trainers)} start fresh ({why_fresh(run, snapshot)})" if trainers else ""
    return f"note: started from {source}: {', '.join(taken)}{fresh}"


def why_fresh(run: Path, snapshot: Path | None) -> str:
    if snapshot is not None:
        return "kept weights hold the generators only"
    return f"{run} has no state/ with them"


def _load(
    family: Family, names: list[str], tensors: dict[str, torch.Tensor], source: Path,
    saved: ModelConfig,
) -> list[str]:  # fmt: skip
    """Load each network in `names` from the flat `tensors`; one line for a mismatch."""
    for name in names:
        module = family.unwrapped(name)
        own = network_state(tensors, name)
        mismatch = _mismatch(module.state_dict(), own)
        if mismatch is not None:
            settings, detail = _difference(saved, family.config), f"{name}: {mismatch}"
            said = f"{settings} ({detail})" if settings else detail
            raise UserError(f"--init-from {source}: {said}; train with the same architecture")
        module.load_state_dict(own)
    return names


def _mismatch(mine: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> str | None:
    """What first differs between two state dicts, or None when they fit."""
    if not theirs:
        return "it has none of these weights"
    for key in sorted(set(mine) | set(theirs)):
        if key not in theirs:
            return f"it lacks {key}"
        if key not in mine:
            return f"it has {key}, which this run does not"
        if mine[key].shape != theirs[key].shape:
            return f"{key} is {tuple(theirs[key].shape)} there, {tuple(mine[key].shape)} here"
    return None


def _difference(saved: ModelConfig, mine: ModelConfig) -> str:
    """`its --ngf is 64, this run's 32`: the settings fixed once trained that differ."""
    changeable = set(mine.tunable) | set(mine.inference_only)
    differ: list[str] = []
    for field in dataclasses.fields(mine):
        theirs: Any = getattr(saved, field.name)
        ours: Any = getattr(mine, field.name)
        if field.name not in changeable and theirs != ours:
            flag = "--" + field.name.replace("_", "-")
            differ.append(f"its {flag} is {_shown(theirs)}, this run's {_shown(ours)}")
    return "; ".join(differ)


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)
