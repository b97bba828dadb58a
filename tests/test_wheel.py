"""The package as users install it: `python -m build` makes an sdist and, from it, a
wheel; the wheel goes into a fresh virtual environment and works there, with no
editable install and no repository on the path.

Offline and quick: the fresh environment borrows the project's installed dependencies
(torch, dlib, ...) through a path entry, which adds their folder to `sys.path` without
running the `.pth` files in it, so the editable facefilter there stays invisible; pip
installs facefilter from the wheel alone (`--no-index`) and checks that the wheel's
declared dependencies are met by what it sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import TINY_CYCLEGAN

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("build")
pytest.importorskip("hatchling")


def run(args: list[str | Path], cwd: Path, timeout: float = 180) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(list(map(str, args)), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    # sdist first, then the wheel from the unpacked sdist: a file the sdist forgets fails here
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, ROOT], cwd=dist)
    (found,) = dist.glob("facefilter-*.whl")
    assert len(list(dist.glob("facefilter-*.tar.gz"))) == 1
    return found


@pytest.fixture(scope="module")
def fresh(wheel, tmp_path_factory) -> Path:
    """A new venv holding facefilter from the wheel; its python."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv)
    python = venv / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                  cwd=venv).strip()  # fmt: skip
    Path(purelib, "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-index", "--quiet",
         wheel], cwd=venv)  # fmt: skip
    return python


def test_the_wheel_holds_the_package_and_no_tests(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "runs/"))]
    modules = {p.relative_to(ROOT / "src").as_posix() for p in (ROOT / "src").rglob("*.py")}
    assert modules <= set(names), sorted(modules - set(names))


def test_the_installed_wheel_trains_and_applies(fresh, tmp_path):
    """`facefilter --version`, a 3-step train and an apply on a real photo, run by the
    fresh environment's console script from a folder outside the repository."""
    bin_dir = fresh.parent
    where = run([fresh, "-c", "import facefilter, sys; print(facefilter.__file__); "
                 "print(sys.argv[1] in sys.path or sys.argv[2] in sys.path)", ROOT, ROOT / "src"],
                cwd=tmp_path)  # fmt: skip
    location, repository_on_path = where.split()
    assert Path(location).is_relative_to(fresh.parent.parent) and repository_on_path == "False"
    version = run([bin_dir / "facefilter", "--version"], cwd=tmp_path)
    assert version.startswith("facefilter ") and "torch" in version and "face " in version
    run([bin_dir / "facefilter", "train", "cyclegan-lite", "--data-a", "synth:photo?count=8",
         "--data-b", "synth:anime?count=8", "--size", "32", "--batch-size", "2", "--max-steps",
         "3", "--num-workers", "0", "--no-progress", "--out", "run", *TINY_CYCLEGAN],
        cwd=tmp_path)  # fmt: skip
    run([bin_dir / "facefilter", "data", "sample-photo", "-o", "astronaut.png"], cwd=tmp_path)
    said = run([bin_dir / "facefilter", "apply", "run", "astronaut.png", "--to", "anime", "-o",
                "anime.png"], cwd=tmp_path)  # fmt: skip
    assert (tmp_path / "anime.png").stat().st_size > 0, said
