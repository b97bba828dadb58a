"""Shared fixtures: tiny image folders and tiny model settings, all made on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# Tests run on 2 cores next to pytest-xdist workers: one thread each avoids oversubscription.
torch.set_num_threads(1)

TINY_CYCLEGAN = ["--ngf", "8", "--ndf", "8", "--n-blocks", "1", "--pool-size", "4"]


def write_images(folder: Path, count: int, *, size: int = 40, base: int = 0, seed: int = 0):
    """`count` random PNGs whose brightness sits around `base`: two bases, two domains."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = np.clip(base + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture
def two_domains(tmp_path: Path) -> tuple[Path, Path]:
    """Folders `dark/` and `light/` of 8 images each."""
    return (
        write_images(tmp_path / "dark", 8, base=60, seed=1),
        write_images(tmp_path / "light", 8, base=190, seed=2),
    )
