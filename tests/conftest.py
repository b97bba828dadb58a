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


def tiny_photo_anime_run(out: Path, size: int = 32, count: int = 8) -> Path:
    """A tiny cyclegan-lite trained 2 steps on synthetic photo -> anime faces: a filter
    that changes faces (randomly), made in a few seconds."""
    from facefilter.cli.main import main

    code = main(
        ["train", "cyclegan-lite", "--data-a", f"synth:photo?count={count}", "--data-b",
         f"synth:anime?count={count}", "--size", str(size), "--batch-size", "2", "--max-steps", "2",
         "--num-workers", "0", "--no-progress", "--out", str(out), *TINY_CYCLEGAN]
    )  # fmt: skip
    assert code == 0
    return out


def tiny_classifier_run(
    out: Path, size: int = 32, steps: int = 30, count: int = 40, batch: int = 8,
    extra: tuple[str, ...] = (),
) -> Path:  # fmt: skip
    """A tiny attribute classifier trained a few steps on synthetic photo and anime faces:
    attributes and a style head, made in a few seconds (it tells little yet)."""
    from facefilter.cli.main import main

    code = main(
        ["train", "classifier", "--data", f"synth:photo,anime?count={count}", "--size",
         str(size), "--channels", "8", "16", "32", "--batch-size", str(batch), "--max-steps",
         str(steps), "--num-workers", "0", "--no-progress", "--out", str(out), *extra]
    )  # fmt: skip
    assert code == 0
    return out
