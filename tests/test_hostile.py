"""Hostile inputs, round three: outputs that must not land on what they would destroy,
folders replaced whole or not at all, temporaries of killed processes swept, SIGTERM,
NaN and infinite numbers, a diverging run, and requests too big for the machine, each
refused in one line before any work (exit 2) with every earlier file byte-identical."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TRAIN, apply_cmd, digest, one_line, start, wait_for
from facefilter import safe_io
from facefilter.cli.main import main
from facefilter.inference import onnx
from facefilter.runs import checkpoint
from facefilter.runs.lock import release_lock, take_lock

DCAE = ["train", "dcae", "--size", "32", "--batch-size", "4", "--num-workers", "0",
        "--no-progress", "--channels", "8", "--latent-dim", "8"]  # fmt: skip


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture(scope="module")
def editor(tmp_path_factory) -> Path:
    """A tiny trained dcae with attribute vectors, and its faces folder beside it."""
    root = tmp_path_factory.mktemp("editor")
    assert main(["data", "synth", "--out", str(root / "faces"), "--count", "20", "--size", "32",
                 "--styles", "photo"]) == 0  # fmt: skip
    run = root / "run"
    assert main([*DCAE, "--data", "synth:photo?count=40", "--max-steps", "3", "--out",
                 str(run)]) == 0  # fmt: skip
    return run


# --- outputs over what they must not touch ---------------------------------------------------
@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("{run}", "would write into the run"),
        ("{run}/config.onnx", "would write into the run"),
        ("{root}", "holds the run"),
        ("{dark}", "holds files that are not an export"),
        ("{photo}", "is a file; give a folder"),
    ],
)
def test_export_never_writes_into_a_run_or_over_other_files(world, capsys, output, message):
    output = output.format(**{k: str(v) for k, v in world.items()})
    before = digest(world["root"])
    assert main(["export", str(world["run"]), "-o", output, "--to", "light"]) == 2
    assert message in one_line(capsys)
    assert digest(world["root"]) == before


def test_an_interrupted_export_leaves_the_earlier_one_whole(world, tmp_path, monkeypatch):
    folder = tmp_path / "export"
    assert main(["export", str(world["run"]), "-o", str(folder)]) == 0
    before = digest(folder)
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second graph: Ctrl-C, a kill or a full disk
            raise KeyboardInterrupt
        return 0.0

    monkeypatch.setattr(onnx, "parity", interrupted)
    with pytest.raises(KeyboardInterrupt):
        onnx.export_onnx(world["run"], folder)
    assert digest(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temporary folder


def test_a_graph_from_another_export_is_refused(world, tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        assert main(["export", str(world["run"]), "-o", str(folder)]) == 0
    (second / "to-light.onnx").write_bytes((first / "to-light.onnx").read_bytes())
    assert main([*apply_cmd(second, world["photo"], tmp_path / "o.png"), "--engine", "onnx"]) == 2
    assert "comes from another export than the config beside it" in one_line(capsys)


def test_pictures_never_land_in_their_input_folder(world, editor, capsys):
    dark, faces = world["dark"], editor.parent / "faces" / "photo"
    cases = [
        ["grid", str(editor), str(faces), "-o", str(faces / "000001.png")],
        ["grid", str(editor), "--data", f"folder:{faces}", "-o", str(faces / "grid.png")],
        [*apply_cmd(world["run"], dark, world["root"] / "o"), "--sheet", str(dark / "000.png")],
        apply_cmd(world["run"], dark, dark / "out"),
    ]
    for args in cases:
        before = digest(faces.parent) | digest(dark)
        assert main(args) == 2, args
        assert "inside the input folder" in one_line(capsys)
        assert digest(faces.parent) | digest(dark) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grid", "{editor}", "-o", "{tmp}/grid.txt"], "name a png or jpg or jpeg or webp"),
        (["grid", "{editor}", "-o", "{tmp}"], "is a folder; give a file name"),
        (["lerp", "{editor}", "{face}", "--edit", "+Smiling", "-o", "{tmp}/a.png"], "name a gif"),
        (["data", "sample-photo", "-o", "{tmp}"], "is a folder; give a file name"),
        (["data", "sample-photo", "-o", "{tmp}/x.txt"], "name a png or jpg"),
        (["data", "sample-photo", "-o", "{tmp}/noname"], "name a png or jpg"),
        (["data", "preview", "--out", "{tmp}/p.gif"], "name a png or jpg"),
    ],
)
def test_a_picture_named_as_something_else_is_refused(editor, tmp_path, capsys, args, message):
    face = editor.parent / "faces" / "photo" / "000001.png"
    args = [a.format(editor=editor, tmp=tmp_path, face=face) for a in args]
    assert main(args) == 2
    assert message in one_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_vectors_and_eval_wait_for_the_run_s_writer(editor, capsys):
    lock = editor / ".lock"
    held = take_lock(lock, "train")
    try:
        before = digest(editor)
        for args in (["vectors", str(editor)], ["eval", str(editor), "--to", "+Smiling"]):
            assert main(args) == 2
            assert "is being written by another facefilter train" in one_line(capsys)
        assert digest(editor) == before
    finally:
        release_lock(lock, held)


@pytest.mark.parametrize("missing", ["state/trainer.json", "state"])
def test_resume_of_a_run_with_a_partial_state_is_refused(world, tmp_path, capsys, missing):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    gone = run / missing
    shutil.rmtree(gone) if gone.is_dir() else gone.unlink()
    before = digest(run)
    assert main(["train", "cyclegan-lite", "--out", str(run), "--resume", "--max-steps", "4"]) == 2
    line = one_line(capsys)
    assert "a restart from step 0 would overwrite" in line
    assert ("lacks trainer.json" if missing != "state" else "but no state/") in line
    assert digest(run) == before


# --- folders replaced whole, temporaries swept ------------------------------------------------
def test_data_synth_replaces_an_earlier_set_whole_and_nothing_else(tmp_path, capsys):
    out = tmp_path / "faces"
    synth = ["data", "synth", "--out", str(out), "--size", "32", "--styles", "photo"]
    assert main([*synth, "--count", "6"]) == 0
    assert main([*synth, "--count", "2"]) == 0
    assert sorted(p.name for p in (out / "photo").iterdir()) == ["000001.png", "000002.png"]
    assert (out / "list_attr_celeba.txt").read_text().splitlines()[0] == "2"
    (out / "notes.txt").write_text("mine")
    before = digest(out)
    assert main([*synth, "--count", "3"]) == 2
    assert "holds files that are not a synthetic set" in one_line(capsys)
    assert digest(out) == before


def test_data_synth_on_a_full_disk_keeps_the_earlier_set(tmp_path, capsys, monkeypatch):
    out = tmp_path / "faces"
    synth = ["data", "synth", "--out", str(out), "--size", "32", "--styles", "photo"]
    assert main([*synth, "--count", "4"]) == 0
    before = digest(out)
    real = safe_io.atomic_write
    writes = []

    def full_disk(path, write, durable=False):
        writes.append(path)
        if len(writes) > 3:
            raise safe_io.UserError(safe_io.os_error_message(OSError(errno.ENOSPC, "full"), path))
        real(path, write, durable)

    monkeypatch.setattr(safe_io, "atomic_write", full_disk)
    assert main([*synth, "--count", "300"]) == 2
    assert "no space left on" in one_line(capsys)
    assert digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces"]


def test_temporaries_of_killed_processes_are_swept_at_the_next_start(world, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    pid, mine = dead_pid(), os.getpid()
    left = [run / f".loss.{pid}.tmp.png", run / f".config.{pid}.tmp.json"]
    out = tmp_path / "out"
    out.mkdir()
    left.append(out / f".existing_vid.{pid}.tmp.mp4")
    kept = run / f".other.{mine}.tmp.png"  # a live process's: never touched
    for path in [*left, kept]:
        path.write_bytes(b"partial")
    assert main(["train", "cyclegan-lite", "--out", str(run), "--resume", "--max-steps", "3"]) == 0
    assert main(apply_cmd(world["run"], world["photo"], out / "photo.png")) == 0
    assert not any(path.exists() for path in left)
    assert kept.exists()


# --- signals and a run's last stage ------------------------------------------------------------
def test_sigterm_saves_like_ctrl_c_and_the_writer_holds_the_run(world, tmp_path, capsys):
    out = tmp_path / "run"
    data = ["--data-a", str(world["dark"]), "--data-b", str(world["light"])]
    first = start([*TRAIN, *data, "--max-steps", "100000", "--save-every", "2", "--out", str(out)])
    try:
        wait_for(out / "model.safetensors")
        assert main(["vectors", str(out)]) == 2  # any command that writes into a run waits
        assert "is being written by another facefilter train" in one_line(capsys)
        first.send_signal(signal.SIGTERM)  # what Slurm and Kubernetes send before a kill
        printed, err = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 130 and "Traceback" not in err and "stopping (SIGTERM)" in printed
    assert checkpoint.saved_step(out) is not None


def full_disk_in_the_final_save(monkeypatch) -> None:
    real, calls = checkpoint.save_weights, []

    def save_weights(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the step-2 save, then the final one, after the vectors
            raise safe_io.UserError("no space left on RUN: free 0 MB")
        real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_weights", save_weights)


def ctrl_c_in_the_last_stage(monkeypatch) -> None:
    from facefilter.models.featureae import FeatureAutoencoder

    def killed(self, data):
        raise KeyboardInterrupt  # a second Ctrl-C (or a kill) while the vectors are made

    monkeypatch.setattr(FeatureAutoencoder, "after_training", killed)


@pytest.mark.parametrize(
    ("cut", "code"), [(ctrl_c_in_the_last_stage, 130), (full_disk_in_the_final_save, 2)]
)
def test_a_run_cut_off_in_its_last_stage_is_finished_by_resume(tmp_path, capsys, cut, code):
    run = tmp_path / "run"
    train = [*DCAE, "--data", "synth:photo?count=40", "--max-steps", "2", "--save-every", "2"]
    with pytest.MonkeyPatch.context() as patch:
        cut(patch)
        assert main([*train, "--out", str(run)]) == code
    assert json.loads((run / "config.json").read_text())["train"]["finished"] is False
    assert main(["train", "dcae", "--out", str(run), "--resume"]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["finished"] is True
    capsys.readouterr()
    assert main(["apply", str(run), "--list-targets"]) == 0
    assert "+Smiling" in capsys.readouterr().out  # the vectors the last stage makes
    assert main(["train", "dcae", "--out", str(run), "--resume"]) == 2  # now it is done
    assert "is at step 2 and --max-steps 2 is not past it" in one_line(capsys)


# --- numbers -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flag", "args"),
    [
        ("--lr nan", ["--lr", "nan"]),
        ("--lr inf", ["--lr", "inf"]),
        ("--lambda-cycle nan", ["--lambda-cycle", "nan"]),
        ("--train-time nan", ["--train-time", "nan"]),
        ("--gamma nan", ["train", "trvae", "--data", "synth:photo,anime?count=8", "--gamma", "nan",
                         "--out", "{tmp}/run"]),
        ("--strength nan", ["grid", "{editor}", "--strength", "nan", "-o", "{tmp}/g.png"]),
        ("--strength -inf", ["apply", "{run}", "{photo}", "--to", "light", "--strength", "-inf",
                             "-o", "{tmp}/o.png"]),
    ],
)  # fmt: skip
def test_nan_and_infinity_are_refused_in_every_command(world, editor, tmp_path, capsys, flag, args):
    names = {"editor": editor, "tmp": tmp_path, **world}
    args = [a.format(**names) for a in args]
    if args[0].startswith("--"):  # a training flag, on the tiny CycleGAN
        data = ["--data-a", str(world["dark"]), "--data-b", str(world["light"])]
        args = [*TRAIN, *data, "--out", str(tmp_path / "run"), *args]
    assert main(args) == 2
    assert f"{flag}: give a finite number" in one_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    before = digest(run)
    resume = ["train", "cyclegan-lite", "--out", str(run), "--resume", "--max-steps", "6"]
    assert main([*resume, "--lr", "1e30"]) == 2
    line = one_line(capsys)
    assert "training diverged" in line and "from step 2, whose checkpoint is kept" in line
    after = digest(run)
    assert {k: v for k, v in after.items() if "metrics" not in k and "samples" not in k} == {
        k: v for k, v in before.items() if "metrics" not in k and "samples" not in k
    }


def test_a_text_file_as_weights_is_one_line(editor, tmp_path, capsys):
    weights = tmp_path / "vgg.pth"
    weights.write_text("hello\n")
    args = [*DCAE, "--data", "synth:photo?count=8", "--vgg-weights", str(weights)]
    assert main([*args, "--out", str(tmp_path / "run")]) == 2
    assert f"--vgg-weights {weights} is not a readable weights file" in one_line(capsys)
    assert not (tmp_path / "run").exists()


# --- memory and time: refused from an estimate, before anything is allocated ------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*TRAIN, "--data-a", "synth:photo?count=1000000000000", "--data-b", "synth:anime"],
         "at most 1,000,000 synthetic faces"),
        ([*TRAIN, "--batch-size", "1000000000"], "--batch-size 1000000000 at 32 px needs about"),
        ([*TRAIN, "--load-size", "20000"], "--load-size 20000 is over 2x --size 32"),
        ([*TRAIN, "--ngf", "100000"], "--ngf 100000: at most 1024"),
        ([*TRAIN, "--n-blocks", "100000"], "--n-blocks 100000: at most 64"),
        ([*DCAE, "--data", "synth:photo", "--channels", "100000", "--out", "{tmp}/d"],
         "--channels 100000: at most 1024"),
        (["data", "synth", "--out", "{tmp}/s", "--count", "3000000000"], "must be 1 to 1,000,000"),
        (["grid", "{editor}", "--enlarge", "1000", "-o", "{tmp}/g.png"], "give 1 to 128"),
        (["grid", "{editor}", "--faces", "1000000000", "-o", "{tmp}/g.png"],
         "--faces must be 1 to 100"),
        (["apply", "{editor}", "{face}", "--to", "+Smiling", "--detect-every", "0", "-o",
          "{tmp}/a.png"], "--detect-every must be 1 or more"),
        (["lerp", "{editor}", "{face}", "--edit", "+Smiling", "--frames", "100000", "-o",
          "{tmp}/l.gif"], "--frames must be 2 to 500"),
    ],
)  # fmt: skip
def test_requests_too_big_for_the_machine_are_refused_up_front(
    world, editor, tmp_path, capsys, args, message
):
    face = editor.parent / "faces" / "photo" / "000001.png"
    args = [a.format(editor=editor, tmp=tmp_path, face=face) for a in args]
    if args[:2] == TRAIN[:2]:
        data = [] if "--data-a" in args else ["--data-a", str(world["dark"]), "--data-b",
                                              str(world["light"])]  # fmt: skip
        args += [*data, "--out", str(tmp_path / "run")]
    assert main(args) == 2
    assert message in one_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_set_larger_than_the_free_disk_is_refused_before_rendering(tmp_path, capsys, monkeypatch):
    from facefilter.synth import dataset

    monkeypatch.setattr(dataset, "free_megabytes", lambda path: 50)  # any disk can be this full
    out = tmp_path / "faces"
    assert main(["data", "synth", "--out", str(out), "--count", "20000", "--size", "64"]) == 2
    line = one_line(capsys)
    assert "20000 faces x 3 style(s) at 64 px need about 312 MB" in line and "50 MB free" in line
    assert list(tmp_path.iterdir()) == []


def test_an_allocation_the_machine_cannot_make_is_one_line(monkeypatch, capsys):
    from facefilter.cli import main as cli

    def too_big(args):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
            "can't allocate memory: you tried to allocate 720000000000 bytes."
        )

    monkeypatch.setattr(cli, "dispatch", too_big)
    assert main(["train"]) == 2
    assert "out of memory (670.6 GiB asked); lower the batch size" in one_line(capsys)
