"""A run's weights: model.safetensors (and kept snapshots) in, a family out.

    runs/<name>/model.safetensors        inference networks (EMA copies where kept) and
                                         the inference state ("state." keys)
    runs/<name>/checkpoints/step-N.safetensors   the same, kept with --keep-checkpoints

Callers ask for what they will use: `load_filter` (translates), `load_editor` (edits
codes), `load_classifier` (predicts), each refusing a run without it in one line
before any weight is read; `load_family` loads any family as its trainable core.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from facefilter.errors import UserError
from facefilter.models import capable, create_family, require
from facefilter.models.base import Family, ModelConfig
from facefilter.models.capabilities import Capability, EditsCodes, Predicts, Translates
from facefilter.runs.config import (
    CONFIG_FILE,
    STATE_PREFIX,
    WEIGHTS_FILE,
    kept_snapshots,
    read_run_config,
    snapshot_file,
    split_snapshot,
)
from facefilter.safe_io import write_bytes

COMPILED_PREFIX = "_orig_mod."  # torch.compile's wrapper, in runs saved by older versions


def flat_state(modules: Mapping[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """One flat `{"net.param": tensor}` dict for several networks (safetensors wants one)."""
    return {
        f"{name}.{key}": value.detach().cpu().contiguous()
        for name, module in modules.items()
        for key, value in module.state_dict().items()
    }


def network_state(state: Mapping[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """Network `name`'s own state dict out of a flat one (`flat_state`), without the
    prefix torch.compile's wrapper left in older runs."""
    prefix = f"{name}."
    return {k[len(prefix) :].replace(COMPILED_PREFIX, ""): v
            for k, v in state.items() if k.startswith(prefix)}  # fmt: skip


def load_flat_state(
    modules: Mapping[str, torch.nn.Module], state: Mapping[str, torch.Tensor]
) -> None:
    for name, module in modules.items():
        module.load_state_dict(network_state(state, name))


def with_overrides(model: ModelConfig, overrides: Mapping[str, Any], family: str) -> ModelConfig:
    """`model` with inference-only settings replaced; one line for a setting it lacks."""
    for name in overrides:
        if name not in model.inference_only:
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} is not a setting of a {family} model; drop it")
    return dataclasses.replace(model, **overrides) if overrides else model


def save_weights(path: Path, family: Family, step: int) -> None:
    """model.safetensors: inference networks (EMA where kept) and the inference state."""
    tensors = flat_state(family.inference_modules())
    tensors |= {STATE_PREFIX + k: v.detach().cpu().contiguous()
                for k, v in family.inference_state().items()}  # fmt: skip
    meta = {"family": family.registry_name, "step": str(step)}
    write_bytes(
        path, safetensors_bytes(tensors, meta), durable=True
    )  # a full disk is an OSError, one line


def load_family(
    run: Path, *, training: bool = False, overrides: Mapping[str, Any] | None = None,
    need: type[Capability] | None = None, flag: str = "",
) -> Family:  # fmt: skip
    """The trained family in `run`, its inference networks loaded, in eval mode.

    Only inference networks are built unless `training` (no discriminators to apply a CycleGAN).
    `overrides` replaces settings that only change inference (`ModelConfig.inference_only`).
    `need`: a capability the run must have, refused in one line (`flag` names the option
    it was given to) before anything is built or read beyond config.json.
    """
    run, snapshot = split_snapshot(Path(run))
    config = read_run_config(run)
    if need is not None:
        require(config.family, need, run, flag)
    model = with_overrides(config.model_config(), overrides or {}, config.family)
    family = create_family(config.family, model, config.domains, config.image_size,
                           training=training)  # fmt: skip
    weights = snapshot or run / WEIGHTS_FILE
    if not weights.is_file():
        raise UserError(f"{run} has no {WEIGHTS_FILE}: training never saved; resume or retrain")
    try:
        state = load_file(weights)
    except (SafetensorError, OSError) as error:
        raise UserError(f"{weights} is unreadable ({error}); retrain or restore it") from None
    inference = {name: family.nets[name] for name in family.inference_names}
    try:
        load_flat_state(inference, state)
        family.load_inference_state({k.removeprefix(STATE_PREFIX): v for k, v in state.items()
                                     if k.startswith(STATE_PREFIX)})  # fmt: skip
    except (RuntimeError, KeyError) as error:
        first = " ".join(line.strip() for line in str(error).splitlines()[:2])
        raise UserError(f"{weights} does not match {run / CONFIG_FILE}: {first}") from None
    family.eval()
    return family


def keep_snapshot(run: Path, step: int, keep: int) -> None:
    """Copy the weights just saved to checkpoints/step-N.safetensors; drop all but `keep`."""
    if keep < 1:
        return
    target = snapshot_file(run, step)
    target.parent.mkdir(exist_ok=True)
    write_bytes(target, (run / WEIGHTS_FILE).read_bytes())
    for old in kept_snapshots(run)[:-keep]:
        old.unlink(missing_ok=True)


def load_filter(
    run: Path, *, overrides: Mapping[str, Any] | None = None, flag: str = ""
) -> Translates:
    """The trained translator in `run` (one line for a run that translates nothing)."""
    return capable(load_family(run, overrides=overrides, need=Translates, flag=flag), Translates)


def load_editor(run: Path) -> EditsCodes:
    """The trained feature editor in `run` (one line for a run with no code space)."""
    return capable(load_family(run, need=EditsCodes), EditsCodes)


def load_classifier(run: Path, flag: str = "--classifier") -> Predicts:
    """The trained attribute classifier in `run` (one line for a filter run or export)."""
    return capable(load_family(run, need=Predicts, flag=flag), Predicts)
