"""Paired metrics on synthetic faces, where every photo has its true anime twin.

No public face-to-anime benchmark has ground truth; the built-in synthetic
faces do (the same parameters drawn in two styles), so a translation can be
scored against the real answer: mean L1 (lower is better), SSIM (higher), and
identity top-1 retrieval (higher): is each output nearer its own ground truth than
every other face's? L1 alone is passed by a model that returns one blurred mean
face for every input; retrieval is not (a mean face scores chance, 1 / N).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor

from facefilter.models.capabilities import Translates
from facefilter.pixels import to_unit
from facefilter.sizes import ImageSize


def l1_distance(prediction: Tensor, target: Tensor) -> Tensor:
    """Per-image mean absolute difference of (B, 3, H, W) images in [-1, 1]: (B,)."""
    return (prediction - target).abs().flatten(1).mean(1)


def ssim(prediction: Tensor, target: Tensor, window: int = 7, sigma: float = 1.5) -> Tensor:
    """Structural similarity (Wang et al. 2004) per image, (B,), by torchmetrics on
    [0, 1]-scaled inputs (images in [-1, 1] are mapped first). The Gaussian window is 7
    wide, not the usual 11, so the score stays meaningful at 32 px."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    score = structural_similarity_index_measure(
        to_unit(prediction).float(), to_unit(target).float(), gaussian_kernel=True,
        sigma=sigma, kernel_size=window, reduction="none", data_range=1.0,
    )  # fmt: skip
    return cast(Tensor, score)


def identity_top1(outputs: Tensor, truths: Tensor, chunk: int = 256) -> float:
    """Share of outputs whose nearest ground truth (mean L1, over all N) is their own. (N, ...)

    Ties count as misses, so N identical outputs score 0, not 1 / N.
    """
    if outputs.shape != truths.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and truths {tuple(truths.shape)} differ")
    flat_out, flat_truth = outputs.flatten(1).float(), truths.flatten(1).float()
    hits = 0
    for start in range(0, len(flat_out), chunk):
        block = flat_out[start : start + chunk]  # (b, D)
        distances = torch.cdist(block, flat_truth, p=1) / flat_out.shape[1]  # (b, N)
        own = distances[torch.arange(len(block)), torch.arange(start, start + len(block))]
        others = distances.clone()
        others[torch.arange(len(block)), torch.arange(start, start + len(block))] = torch.inf
        hits += int((own < others.min(1).values).sum())
    return hits / max(1, len(flat_out))


@dataclass
class PairedScore:
    l1: float  # mean absolute error in [-1, 1] units (0 = identical)
    ssim: float  # mean structural similarity (1 = identical)
    count: int
    top1: float  # identity retrieval: outputs nearest their own truth (chance: 1 / count)


@torch.no_grad()
def paired_score(
    family: Translates, sources: Tensor, truths: Tensor, target: str, source: str | None = None,
    batch_size: int = 32,
) -> PairedScore:  # fmt: skip
    """Translate `sources` to `target` and compare with the true renderings `truths`."""
    family.eval()
    device = family.device
    fakes = [
        family.translate(sources[start : start + batch_size].to(device), target, source).cpu()
        for start in range(0, len(sources), batch_size)
    ]
    return score_outputs(torch.cat(fakes), truths)


def score_outputs(outputs: Tensor, truths: Tensor) -> PairedScore:
    """L1, SSIM and identity retrieval of `outputs` against their `truths`, (N, 3, H, W)."""
    return PairedScore(
        float(l1_distance(outputs, truths).mean()),
        float(ssim(outputs, truths).mean()),
        len(outputs),
        identity_top1(outputs, truths),
    )


def identity_score(sources: Tensor, truths: Tensor) -> PairedScore:
    """The score of doing nothing: the baseline any translator must beat."""
    return score_outputs(sources, truths)


def synth_pairs(
    source_style: str, target_style: str, size: int, count: int = 2000, seed: int = 0,
    split: str = "test", limit: int | None = None,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Held-out synthetic faces in two styles, row i the same person: (N, 3, S, S) each.

    `count` and `seed` must match the `synth:` spec the model trained on (its
    defaults are 2000 and the training seed) for `split` to be truly held out.
    """
    from facefilter.synth import SynthFaces

    source = SynthFaces(source_style, size, count=count, seed=seed, split=split)
    target = SynthFaces(target_style, size, count=count, seed=seed, split=split)
    n = len(source) if limit is None else min(limit, len(source))
    sources = torch.stack([cast(Tensor, source[i]["image"]) for i in range(n)])
    truths = torch.stack([cast(Tensor, target[i]["image"]) for i in range(n)])
    return sources, truths


def synth_edit_pairs(
    attribute: str, add: bool, size: int | ImageSize, count: int = 32, seed: int = 12345,
    style: str = "photo",
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Synthetic faces that lack `attribute` (`add`) or have it, and the true renderings
    of the very same faces with it flipped: (N, 3, H, W) each, N = `count`.

    `seed` defaults to one no training run uses, so every face is held out.
    """
    from facefilter.data.images import center_crop
    from facefilter.synth import SynthFaces

    size = ImageSize.parse(size)
    where = f"{'-' if add else ''}{attribute}"
    pool = count * 20  # enough faces for `count` of the rarest drawn attribute
    plain = SynthFaces(style, size.side, count=pool, seed=seed, where=where)
    flipped = SynthFaces(style, size.side, count=pool, seed=seed, where=where,
                         force={attribute: add})  # fmt: skip
    n = min(count, len(plain))
    faces = torch.stack([cast(Tensor, plain[i]["image"]) for i in range(n)])
    twins = torch.stack([cast(Tensor, flipped[i]["image"]) for i in range(n)])
    return center_crop(faces, size), center_crop(twins, size)


CHANGE_THRESHOLD = 0.1  # [-1, 1] units: a pixel the true edit changes (about 13 / 255)


@dataclass
class EditScore:
    wins: float  # share of faces whose edit is nearer (L1) their true twin than the unedited
    top1: float  # identity retrieval of the edits among the true twins (chance: 1 / count)
    l1: float  # mean L1 of the edits to their twins
    baseline_l1: float  # mean L1 of the unedited outputs to the twins
    count: int
    # How much of the true change the edit makes where the twin differs from the face:
    # 1 - L1(edit, twin) / L1(unedited, twin) there; 1 is all of it, 0 nothing. Wins alone
    # reward timid edits (doing nothing costs nothing outside that region); this does not.
    progress: float = 0.0


def edit_score(edited: Tensor, unedited: Tensor, twins: Tensor, faces: Tensor | None = None
               ) -> EditScore:  # fmt: skip
    """Does an edit move each face towards its true twin (the same face with the attribute
    flipped), and stay that person? (N, 3, H, W) each; `faces` (the inputs) mark where the
    twin differs, for `progress` (the unedited outputs when not given)."""
    edited_l1, unedited_l1 = l1_distance(edited, twins), l1_distance(unedited, twins)
    source = unedited if faces is None else faces
    region = ((twins - source).abs().mean(1, keepdim=True) > CHANGE_THRESHOLD).float()
    inside = lambda images: ((images - twins).abs() * region).sum() / (3 * region.sum() + 1e-9)  # noqa: E731
    return EditScore(
        float((edited_l1 < unedited_l1).float().mean()),
        identity_top1(edited, twins),
        float(edited_l1.mean()),
        float(unedited_l1.mean()),
        len(edited),
        float(1 - inside(edited) / (inside(unedited) + 1e-9)),
    )
