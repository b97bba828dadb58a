"""A hostile pass over every command: bad numbers, specs, files, runs and outputs, each
run as a user would (a fresh process), and sorted into what held and what did not.

    python benchmarks/hostile_pass.py [--only SUBSTRING] [--keep DIR]

A case is BAD when it ends in an internal error or a traceback, in exit 0 where a
refusal is due, in more than a minute of work, in more than one error line, or when it
changes a file it must not touch (the fixtures are checksummed around every case).
Prints one line per bad case and the counts; exit status 1 when any case is bad.
Takes about 10 minutes on 2 CPU cores (each case starts Python and torch).
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

FACEFILTER = [sys.executable, "-m", "facefilter"]
LIMIT_S = 60
MEMORY = 6 * 2**30  # address space per case: a request that grows past it is unbounded
TINY = ["--size", "32", "--batch-size", "2", "--num-workers", "0", "--no-progress"]
GAN = ["--ngf", "8", "--ndf", "8", "--n-blocks", "1"]


def run(args: list[str], cwd: Path) -> tuple[int, str, str, float]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))

    began = time.monotonic()
    try:
        done = subprocess.run([*FACEFILTER, *args], cwd=cwd, capture_output=True, text=True,
                              timeout=LIMIT_S * 2, preexec_fn=limit)  # fmt: skip
        return done.returncode, done.stdout, done.stderr, time.monotonic() - began
    except subprocess.TimeoutExpired:
        return -1, "", "timed out", time.monotonic() - began


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def odd_images(folder: Path) -> None:
    """Files that are images in name only, or images of unusual kinds."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    face = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    (folder / "zero.png").write_bytes(b"")
    Image.fromarray(face).save(folder / "whole.png")
    (folder / "truncated.png").write_bytes((folder / "whole.png").read_bytes()[:200])
    (folder / "text.png").write_text("not an image\n")
    Image.fromarray(face[:1, :1]).save(folder / "one.png")
    Image.fromarray(face[..., 0].astype(np.uint16) * 257).save(folder / "sixteen.png")
    Image.fromarray(face).convert("CMYK").save(folder / "cmyk.jpg")
    frames = [Image.fromarray(np.roll(face, i, axis=1)) for i in range(3)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(face).convert("P").save(folder / "palette.png", transparency=0)
    (folder / "whole.png").unlink()


def fixtures(root: Path) -> dict[str, str]:
    """Tiny runs of each kind, an export, faces and odd images; returns their paths."""
    steps = [
        ["data", "synth", "--out", "faces", "--count", "20", "--size", "32", "--styles", "photo"],
        ["train", "cyclegan-lite", "--data-a", "synth:photo?count=8", "--data-b",
         "synth:anime?count=8", "--max-steps", "2", *TINY, *GAN, "--out", "gan"],
        ["train", "dcae", "--data", "synth:photo?count=40", "--max-steps", "2", *TINY,
         "--batch-size", "4", "--channels", "8", "--latent-dim", "8", "--out", "dcae"],
        ["train", "classifier", "--data", "synth:photo,anime?count=16", "--max-steps", "2",
         *TINY, "--batch-size", "4", "--channels", "8", "16", "--out", "judge"],
        ["export", "gan", "-o", "exp"],
        ["export", "gan", "-o", "one.onnx", "--to", "anime"],
    ]  # fmt: skip
    for args in steps:
        code, _, err, _ = run(args, root)
        assert code == 0, (args, err)
    odd_images(root / "odd")
    (root / "empty").mkdir()
    (root / "notes.txt").write_text("hello\n")
    return {"face": "faces/photo/000001.png", "faces": "faces/photo"}


def cases() -> list[tuple[str, list[str]]]:
    """(expected: refuse | ok | partial, argv) for every command."""
    train = ["train", "cyclegan-lite", "--data-a", "synth:photo?count=8", "--data-b",
             "synth:anime?count=8", "--max-steps", "2", *TINY, *GAN, "--out", "out/t"]  # fmt: skip
    refuse: list[list[str]] = []
    for flag in (
        "lr",
        "beta1",
        "beta2",
        "lambda-cycle",
        "lambda-identity",
        "input-noise",
        "ema-decay",
        "decay-start",
        "color-jitter",
        "randomize",
        "epochs",
        "train-time",
    ):
        refuse += [[*train, f"--{flag}", "nan"], [*train, f"--{flag}", "-1"]]  # fmt: skip
    refuse += [[*train, *pair] for pair in (
        ("--lr", "0"), ("--lr", "1e30"), ("--beta1", "2"), ("--decay-start", "5"),
        ("--ema-decay", "1.5"), ("--max-steps", "0"), ("--batch-size", "0"),
        ("--batch-size", "1000000000"), ("--num-workers", "-1"), ("--load-size", "20000"),
        ("--load-size", "8"), ("--size", "100000"), ("--size", "0"), ("--size", "abc"),
        ("--size", "32x"), ("--ngf", "0"), ("--ngf", "100000"), ("--n-blocks", "100000"),
        ("--ndf", "100000"), ("--pool-size", "-1"), ("--keep-checkpoints", "-1"),
        ("--save-every", "0"), ("--eval-every", "-1"), ("--stop-at", "0"),
        ("--mixed-precision", "fp16"), ("--out", "notes.txt"),
        ("--data-a", "foo:x"), ("--data-a", "synth:nostyle"), ("--data-a", "synth:photo?count=abc"),
        ("--data-a", "synth:photo?count=-1"), ("--data-a", "synth:photo?where=Nope"),
        ("--data-a", "synth:photo?set=Male:5"), ("--data-a", "synth:photo?bogus=1"),
        ("--data-a", "folder:/nonexistent"), ("--data-a", "folder:empty"),
        ("--data-a", "celeba:/nonexistent"),
        ("--data-a", "synth:photo?count=100000000"),
    )]  # fmt: skip
    one_set = ["--max-steps", "2", *TINY, "--out", "out/o"]
    # each other family with its data, and the settings it must refuse
    families = {
        ("trvae", "--data", "synth:photo,anime?count=8"): (
            ("--gamma", "nan"), ("--gamma", "-1"), ("--beta", "-1"), ("--lr", "inf")),
        ("dcae", "--data", "synth:photo?count=8"): (
            ("--kl-weight", "nan"), ("--latent-dim", "0"), ("--channels", "0"),
            ("--vgg-weights", "missing.pth"), ("--vgg-weights", "notes.txt"),
            ("--vector-count", "0"), ("--edit-focus", "2"), ("--channels", "100000")),
        ("classifier", "--data", "synth:photo,anime?count=8"): (
            ("--camera", "2"), ("--scrambled", "nan"), ("--style-weight", "-1")),
        ("makeover", "--data-a", "synth:photo?where=Male&count=40", "--data-b",
         "synth:photo?where=-Male&count=40"): (
            ("--gp-weight", "nan"), ("--pixel-loss-min", "2"), ("--lr-start", "-1")),
    }  # fmt: skip
    refuse += [["train", *family, *one_set, *pair] for family, pairs in families.items()
               for pair in pairs]  # fmt: skip
    refuse += [["train", "cyclegan-lite", "--out", "out/none", "--resume"],
               ["train", "cyclegan-lite", "--out", "gan", "--resume", "--ngf", "16"]]  # fmt: skip
    apply = ["apply", "gan", "{face}", "--to", "anime", "-o", "out/a.png"]
    refuse += [[*apply, *extra] for extra in (
        ("--strength", "11"), ("--strength", "-1"), ("--strength", "nan"), ("--to", "nope"),
        ("--detect-every", "0"), ("--device", "banana"), ("--feather", "nan"),
        ("--feather", "-1"), ("--feather", "100"), ("--margin", "5"), ("--eye-height", "0"),
        ("--sheet", "out/x.txt"), ("--engine", "tpu"),
    )]  # fmt: skip
    refuse += [
        ["apply", "missing", "{face}", "--to", "anime"], ["apply", "notes.txt", "{face}"],
        ["apply", "empty", "{face}"], ["apply", "gan", "nope.png", "--to", "anime"],
        ["apply", "gan", "empty", "--to", "anime", "-o", "out/e"],
        ["apply", "gan", "odd/zero.png", "--to", "anime", "-o", "out/z.png"],
        ["apply", "gan", "odd/text.png", "--to", "anime", "-o", "out/t.png"],
        ["apply", "gan", "odd/truncated.png", "--to", "anime", "-o", "out/tr.png"],
        ["apply", "gan", "{face}", "--to", "anime", "-o", "{face}"],
        ["apply", "gan", "{faces}", "--to", "anime", "-o", "{faces}/out"],
        ["apply", "exp", "{face}", "--to", "anime", "--edit-focus", "0.5", "--engine", "onnx"],
        ["apply", "exp", "{face}", "--to", "anime"],
        ["apply", "dcae", "{face}", "--edit", "+Nope"],
        ["export", "gan", "-o", "gan"], ["export", "gan", "-o", "gan/x.onnx", "--to", "anime"],
        ["export", "gan", "-o", "two.onnx"], ["export", "gan", "-o", "out/e", "--to", "nope"],
        ["export", "gan", "-o", "faces"], ["export", "exp", "-o", "out/again"],
        ["export", "judge", "-o", "out/j"],
        ["eval", "gan", "--to", "anime", "--count", "0"],
        ["eval", "gan", "--to", "anime", "--count", "-1"],
        ["eval", "gan", "--to", "anime", "--strength", "nan"],
        ["eval", "gan", "--to", "anime", "--classifier", "missing"],
        ["eval", "gan", "--to", "anime", "--inception-weights", "notes.txt"],
        ["eval", "gan", "--to", "anime", "--lpips-weights", "notes.txt"],
        ["eval", "gan", "--to", "anime", "--data", "folder:faces/photo", "-o", "faces/photo/e"],
        ["eval", "judge", "--to", "anime"],
        ["grid", "dcae", "--faces", "0", "-o", "out/g.png"],
        ["grid", "dcae", "--faces", "1000000000", "-o", "out/g.png"],
        ["grid", "dcae", "--enlarge", "0", "-o", "out/g.png"],
        ["grid", "dcae", "--enlarge", "1000", "-o", "out/g.png"],
        ["grid", "dcae", "--strength", "11", "-o", "out/g.png"],
        ["grid", "dcae", "--attributes", "Nope", "-o", "out/g.png"],
        ["grid", "dcae", "-o", "out/g.txt"], ["grid", "gan", "-o", "out/g.png"],
        ["lerp", "dcae", "{face}", "--edit", "+Smiling", "--frames", "1", "-o", "out/l.gif"],
        ["lerp", "dcae", "{face}", "--edit", "+Smiling", "--frames", "100000", "-o", "out/l.gif"],
        ["lerp", "dcae", "{face}", "--edit", "+Smiling", "--seconds", "nan", "-o", "out/l.gif"],
        ["lerp", "dcae", "{face}", "--edit", "+Smiling", "--seconds", "1e9", "-o", "out/l.gif"],
        ["lerp", "dcae", "{face}", "--edit", "+Smiling", "--enlarge", "1000", "-o", "out/l.gif"],
        ["lerp", "dcae", "{face}", "{face}", "{face}", "-o", "out/l.gif"],
        ["lerp", "dcae", "{face}", "--edit", "+Nope", "-o", "out/l.gif"],
        ["lerp", "dcae", "{face}", "--edit", "+Smiling", "-o", "out/l.png"],
        ["vectors", "gan"], ["vectors", "dcae", "--count", "0"], ["vectors", "dcae@step-1"],
        ["vectors", "dcae", "--attributes", "Nope"], ["vectors", "dcae", "--data", "foo:x"],
        ["data", "synth", "--out", "out/s", "--count", "0"],
        ["data", "synth", "--out", "out/s", "--count", "3000000000"],
        ["data", "synth", "--out", "out/s", "--size", "100000"],
        ["data", "synth", "--out", "out/s", "--styles", ""],
        ["data", "synth", "--out", "out/s", "--styles", "bogus"],
        ["data", "synth", "--out", "out/s", "--set", "Bad=1"],
        ["data", "synth", "--out", "out/s", "--set", "Male=5"],
        ["data", "synth", "--out", "notes.txt"], ["data", "synth", "--out", "odd"],
        ["data", "preview", "--size", "100000"], ["data", "preview", "--out", "out/p.txt"],
        ["data", "crop", "missing", "out/c"], ["data", "crop", "notes.txt", "out/c"],
        ["data", "crop", "faces", "faces/inside"], ["data", "crop", "odd", "out/c"],
        ["data", "crop", "faces", "out/c", "--size", "100000"],
        ["data", "crop", "faces", "out/c", "--margin", "nan"],
        ["data", "crop", "faces", "odd"],
        ["data", "report", "foo:x"], ["data", "report", "synth:photo", "--limit", "0"],
        ["data", "report", "synth:photo", "--out", "out/r.txt"],
        ["data", "label", "folder:faces/photo", "--classifier", "missing"],
        ["data", "label", "folder:faces/photo", "--classifier", "judge", "--threshold", "1"],
        ["data", "label", "folder:faces/photo", "--classifier", "judge", "--threshold", "nan"],
        ["data", "label", "folder:faces/photo", "--classifier", "judge", "--size", "100000"],
        ["data", "label", "folder:faces/photo", "--classifier", "judge", "-o", "faces/photo/l"],
        ["data", "label", "folder:faces/photo", "--classifier", "judge", "-o", "odd"],
        ["data", "sample-photo", "--which", "bogus"], ["data", "sample-photo", "-o", "odd"],
        ["data", "sample-photo", "-o", "out/x.txt"], ["data", "sample-photo", "-o", "out/noname"],
        ["data", "sample-photo", "--which", "lfw", "-o", "notes.txt"],
        ["demo", "gan", "--port", "0"], ["demo", "gan", "--port", "70000"],
        ["demo", "gan", "--max-upload-mb", "-1"], ["demo", "gan", "--max-upload-mb", "nan"],
        ["demo", "missing"],
    ]  # fmt: skip
    ok = [
        ["apply", "exp", "{face}", "--to", "anime", "--engine", "onnx", "-o", "out/x.png"],
        ["apply", "one.onnx", "{face}", "--to", "anime", "--engine", "onnx", "-o", "out/y.png"],
        ["export", "gan", "-o", "out/exp2"], ["grid", "dcae", "-o", "out/g.png"],
        ["data", "synth", "--out", "out/s2", "--count", "2", "--size", "32", "--styles", "photo"],
        ["data", "sample-photo", "-o", "out/astronaut.jpg"],
    ]  # fmt: skip
    # folders with broken files: the good ones filtered (exit 1) or trained on, with a warning
    partial = [
        ["apply", "gan", "odd", "--to", "anime", "-o", "out/odd"],
        [*train[:3], "folder:odd", *train[4:]],
    ]
    expected = [("refuse", args) for args in refuse] + [("ok", args) for args in ok]
    return expected + [("partial", args) for args in partial]


def verdict(expected: str, code: int, err: str, seconds: float) -> str | None:
    """Why a case is bad, or None."""
    if code == -1 or seconds > LIMIT_S:
        return f"took {seconds:.0f} s"
    if "internal error" in err or "Traceback" in err:
        return "internal error"
    if code not in (0, 1, 2):
        return f"exit {code} (killed? memory?)"
    errors = [line for line in err.splitlines() if line.startswith("facefilter: error")]
    if expected == "refuse" and code == 0:
        return "exit 0 where a refusal is due"
    if expected == "ok" and code != 0:
        return f"exit {code} where it should work"
    if expected == "partial" and code not in (0, 1):
        return f"exit {code} where the good files should be filtered"
    parser = code == 2 and "For full helptext" in err  # the parser's own framed message
    if code == 2 and not parser and (len(errors) != 1 or len(errors[0]) > 400):
        return "not one error line"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose command has this")
    parser.add_argument("--keep", type=Path, help="build the fixtures here and keep them")
    options = parser.parse_args()
    root = options.keep or Path(tempfile.mkdtemp(prefix="hostile-"))
    root.mkdir(parents=True, exist_ok=True)
    names = fixtures(root) if not (root / "gan").is_dir() else {
        "face": "faces/photo/000001.png", "faces": "faces/photo"}  # fmt: skip
    bad, tried = [], 0
    for expected, args in cases():
        args = [a.format(**names) for a in args]
        if options.only not in " ".join(args):
            continue
        tried += 1
        before = {k: v for k, v in digest(root).items() if not k.startswith("out/")}
        code, _, err, seconds = run(args, root)
        after = {k: v for k, v in digest(root).items() if not k.startswith("out/")}
        why = verdict(expected, code, err, seconds)
        if why is None and after != before:
            why = f"changed {sorted(set(before.items()) ^ set(after.items()))[0][0]}"
        shutil.rmtree(root / "out", ignore_errors=True)
        if why is not None:
            bad.append(why)
            print(f"BAD ({why}): facefilter {' '.join(args)}\n    {err.strip()[-300:]}")
    print(f"{tried} case(s), {tried - len(bad)} held, {len(bad)} bad")
    if options.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
