"""FID and KID: how far a filter's outputs lie from real faces of the target domain.

Both compare feature statistics, not pairs, so they work on unpaired real data. The
features come from
- InceptionV3 (pool3, 2048 features) as torch-fidelity ships it, loaded from the file
  the user gives (`--inception-weights`; never downloaded here): the published protocol,
  figures comparable with papers' (U-GAT-IT's tables give KID x 100);
- else the built-in attribute classifier's pooled features (`--classifier RUN`): the same
  statistics on features this project trains itself, labelled in every output as not
  comparable with published FID.
The arithmetic is torchmetrics' (`FrechetInceptionDistance`, `KernelInceptionDistance`).
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from facefilter.errors import UserError
from facefilter.pixels import to_pixels
from facefilter.pretrained import read_state_dict

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_HINT = (
    f"give the {INCEPTION_FILE} file that torch-fidelity downloads (github.com/toshas/"
    "torch-fidelity/releases/tag/v0.2.0, or ~/.cache/torch/hub/checkpoints/ on a machine "
    "with internet)"
)
STABLE_COUNT = 2048  # FID's covariance is full rank only from 2048 Inception images on
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # torch-fidelity's and torchmetrics' defaults


class InceptionFeatures(nn.Module):
    """torch-fidelity's InceptionV3 (TF-ported weights), (B, 3, H, W) in [-1, 1] -> (B, 2048)."""

    num_features = 2048
    comparable = True  # with published FID and KID

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = Path(path)
        what = f"--inception-weights {path}"
        state = read_state_dict(path, "--inception-weights", INCEPTION_HINT)  # no code runs
        with tempfile.TemporaryDirectory() as folder:  # the checked tensors, re-saved
            checked = Path(folder) / "inception.pth"
            torch.save(state, checked)
            try:
                self.net = FeatureExtractorInceptionV3(
                    "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(checked)
                )
            except RuntimeError as error:  # strict load: a missing, extra or misshapen key
                lines = [line.strip() for line in str(error).splitlines() if line.strip()]
                first = lines[min(1, len(lines) - 1)][:200]  # the first wrong key
                raise UserError(f"{what} is not torch-fidelity's InceptionV3 ({first}); "
                                f"{INCEPTION_HINT}") from None  # fmt: skip
        self.name = f"InceptionV3 pool3 ({path.name})"

    def forward(self, images: Tensor) -> Tensor:
        (features,) = self.net(to_pixels(images))  # it takes uint8 and resizes to 299 itself
        return features.float()


class _Given(nn.Module):
    """Features already extracted, handed to torchmetrics as its 'feature network'."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


@dataclass
class DistributionScore:
    fid: float
    kid_x100: float  # KID x 100, as U-GAT-IT reports it
    kid_std_x100: float
    outputs: int
    reference: int
    features: str  # which network: the figures are comparable only between equal ones
    comparable: bool  # with published figures (InceptionV3) or not (the classifier)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def feature_count(extractor: nn.Module) -> int:
    """How many features an extractor gives (its `num_features`, as torchmetrics reads it)."""
    return int(cast(int, extractor.num_features))


@torch.no_grad()
def extract(extractor: nn.Module, images: Tensor, batch_size: int = 64) -> Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, D) features, on the CPU."""
    parts = [extractor(images[i : i + batch_size]).float().cpu()
             for i in range(0, len(images), batch_size)]  # fmt: skip
    return torch.cat(parts) if parts else torch.zeros(0, feature_count(extractor))


def check_counts(outputs: int, reference: int, dimensions: int, warn: Any = None) -> None:
    """FID needs two images a side; a stable figure far more (said once, as a note)."""
    if min(outputs, reference) < 2:
        raise UserError(
            f"FID needs at least 2 images on each side, got {outputs} output(s) and "
            f"{reference} reference image(s); a stable figure needs thousands (at least as "
            f"many as the features have dimensions, {dimensions}; published FIDs use 10,000 "
            "to 50,000): give more with --count or a larger --data / --reference"
        )
    stable = max(STABLE_COUNT, dimensions)
    if min(outputs, reference) < stable:
        note = (f"note: FID on {min(outputs, reference)} images is biased upwards and noisy "
                f"(a stable figure needs {stable}+ a side); compare it only with FIDs on as "
                "many images, or read KID, which is unbiased")  # fmt: skip
        (warn or (lambda line: print(line, file=sys.stderr)))(note)


def feature_score(
    fake: Tensor, real: Tensor, extractor: nn.Module, seed: int = 0, warn: Any = None
) -> DistributionScore:
    """FID and KID (x100) of features already extracted by `extractor`, (N, D) each: a
    reference set scored against several sets of outputs is extracted once."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    dimensions = feature_count(extractor)
    check_counts(len(fake), len(real), dimensions, warn)
    fid = FrechetInceptionDistance(feature=_Given(dimensions), reset_real_features=False)
    fid.update(real.double(), real=True)
    fid.update(fake.double(), real=False)
    # subsets of 1000 where there are 2000 faces or more; below, of half the faces, so the
    # 100 subsets differ and their spread means something (all faces: every one alike)
    subset = min(KID_SUBSET_SIZE, max(2, min(len(fake), len(real)) // 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "KID keeps all features in memory": they are few
        kid = KernelInceptionDistance(feature=_Given(dimensions), subsets=KID_SUBSETS,
                                      subset_size=subset)  # fmt: skip
    kid.update(real.double(), real=True)
    kid.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):  # KID draws its subsets from the global RNG
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    return DistributionScore(
        max(0.0, float(fid.compute())),  # 0 up to rounding for equal sets
        100 * float(kid_mean), 100 * float(kid_std), len(fake),
        len(real), str(getattr(extractor, "name", type(extractor).__name__)),
        bool(getattr(extractor, "comparable", False)),
    )  # fmt: skip
