"""LPIPS (Zhang et al. 2018): a learned perceptual distance between paired images.

The linear layers that weigh each backbone layer ship inside torchmetrics; the backbone
is torchvision's ImageNet AlexNet, VGG16 or SqueezeNet 1.1, loaded from the file the
user gives (`--lpips-weights`; never downloaded here). Which backbone a file is comes
from its keys and shapes, each checked against torchvision's own layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facefilter.errors import UserError
from facefilter.pretrained import check_keys, read_state_dict, torchvision_shapes

# torchvision network -> (LPIPS's name for it, the file torchvision downloads)
BACKBONES: dict[str, tuple[Literal["alex", "vgg", "squeeze"], str]] = {
    "alexnet": ("alex", "alexnet-owt-7be5be79.pth"),
    "vgg16": ("vgg", "vgg16-397923af.pth"),
    "squeezenet1_1": ("squeeze", "squeezenet1_1-b8a52dc0.pth"),
}
LPIPS_HINT = (
    "give the torchvision ImageNet weights of one LPIPS backbone: "
    + ", ".join(f"{name} ({file})" for name, (_, file) in BACKBONES.items())
    + ", from ~/.cache/torch/hub/checkpoints/ on a machine with internet"
)
MIN_SIDE = 64  # smaller images are enlarged first: AlexNet's stride-4 stem leaves 1x1 maps


def backbone_of(state: dict[str, Tensor], what: str) -> str:
    """The torchvision network whose features a state dict holds (by its first layer)."""
    features = {key: value for key, value in state.items() if key.startswith("features.")}
    for name in BACKBONES:
        expected = {k: v for k, v in torchvision_shapes(name).items() if k.startswith("features.")}
        if features.keys() == expected.keys():
            check_keys(features, expected, what, name, LPIPS_HINT)
            return name
    raise UserError(f"{what}: its layers are not those of {', '.join(BACKBONES)}; {LPIPS_HINT}")


def _feature_key(name: str) -> str:
    """torchmetrics' slice of a torchvision layer -> its key there: `slice3.6.weight` and
    (SqueezeNet) `slices.2.6.squeeze.weight` -> `6.weight`, `6.squeeze.weight`."""
    return name.split(".", 2)[2] if name.startswith("slices.") else name.split(".", 1)[1]


class LPIPS(nn.Module):
    """(B, 3, H, W) pairs in [-1, 1] -> (B,) distances (0: the same image)."""

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        from torchmetrics.functional.image.lpips import _NoTrainLpips

        path = Path(path)
        what = f"--lpips-weights {path}"
        state = read_state_dict(path, "--lpips-weights", LPIPS_HINT)
        self.backbone = backbone_of(state, what)
        net_type = BACKBONES[self.backbone][0]
        # pnet_rand: no ImageNet download for the backbone; the linear layers (pretrained)
        # come from the file torchmetrics ships.
        self.net = _NoTrainLpips(pretrained=True, net=net_type, pnet_rand=True)
        backbone = self.net.net
        backbone.load_state_dict({name: state["features." + _feature_key(name)]
                                  for name in backbone.state_dict()})  # fmt: skip
        self.name = f"LPIPS ({self.backbone}, {path.name})"

    @torch.no_grad()
    def forward(self, first: Tensor, second: Tensor) -> Tensor:
        if min(first.shape[-2:]) < MIN_SIDE:
            first, second = (F.interpolate(x, scale_factor=MIN_SIDE / min(x.shape[-2:]),
                                           mode="bilinear") for x in (first, second))  # fmt: skip
        return self.net(first.clamp(-1, 1), second.clamp(-1, 1)).flatten()


@torch.no_grad()
def lpips_distances(model: LPIPS, outputs: Tensor, truths: Tensor, batch: int = 32) -> Tensor:
    """(N,) LPIPS of each output to its own truth."""
    return torch.cat([model(outputs[i : i + batch], truths[i : i + batch])
                      for i in range(0, len(outputs), batch)])  # fmt: skip
