"""Two processes on the CPU (gloo), launched the way a user launches multi-GPU training.

`torchrun --nproc-per-node 2 -m facefilter.cli.main train ...`, as the README says, with no
extra flag: on a machine without GPUs the engine asks Accelerate for the CPU itself
(otherwise each process would train alone). `accelerate launch --cpu --num_processes 2`
starts a single process unless MPI is installed; torchrun needs neither.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import torch.distributed
from safetensors.torch import load_file

from conftest import TINY_CYCLEGAN
from facefilter.cli.main import main
from facefilter.data.loading import StepBatches, build_training_data
from facefilter.runs import checkpoint

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="needs torch.distributed with the gloo backend",
)

DATA_A, DATA_B = "synth:photo?count=16", "synth:anime?count=16"
BATCH, STEPS, RESUMED_STEPS, LOG_EVERY = 2, 40, 60, 5  # BATCH: per process
TRAIN = [
    "train", "cyclegan-lite", "--data-a", DATA_A, "--data-b", DATA_B, "--size", "32",
    "--batch-size", str(BATCH), "--num-workers", "0", "--no-progress",
    "--log-every", str(LOG_EVERY), "--sample-every", "20", "--save-every", "20", *TINY_CYCLEGAN,
]  # fmt: skip
LAUNCH_TIMEOUT_S = 240  # about 20 s here; a rank stuck in a collective never returns

# `python -m facefilter.cli.main` that also records, per rank, the index lists it trained on.
SPY = """
import json, os, sys
from pathlib import Path
from facefilter.cli.main import main
from facefilter.data.loading import StepBatches

draw = StepBatches.__iter__

def recorded(self):
    path = Path(os.environ["SPY_DIR"]) / f"rank{self.rank}-of-{self.world}.jsonl"
    with path.open("a") as stream:
        for indices in draw(self):
            stream.write(json.dumps(indices) + "\\n")
            stream.flush()
            yield indices

StepBatches.__iter__ = recorded
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class Launch:
    run: Path  # the run directory both ranks trained into
    spy: Path  # rank<r>-of-<world>.jsonl: the batches each rank drew, one line a step


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_until_done(command: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run `command`; past `timeout`, end it and every process it started, then fail."""
    launcher = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        output, _ = launcher.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # torchrun starts each rank in its own session: end them by pid, not by group.
        for process in [*psutil.Process(launcher.pid).children(recursive=True), launcher]:
            process.kill()
        output, _ = launcher.communicate()
        pytest.fail(f"2-process training still running after {timeout} s:\n{output[-3000:]}")
    return launcher.returncode, output


@pytest.fixture(scope="module")
def launch(tmp_path_factory) -> Launch:
    """cyclegan-lite trained for STEPS steps by two processes into one run directory."""
    root = tmp_path_factory.mktemp("distributed")
    (root / "spy").mkdir()
    (root / "spy_cli.py").write_text(SPY)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    }
    env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "SPY_DIR": str(root / "spy"),
            "CUDA_VISIBLE_DEVICES": ""}  # the CPU and gloo, on a machine with GPUs too  # fmt: skip
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()), str(root / "spy_cli.py"),
        *TRAIN, "--max-steps", str(STEPS), "--out", str(root / "run"),
    ]  # fmt: skip
    code, output = run_until_done(command, env, LAUNCH_TIMEOUT_S)
    assert code == 0, output[-3000:]
    return Launch(root / "run", root / "spy")


def logged(run: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def logging_steps(last: int) -> list[int]:
    return list(range(LOG_EVERY, last + 1, LOG_EVERY))


def test_rank_zero_alone_writes_the_run(launch):
    # No state.tmp/ or state.old/ left behind by a second writer.
    assert sorted(p.name for p in launch.run.iterdir()) == [
        "config.json", "loss.png", "metrics.jsonl", "model.safetensors", "samples", "state",
    ]  # fmt: skip
    assert len(list(launch.run.rglob("config.json"))) == 1
    assert len(list(launch.run.rglob("model.safetensors"))) == 1
    assert checkpoint.saved_step(launch.run) == STEPS
    # One line per logged step, in order: two writers would repeat or interleave them.
    assert [row["step"] for row in logged(launch.run)] == logging_steps(STEPS)
    assert sorted(p.name for p in (launch.run / "samples").iterdir()) == [
        "step-000020.png", "step-000040.png",
    ]  # fmt: skip


def test_each_rank_draws_its_own_slice_of_the_global_batch(launch):
    # The files' names say Accelerate formed one group of two (not two runs of one).
    assert sorted(p.name for p in launch.spy.iterdir()) == ["rank0-of-2.jsonl", "rank1-of-2.jsonl"]
    ranks = [[json.loads(line) for line in (launch.spy / f"rank{r}-of-2.jsonl").open()]
             for r in (0, 1)]  # fmt: skip
    # One process with a batch of 2 * BATCH draws exactly the global batch of each step.
    data = build_training_data("unpaired", size=32, seed=0, data_a=DATA_A, data_b=DATA_B)
    whole = iter(StepBatches(data.streams, 2 * BATCH, 0, 0, 1))
    for step in range(STEPS):
        global_batch = [list(pair) for pair in next(whole)]  # [[index_a, index_b], ...]
        assert ranks[0][step] + ranks[1][step] == global_batch, step  # rank 0 first half
        assert ranks[0][step] != ranks[1][step], step


def test_cycle_loss_falls(launch):
    cycle = [row["cycle_a"] + row["cycle_b"] for row in logged(launch.run)]
    first, last = sum(cycle[:3]) / 3, sum(cycle[-3:]) / 3
    assert last < 0.9 * first, cycle


def test_resume_under_one_process(launch, tmp_path, capsys):
    run = shutil.copytree(launch.run, tmp_path / "run")
    before = (run / "metrics.jsonl").read_text()
    code = main([*TRAIN, "--max-steps", str(RESUMED_STEPS), "--resume", "--out", str(run)])
    assert code == 0, capsys.readouterr().err
    assert checkpoint.saved_step(run) == RESUMED_STEPS
    assert [row["step"] for row in logged(run)] == logging_steps(RESUMED_STEPS)
    assert (run / "metrics.jsonl").read_text().startswith(before)  # the 2-process lines kept
    assert (run / "samples" / "step-000060.png").is_file()
    assert "trained with 2 process(es), resumed with 1" in capsys.readouterr().out


def test_a_stray_world_size_is_one_line(tmp_path, capsys, monkeypatch):
    """WORLD_SIZE left in the shell, no launcher: one line, nothing written, no hang."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    code = main([*TRAIN, "--max-steps", "2", "--out", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "WORLD_SIZE=2 is set but no launcher" in err[0], err
    assert not (tmp_path / "run").exists()


def test_a_progressive_autoencoder_grows_under_two_processes(tmp_path):
    """pgae's blocks that have not grown yet get no gradient: DDP must be told to look for
    unused parameters, or the second step fails. Growth, vectors and one writer, checked."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env |= {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "facefilter",
        "train", "pgae", "--data", "synth:photo?count=24", "--size", "32", "--batch-size", "2",
        "--max-steps", "10", "--phase-steps", "2", "--num-workers", "0", "--no-progress",
        "--channels", "8", "--max-channels", "16", "--latent-dim", "8", "--vector-count", "4",
        "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    code, output = run_until_done(command, env, LAUNCH_TIMEOUT_S)
    assert code == 0, output[-3000:]
    state = load_file(tmp_path / "run" / "model.safetensors")
    assert int(state["ae.level"]) == 2 and float(state["ae.alpha"]) == 1.0  # grown to 32 px
    assert (state["state.vector_counts"] > 0).any()
    states = [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith("state")]
    assert states == ["state"]  # no state.tmp/ from a second writer


R1_EVERY_4 = [False, False, False, True, False, False]  # the 4th step of every 4


@pytest.mark.parametrize(
    ("loss", "penalty", "penalised"),
    [("wgan-gp", "d_penalty", [True] * 6), ("gan", "d_r1", R1_EVERY_4)],
)
def test_makeover_with_a_gradient_penalty_trains_under_two_processes(
    tmp_path, loss, penalty, penalised
):
    """The critic's gradient penalty (WGAN-GP's on every step, R1 on every 4th) differentiates
    through DDP's module twice, and with --critic-steps 2 the generator sits out every other
    step; at a non-square size."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env |= {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "facefilter",
        "train", "makeover", "--data-a", "synth:photo?count=24&where=Male", "--data-b",
        "synth:photo?count=24&where=-Male", "--size", "32x40", "--batch-size", "2",
        "--max-steps", "6", "--critic-steps", "2", "--num-workers", "0", "--no-progress",
        "--log-every", "1", "--encoder", "8", "16", "--decoder", "48", "16", "--width", "8",
        "--critic", "8", "16", "--gan-loss", loss, "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    code, output = run_until_done(command, env, LAUNCH_TIMEOUT_S)
    assert code == 0, output[-3000:]
    rows = logged(tmp_path / "run")
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert [penalty in row for row in rows] == penalised
    assert ["g_total" in row for row in rows] == [False, True] * 3
