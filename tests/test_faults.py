"""Fault injection: a full disk, kill -9 in a save, two writers, outputs over inputs and
broken files. Each case checks the one-line message, the exit code, and that every good
file from before is byte-identical afterwards.

A real full disk is a small tmpfs mounted in a private mount namespace (`unshare -m`,
where the machine lets the test do that); elsewhere the same cases run with an injected
`OSError(ENOSPC)`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TRAIN, apply_cmd, digest, one_line, start, wait_for
from facefilter import safe_io
from facefilter.cli.main import main
from facefilter.inference.onnx import export_module
from facefilter.runs import checkpoint


# --- outputs over inputs ------------------------------------------------------------------
def test_apply_refuses_to_write_over_its_input(world, capsys):
    photo, dark = world["photo"], world["dark"]
    before = digest(photo) | digest(dark)
    cases = [
        ([str(photo), "-o", str(photo)], "is the input"),
        ([str(dark), "-o", str(dark)], "is the input"),
        ([str(dark), "-o", str(dark.parent)], "holds the input folder"),
        ([str(photo), "--sheet", str(photo), "-o", str(world["root"] / "x.png")], "--sheet"),
    ]
    for args, message in cases:
        code = main(["apply", str(world["run"]), *args, "--to", "light", "--detect", "never"])
        assert code == 2 and message in one_line(capsys)
    assert digest(photo) | digest(dark) == before


def test_train_refuses_an_out_inside_its_data(world, capsys):
    out = world["dark"] / "run"
    before = digest(world["dark"])
    code = main(
        [*TRAIN, "--data-a", str(world["dark"]), "--data-b", str(world["light"]), "--out", str(out)]
    )
    assert code == 2 and "lies inside the input folder" in one_line(capsys)
    assert digest(world["dark"]) == before and not out.exists()


class FixedSize(torch.nn.Module):
    """A translator that only takes 16 px images (a linear layer fixes the size)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3 * 16 * 16, 3 * 16 * 16)

    def forward(self, image: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        flat = self.linear(image.flatten(1)) * strength[:, None]
        return flat.view(-1, 3, 16, 16)


# --- exports ------------------------------------------------------------------------------
def test_an_export_applied_in_the_wrong_direction_is_one_line(world, capsys):
    args = apply_cmd(world["export"], world["photo"], world["root"] / "wrong.png", "--engine",
                     "onnx")  # fmt: skip
    assert main([*args, "--to", "dark"]) == 2
    assert "unknown target 'dark'; this model offers light" in one_line(capsys)


def test_broken_onnx_files_are_one_line(world, tmp_path, capsys):
    empty = tmp_path / "empty.onnx"
    empty.touch()
    shutil.copy(world["export"].with_suffix(".json"), empty.with_suffix(".json"))
    other = tmp_path / "other.onnx"  # a 16 px graph paired with the 32 px run's config
    export_module(FixedSize(), other, 16)
    shutil.copy(world["export"].with_suffix(".json"), other.with_suffix(".json"))
    wrong = tmp_path / "wrong.onnx"  # a graph exported for the other direction
    assert main(["export", str(world["run"]), "-o", str(wrong), "--to", "dark"]) == 0
    capsys.readouterr()
    wrong.with_suffix(".json").write_text(world["export"].with_suffix(".json").read_text())
    expected = {
        empty: "is not a loadable ONNX model",
        other: "takes images shaped",
        wrong: "graph towards dark, but its config says cyclegan-lite towards light",
    }
    for graph, message in expected.items():
        code = main(apply_cmd(graph, world["photo"], tmp_path / "out.png", "--engine", "onnx"))
        assert code == 2 and message in one_line(capsys), graph
    assert not (tmp_path / "out.png").exists()


# --- a full disk --------------------------------------------------------------------------
def can_mount() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"], capture_output=True
    )
    return probe.returncode == 0


FULL_DISK = """
set -u
mount -t tmpfs -o size=2m tmpfs "$DISK"
cp "$PHOTO" "$DISK/out.png"
mkdir "$DISK/export" && cp "$EXPORT" "$EXPORT_JSON" "$DISK/export/"
cp -r "$RUN" "$DISK/run"
sha256sum "$DISK/out.png" "$DISK/export/"* $(find "$DISK/run" -type f | sort) > "$DISK/../before"
head -c 100000000 /dev/zero > "$DISK/fill" 2>/dev/null
ff() { "$PY" -c "from facefilter.console import run; run()" "$@"; }
ff apply "$RUN" "$PHOTO" --to light --detect never -o "$DISK/out.png"; echo "apply=$?"
ff export "$RUN" -o "$DISK/export/light.onnx" --to light; echo "export=$?"
ff train cyclegan-lite --out "$DISK/run" --resume --max-steps 4 --save-every 1; echo "train=$?"
sha256sum -c --quiet "$DISK/../before" && echo same
ls -A "$DISK" "$DISK/export" "$DISK/run"
mkdir "$DISK/../ro" && mount -t tmpfs -o ro,size=1m tmpfs "$DISK/../ro"
ff apply "$RUN" "$PHOTO" --to light --detect never -o "$DISK/../ro/out.png"; echo "ro-apply=$?"
ff export "$RUN" -o "$DISK/../ro/export"; echo "ro-export=$?"
"""


@pytest.mark.skipif(not can_mount(), reason="needs root and unshare -m for a small tmpfs")
def test_a_real_full_disk_keeps_every_good_file(world, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {
        **os.environ,
        "DISK": str(disk),
        "PHOTO": str(world["photo"]),
        "RUN": str(world["run"]),
        "EXPORT": str(world["export"]),
        "EXPORT_JSON": str(world["export"].with_suffix(".json")),
        "PY": sys.executable,
    }
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", FULL_DISK],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out, err = done.stdout, done.stderr
    assert "apply=2" in out and "export=2" in out and "train=2" in out, (out, err)
    assert "same" in out, (out, err)  # every good file byte-identical
    assert ".tmp" not in out and "state.tmp" not in out, out  # no temporary left behind
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("facefilter: error:")]
    assert len(lines) == 5, err
    assert all("no space left on" in line and " MB" in line for line in lines[:3]), err
    assert "ro-apply=2" in out and "ro-export=2" in out, out
    assert all("read-only file system; choose a writable place" in line for line in lines[3:])


def test_an_injected_full_disk_keeps_every_good_file(world, tmp_path, monkeypatch, capsys):
    """The same cases where no tmpfs can be mounted: every rename into place fails."""
    out = tmp_path / "out.png"
    shutil.copy(world["photo"], out)
    folder = tmp_path / "export"
    assert main(["export", str(world["run"]), "-o", str(folder)]) == 0
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    before = digest(out) | digest(folder) | digest(run)
    capsys.readouterr()

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safe_io.os, "replace", full)
    monkeypatch.setattr(checkpoint.os, "replace", full)
    apply = apply_cmd(world["run"], world["photo"], out)
    for args in (
        apply,
        ["export", str(world["run"]), "-o", str(folder)],
        ["train", "cyclegan-lite", "--out", str(run), "--resume", "--max-steps", "3"],
    ):
        assert main(args) == 2, args
        assert "no space left on" in one_line(capsys)
    monkeypatch.undo()
    assert digest(out) | digest(folder) | digest(run) == before
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert not leftovers


# --- kill -9 during a save -----------------------------------------------------------------
KILL_IN_SAVE = """
import os, signal, sys
from facefilter.runs import checkpoint
real, calls = checkpoint.save_state, [0]
def dying(run, family, step):
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AT_SAVE"]):
        (run / "state.tmp").mkdir(parents=True, exist_ok=True)
        (run / "state.tmp" / "networks.safetensors").write_bytes(b"half")
        os.kill(os.getpid(), signal.SIGKILL)
    real(run, family, step)
checkpoint.save_state = dying
from facefilter.cli.main import main
from facefilter.inference.onnx import export_module
sys.exit(main(sys.argv[1:]))
"""


def killed_run(world, out: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    args = [
        *TRAIN,
        "--data-a",
        str(world["dark"]),
        "--data-b",
        str(world["light"]),
        "--max-steps",
        "6",
        "--save-every",
        "2",
        "--out",
        str(out),
    ]
    env = {**os.environ, "KILL_AT_SAVE": str(kill_at)}
    return subprocess.run(
        [sys.executable, "-c", KILL_IN_SAVE, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_kill_during_the_first_save_is_no_dead_end(world, tmp_path, capsys):
    out = tmp_path / "run"
    assert killed_run(world, out, kill_at=1).returncode == -signal.SIGKILL
    assert (out / "config.json").is_file() and checkpoint.saved_step(out) is None
    data = ["--data-a", str(world["dark"]), "--data-b", str(world["light"])]
    assert main([*TRAIN, *data, "--max-steps", "6", "--out", str(out)]) == 2
    assert "stopped before its first checkpoint); pass --resume" in one_line(capsys)
    assert main(["train", "cyclegan-lite", "--out", str(out), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "no complete checkpoint" in printed and "starting it again from step 0" in printed
    assert checkpoint.saved_step(out) == 6 and not (out / "state.tmp").exists()


def test_kill_during_a_later_save_resumes_from_the_last_good_one(world, tmp_path, capsys):
    out = tmp_path / "run"
    assert killed_run(world, out, kill_at=2).returncode == -signal.SIGKILL
    assert checkpoint.saved_step(out) == 2
    before = digest(out / "model.safetensors")
    assert main(apply_cmd(out, world["photo"], tmp_path / "a.png")) == 0
    assert digest(out / "model.safetensors") == before
    assert main(["train", "cyclegan-lite", "--out", str(out), "--resume"]) == 0
    assert checkpoint.saved_step(out) == 6


# --- two writers ----------------------------------------------------------------------------
def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(world, tmp_path, capsys):
    out = tmp_path / "run"
    data = ["--data-a", str(world["dark"]), "--data-b", str(world["light"])]
    first = start([*TRAIN, *data, "--max-steps", "100000", "--out", str(out)])
    try:
        wait_for(out / "metrics.jsonl")
        assert main([*TRAIN, *data, "--out", str(out), "--resume"]) == 2
        line = one_line(capsys)
        assert (
            f"is being written by another facefilter train (host {os.uname().nodename}, "
            f"process {first.pid})" in line
        )
        first.send_signal(signal.SIGINT)  # the first writer stops, saves, frees the lock
        _, err = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 130 and "Traceback" not in err
    assert not (out / ".lock").exists()
    # a lock file left by a process that died: its pid may live on in another process
    # (containers reuse pids), but nothing holds the file, so it is taken over
    (out / ".lock").write_text(json.dumps({"host": os.uname().nodename, "pid": os.getppid()}))
    step = checkpoint.saved_step(out)
    assert (
        main(
            ["train", "cyclegan-lite", "--out", str(out), "--resume", "--max-steps", str(step + 1)]
        )
        == 0
    )
    assert "taking over" in capsys.readouterr().out
    assert not (out / ".lock").exists()


# --- Ctrl-C, pipes, bugs -------------------------------------------------------------------
def test_ctrl_c_while_starting_and_a_second_ctrl_c_are_one_line(world, tmp_path):
    data = [*TRAIN, "--data-a", str(world["dark"]), "--data-b", str(world["light"])]
    for name in ("imports", "start-up"):
        out = tmp_path / name
        proc = start([*data, "--out", str(out)])
        if name == "imports":
            time.sleep(0.3)
        else:
            wait_for(out / ".lock")  # imports done, the run is being set up
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "Traceback" not in err, err
        assert not (out / ".lock").exists()
    out = tmp_path / "twice"
    proc = start([*data, "--max-steps", "100000", "--out", str(out)])
    wait_for(out / "metrics.jsonl")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.01)
    proc.send_signal(signal.SIGINT)  # aborts the save, or comes once the run has ended
    printed, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "interrupted" in err or "stopped at step" in printed
    assert not (out / ".lock").exists() and not (out / "state.tmp").exists()


def test_help_into_a_closed_pipe_is_quiet():
    command = (
        f"{sys.executable} -c 'from facefilter.console import run; run()' "
        "train cyclegan --help | head -1"
    )
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("usage:") and "Traceback" not in done.stderr, done.stderr


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    from facefilter.cli import main as cli

    def broken(args: list[str]) -> int:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "dispatch", broken)
    assert main(["apply"]) == 1
    line = one_line(capsys)
    assert "internal error (ZeroDivisionError at test_faults.py" in line and "--debug" in line
    with pytest.raises(ZeroDivisionError):
        main(["apply", "--debug"])

    def ctrl_c(args: list[str]) -> int:
        raise KeyboardInterrupt  # what a second Ctrl-C raises inside training

    monkeypatch.setattr(cli, "dispatch", ctrl_c)
    assert main(["train"]) == 130
    assert "interrupted; files already written are whole" in capsys.readouterr().err


# --- broken runs and bad values -------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["model"].update(ngf="eight"),
            "model setting 'ngf' is 'eight', not of type int",
        ),
        (lambda c: c.update(domains=5), "'domains' has the wrong shape"),
        (lambda c: c.pop("domains"), "lacks a required key"),
        (lambda c: c["model"].update(norm=3), "model setting 'norm' is 3"),
        (lambda c: c.update(image_size="big"), "image size 'big' is not a size"),
    ],
)
def test_a_damaged_config_is_one_line(world, tmp_path, capsys, change, message):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    config = json.loads((run / "config.json").read_text())
    change(config)
    (run / "config.json").write_text(json.dumps(config))
    for args in (
        ["apply", str(run), str(world["photo"]), "--to", "light", "-o", str(tmp_path / "o.png")],
        ["export", str(run), "-o", str(tmp_path / "e")],
        ["train", "cyclegan-lite", "--out", str(run), "--resume", "--max-steps", "3"],
    ):
        assert main(args) == 2
        assert message in one_line(capsys)


@pytest.mark.parametrize(
    "name", ["networks.safetensors", "extra.safetensors", "optimizer-gen.pt", "trainer.json"]
)
def test_a_damaged_checkpoint_is_one_line(world, tmp_path, capsys, name):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    (run / "state" / name).write_bytes(b"\x00junk{")
    before = digest(run)
    assert main(["train", "cyclegan-lite", "--out", str(run), "--resume", "--max-steps", "3"]) == 2
    assert f"{name} is damaged" in one_line(capsys)
    assert digest(run) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "4"], "--size 4 is too small for the discriminator's"),
        (["--size", "8"], "--size 8 is too small for the discriminator's"),
        (["--out", "{photo}"], "is a file; choose a directory"),
    ],
)
def test_bad_training_values_are_one_line(world, tmp_path, capsys, args, message):
    args = [a.format(photo=world["photo"]) for a in args]
    out = [] if "--out" in args else ["--out", str(tmp_path / "run")]
    assert (
        main([*TRAIN, "--data-a", str(world["dark"]), "--data-b", str(world["light"]), *out, *args])
        == 2
    )
    assert message in one_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "banana"], "--device 'banana' is not a device"),
        (["-o", "{photo}/x.png"], "{photo} is a file where a folder is needed"),
    ],
)
def test_bad_apply_values_are_one_line(world, capsys, args, message):
    args = [a.format(photo=world["photo"]) for a in args]
    out = "/tmp/unused.png" if "-o" not in args else args[args.index("-o") + 1]
    code = main(
        apply_cmd(world["run"], world["photo"], out, *(a for a in args if a != out and a != "-o"))
    )
    assert code == 2
    assert message.format(photo=world["photo"]) in one_line(capsys)
