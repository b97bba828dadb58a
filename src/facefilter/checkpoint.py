"""The run directory: what training leaves and what `apply`, `export` and `eval` read.

    runs/<name>/
      config.json          family, its config, domains, image size, normalisation, version
      model.safetensors    inference weights (no pickle: safe to download and share)
      state/               resume state: every network, optimizer and extra state, the step
      samples/step-000500.png
      metrics.jsonl        one line per logging step
      loss.png             the loss curves

Every write is atomic (write beside, then rename), so a crash or Ctrl-C in the
middle of saving leaves the previous checkpoint whole.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from facefilter import __version__
from facefilter.errors import UserError
from facefilter.models import FAMILIES, config_class, create_family
from facefilter.models.base import Family, ModelConfig

FORMAT_VERSION = 1  # bump when the run-directory layout changes incompatibly
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary path beside `path`, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    text = json.dumps(payload, indent=2) + "\n"

    def write(tmp: Path) -> None:
        tmp.write_text(text)

    atomic_write(path, write)


def flat_state(modules: Mapping[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """One flat `{"net.param": tensor}` dict for several networks (safetensors wants one)."""
    return {
        f"{name}.{key}": value.detach().cpu().contiguous()
        for name, module in modules.items()
        for key, value in module.state_dict().items()
    }


def load_flat_state(modules: Mapping[str, torch.nn.Module], state: Mapping[str, torch.Tensor]):
    for name, module in modules.items():
        prefix = f"{name}."
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        )


# --- config.json -------------------------------------------------------------------------
def run_config(family: Family, train: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        "facefilter_version": __version__,
        "format_version": FORMAT_VERSION,
        "family": family.registry_name,
        "model": dataclasses.asdict(family.config),
        "domains": family.domains,
        "image_size": family.image_size,
        "normalization": {"range": [-1.0, 1.0], "layout": "RGB, (B, 3, H, W)"},
        "train": dict(train or {}),
    }


def config_from_dict(
    cls: type[ModelConfig], values: Mapping[str, Any], source: Path
) -> ModelConfig:
    """Rebuild a config dataclass from JSON (lists back to tuples where the field is one)."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise UserError(
            f"{source}: unknown model settings {unknown} (written by a newer facefilter?); "
            "upgrade facefilter or retrain"
        )
    hints = typing.get_type_hints(cls)
    fixed = {
        k: tuple(v) if isinstance(v, list) and _is_tuple(hints[k]) else v for k, v in values.items()
    }
    return cls(**fixed)


def _is_tuple(hint: Any) -> bool:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_tuple(arg) for arg in typing.get_args(hint))
    return hint is tuple or typing.get_origin(hint) is tuple


def read_run_config(run: Path) -> dict[str, Any]:
    """Read and check `run/config.json`; one clear error for every way it can be wrong."""
    path = run / CONFIG_FILE
    if not run.exists():
        raise UserError(f"run directory {run} does not exist; train one with `facefilter train`")
    if not path.is_file():
        raise UserError(f"{run} is not a facefilter run: it has no {CONFIG_FILE}")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({error}); restore it or retrain") from None
    if not isinstance(config, dict) or "family" not in config:
        raise UserError(f"{path} is not a facefilter run config (no 'family' key)")
    if config.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{path} has format version {config.get('format_version')!r}; this facefilter "
            f"({__version__}) reads version {FORMAT_VERSION}: use the facefilter that wrote it"
        )
    if config["family"] not in FAMILIES:
        raise UserError(
            f"{path} is a {config['family']!r} model, which this facefilter does not know; "
            f"known families: {', '.join(FAMILIES)}"
        )
    return config


def load_model(run: Path, family_name: str | None = None) -> Family:
    """The trained family in `run` (config.json + model.safetensors), in eval mode."""
    run = Path(run)
    config = read_run_config(run)
    if family_name is not None and config["family"] != family_name:
        raise UserError(f"{run} holds a {config['family']!r} model, not {family_name!r}")
    model_config = config_from_dict(config_class(config["family"]), config["model"], run)
    family = create_family(config["family"], model_config, config["domains"], config["image_size"])
    weights = run / WEIGHTS_FILE
    if not weights.is_file():
        raise UserError(f"{run} has no {WEIGHTS_FILE}: training never saved; resume or retrain")
    try:
        state = load_file(weights)
    except (SafetensorError, OSError) as error:
        raise UserError(f"{weights} is unreadable ({error}); retrain or restore it") from None
    inference = {name: family.nets[name] for name in family.inference_networks}
    try:
        load_flat_state(inference, state)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise UserError(f"{weights} does not match {run / CONFIG_FILE}: {first}") from None
    family.eval()
    return family


# --- training state ------------------------------------------------------------------------
def save_checkpoint(run: Path, family: Family, step: int, train: Mapping[str, Any]) -> None:
    """Write config.json, model.safetensors and state/ for `step`, each atomically.

    state/ is built as state.tmp/ and swapped in with renames, so at every instant
    either the old or the new complete state exists on disk.
    """
    nets = {name: family.unwrapped(name) for name in family.nets}
    write_json(run / CONFIG_FILE, run_config(family, train))
    inference = {name: nets[name] for name in family.inference_networks}
    meta = {"family": family.registry_name, "step": str(step)}
    atomic_write(run / WEIGHTS_FILE, lambda tmp: save_file(flat_state(inference), tmp, meta))

    tmp, state, old = run / "state.tmp", run / "state", run / "state.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(flat_state(nets), tmp / "networks.safetensors")
    for name, optimizer in family.opts.items():
        torch.save(optimizer.state_dict(), tmp / f"optimizer-{name}.pt")
    save_file({k: v.detach().cpu().contiguous() for k, v in family.extra_state().items()},
              tmp / "extra.safetensors")  # fmt: skip
    (tmp / "trainer.json").write_text(json.dumps({"step": step, "version": __version__}))
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
    if config["family"] != family.registry_name:
        raise UserError(
            f"{run} holds a {config['family']!r} run; resume it with "
            f"`facefilter train {config['family']}` or choose another --out"
        )
    if config["domains"] != family.domains:
        raise UserError(
            f"{run} was trained on domains {config['domains']}, the data now gives "
            f"{family.domains}; pass the same data to resume"
        )
    load_flat_state({n: family.unwrapped(n) for n in family.nets},
                    load_file(state / "networks.safetensors"))  # fmt: skip
    for name, optimizer in family.opts.items():
        saved = torch.load(state / f"optimizer-{name}.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(saved)
    family.load_extra_state(load_file(state / "extra.safetensors", device=str(family.device)))
    step = json.loads((state / "trainer.json").read_text())["step"]
    return int(step)
