"""Batch augmentation on the device, each random choice a function of (seed, step, rank):
a run resumed at step k sees the very batches an uninterrupted one would.

- flips: left-right with p = 0.5 (faces are near-symmetric, so free data);
- random crops (`--load-size L`): images loaded at L pixels, each cut to the training
  size at a random place, as CycleGAN's `resize_and_crop` does (286 -> 256);
- colour jitter (`--color-jitter J`): brightness, contrast and saturation each scaled by
  a factor in [1 - J, 1 + J];
- domain randomisation (`--randomize P`, `--randomize-domain D`): P of one domain's
  images through a random camera (`facefilter.degrade.camera`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from facefilter.data.images import center_crop
from facefilter.degrade import camera
from facefilter.errors import UserError
from facefilter.sizes import ImageSize


def step_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step) * 64 + rank


def _generator(seed: int, step: int, rank: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed(step_seed(seed, step, rank) + 7919 * salt)


def _images(batch: dict[str, Tensor]) -> list[tuple[int, str]]:
    """(salt, key) of the image tensors, in a fixed order."""
    return [(i + 1, key) for i, key in enumerate(sorted(batch)) if batch[key].dim() == 4]


def flip_batch(batch: dict[str, Tensor], seed: int, step: int, rank: int = 0) -> dict[str, Tensor]:
    """Flip each image left-right with p=0.5, decided by (seed, step, rank, key)."""
    flipped = dict(batch)
    for salt, key in _images(batch):
        value = batch[key]
        mask = torch.rand(value.shape[0], generator=_generator(seed, step, rank, salt)) < 0.5
        flipped[key] = torch.where(
            mask.to(value.device)[:, None, None, None], value.flip(-1), value
        )
    return flipped


def crop_batch(
    batch: dict[str, Tensor], size: ImageSize, seed: int, step: int, rank: int = 0
) -> dict[str, Tensor]:
    """Cut each image to `size` at a random place (each image its own)."""
    cropped = dict(batch)
    for salt, key in _images(batch):
        value = batch[key]
        room_y, room_x = value.shape[-2] - size.height, value.shape[-1] - size.width
        generator = _generator(seed, step, rank, 1000 + salt)
        ys = torch.randint(0, room_y + 1, (value.shape[0],), generator=generator).tolist()
        xs = torch.randint(0, room_x + 1, (value.shape[0],), generator=generator).tolist()
        cuts = [image[:, y : y + size.height, x : x + size.width]
                for image, y, x in zip(value, ys, xs, strict=True)]  # fmt: skip
        cropped[key] = torch.stack(cuts)
    return cropped


def center_batch(batch: dict[str, Tensor], size: ImageSize) -> dict[str, Tensor]:
    """The middle `size` of each image (the held-out sample batch under --load-size)."""
    return batch | {key: center_crop(batch[key], size) for _, key in _images(batch)}


def jitter_batch(
    batch: dict[str, Tensor], amount: float, seed: int, step: int, rank: int = 0
) -> dict[str, Tensor]:
    """Brightness, contrast and saturation of each image (in [-1, 1]) scaled by factors
    drawn from [1 - amount, 1 + amount]; the result is clamped to [-1, 1]."""
    out = dict(batch)
    for salt, key in _images(batch):
        value = batch[key]
        generator = _generator(seed, step, rank, 2000 + salt)
        factors = 1 + amount * (2 * torch.rand(3, value.shape[0], generator=generator) - 1)
        brightness, contrast, saturation = (f.to(value)[:, None, None, None] for f in factors)
        image = (value + 1) / 2 * brightness
        mean = image.mean(dim=(1, 2, 3), keepdim=True)
        image = (image - mean) * contrast + mean
        gray = 0.299 * image[:, :1] + 0.587 * image[:, 1:2] + 0.114 * image[:, 2:]
        image = (image - gray) * saturation + gray
        out[key] = (image * 2 - 1).clamp(-1, 1)
    return out


def camera_domain(name: str | None, domains: list[str], data_kind: str) -> int | None:
    """The index of the domain `--randomize-domain` names (unset: the first); None where the
    batches do not tell domains apart (an attribute table's faces: all of them)."""
    if data_kind == "attributes":
        return None
    if name is None:
        return 0
    if name not in domains:
        raise UserError(f"--randomize-domain {name!r} is not a domain of the data; choose one of "
                        f"{', '.join(domains)}")  # fmt: skip
    return domains.index(name)


def camera_batch(
    batch: dict[str, Tensor], share: float, domain: int | None, seed: int, step: int,
    rank: int = 0,
) -> dict[str, Tensor]:  # fmt: skip
    """`share` of the images of domain `domain` (None: of every image) through a random
    camera; the rest, and their labels, as they were. Two-domain batches also keep the
    clean images (`clean_a` / `clean_b`): a family may ask for those back (a CycleGAN's
    cycle then removes the camera instead of hiding it in its outputs)."""
    generator, out = _generator(seed, step, rank, 3000), dict(batch)
    key = ("real_a", "real_b")[domain] if "real_a" in batch and domain is not None else "image"
    images = batch[key]
    mask = (torch.rand(images.shape[0], generator=generator) < share).to(images.device)
    if "label" in batch and domain is not None:  # only the faces of that class
        mask = mask & (batch["label"] == domain)
    out[key] = torch.where(mask[:, None, None, None], camera(images, generator), images)
    if key != "image":
        out[key.replace("real", "clean")] = images
    return out
