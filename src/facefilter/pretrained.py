"""Pretrained weights from files the user names: nothing here ever downloads.

    --vgg-weights ~/.cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth

takes the very file `torchvision.models.vgg19(weights="IMAGENET1K_V1")` downloads (a
state dict saved with `torch.save`), or the same tensors as `.safetensors`. A file is
checked by key and shape against the architecture it is meant for before any layer
loads it, so a wrong file (VGG16, VGG19-BN, a whole pickled model, a truncated
download) is one line that names the file and what is wrong, never a traceback
from deep inside `load_state_dict`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor

from facefilter.errors import UserError

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's IMAGENET1K_V1 weights for vgg19
VGG19_HINT = (
    f"give the {VGG19_FILE} file that torchvision.models.vgg19(weights='IMAGENET1K_V1') "
    "downloads (e.g. from ~/.cache/torch/hub/checkpoints/ on a machine with internet)"
)


def read_state_dict(path: Path | str, what: str, hint: str = VGG19_HINT) -> dict[str, Tensor]:
    """Tensors by name from a `torch.save`d state dict (loaded with weights_only=True: no
    code runs) or a .safetensors file; UserError for a file that is neither. `hint` says
    which file is wanted and where it comes from."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist; {hint}")
    try:
        if path.suffix == ".safetensors":
            state: object = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler, given junk, raises anything (KeyError ...)
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(
            f"{what} {path} is not a readable weights file ({type(error).__name__}: {first}); "
            + hint
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise UserError(f"{what} {path} is not a state dict of named tensors; {hint}")
    return state


@functools.cache
def torchvision_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """Every key of a torchvision model's state dict (`vgg19`, `alexnet` ...) and its
    shape, built on the meta device: no memory, no init, no download."""
    import torchvision.models

    with torch.device("meta"):
        model = getattr(torchvision.models, name)(weights=None)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def vgg19_shapes() -> dict[str, tuple[int, ...]]:
    return torchvision_shapes("vgg19")


def load_vgg19_layers(path: Path | str, layers: int) -> dict[str, Tensor]:
    """The weights of `features.0` .. `features.{layers - 1}` of VGG19 from `path`,
    keyed as in `VGGFeatures` (`layers.N.weight`).

    Every key of the file must be one torchvision's vgg19 has, with its shape (this
    refuses VGG16, VGG19-BN and other networks), and every layer used must be there.
    A file holding only those first layers is accepted too.
    """
    what = "--vgg-weights"
    state = read_state_dict(path, what)
    expected = vgg19_shapes()
    check_keys(state, expected, f"{what} {path}", "vgg19 (is it another network, e.g. vgg16 "
               "or vgg19_bn?)", VGG19_HINT)  # fmt: skip
    needed = [key for key in expected if _layer_index(key) < layers]
    missing = [key for key in needed if key not in state]
    if missing:
        raise UserError(f"{what} {path} lacks {missing[0]} (and {len(missing) - 1} more); "
                        f"{VGG19_HINT}")  # fmt: skip
    return {key.replace("features.", "layers.", 1): state[key].float() for key in needed}


def check_keys(
    state: dict[str, Tensor], expected: dict[str, tuple[int, ...]], what: str, network: str,
    hint: str,
) -> None:  # fmt: skip
    """Every key of `state` must be one `network` has, with its shape: one line otherwise."""
    for key, value in state.items():
        if key not in expected:
            raise UserError(f"{what}: key {key!r} is not in torchvision's {network}; {hint}")
        if tuple(value.shape) != expected[key]:
            raise UserError(f"{what}: {key} has shape {tuple(value.shape)}, "
                            f"{network.split()[0]}'s is {expected[key]}; {hint}")  # fmt: skip


def _layer_index(key: str) -> int | float:
    """`features.10.weight` -> 10; classifier keys come after every feature layer."""
    parts = key.split(".")
    return int(parts[1]) if parts[0] == "features" else float("inf")
