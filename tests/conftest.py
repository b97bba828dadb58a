"""Shared fixtures: tiny image folders and tiny model settings, all made on the fly."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
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


# --- a trained tiny run and the helpers of the fault tests (test_faults, test_hostile) ----
FACEFILTER = [sys.executable, "-c", "from facefilter.console import run; run()"]
TRAIN = [
    "train",
    "cyclegan-lite",
    "--size",
    "32",
    "--batch-size",
    "2",
    "--num-workers",
    "0",
    "--no-progress",
    *TINY_CYCLEGAN,
]


def digest(path: Path) -> dict[str, str]:
    """Checksums of a file, or of every file under a folder."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {
        str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
    }


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def apply_cmd(source: object, photo: object, out: object, *extra: str) -> list[str]:
    """`facefilter apply` on a ready face crop towards `light`."""
    return ["apply", str(source), str(photo), "--to", "light", "--detect", "never", "-o",
            str(out), *extra]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A trained tiny run, its data, a photo, and a single-file export towards `light`."""
    from facefilter.cli.main import main

    root = tmp_path_factory.mktemp("faults")
    dark = write_images(root / "dark", 4, base=60, seed=1)
    light = write_images(root / "light", 4, base=190, seed=2)
    run = root / "run"
    assert (
        main(
            [
                *TRAIN,
                "--data-a",
                str(dark),
                "--data-b",
                str(light),
                "--max-steps",
                "2",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    photo = root / "photo.png"
    Image.open(dark / "000.png").resize((48, 48)).save(photo)
    assert main(["export", str(run), "-o", str(root / "light.onnx"), "--to", "light"]) == 0
    return {
        "root": root,
        "run": run,
        "dark": dark,
        "light": light,
        "photo": photo,
        "export": root / "light.onnx",
    }


def start(args: list[str]) -> subprocess.Popen[str]:
    """facefilter in a child that takes Ctrl-C as a terminal would deliver it (pytest's
    workers ignore SIGINT, and children would inherit that)."""
    return subprocess.Popen(
        [*FACEFILTER, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), path
