"""`--precision bf16`: the torch engine in bf16 where the hardware computes it, refused in
one line where it would be emulated (slower than fp32), or where the engine is onnx."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_photo_anime_run
from facefilter import hardware
from facefilter.cli.main import main
from facefilter.errors import UserError
from facefilter.hardware import bf16_refusal
from facefilter.inference import Filter
from facefilter.inference.precision import check_precision

CPU = torch.device("cpu")
NATIVE = bf16_refusal(CPU) is None


def cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: a CPU\nflags\t\t: fpu sse2 avx2 {flags}\n")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_photo_anime_run(tmp_path_factory.mktemp("precision") / "run")


def test_bf16_is_native_only_with_bf16_units(tmp_path):
    assert bf16_refusal(CPU, cpuinfo(tmp_path, "avx512f avx512_bf16")) is None
    assert bf16_refusal(CPU, cpuinfo(tmp_path, "amx_tile amx_bf16")) is None
    refusal = bf16_refusal(CPU, cpuinfo(tmp_path, "avx512f avx512bw avx512_vnni"))
    assert refusal is not None and "no bf16 units" in refusal and "emulated" in refusal
    unknown = bf16_refusal(CPU, tmp_path / "missing")
    assert unknown is not None and "cannot tell" in unknown


def test_bf16_is_for_the_torch_engine_and_named_precisions_only():
    with pytest.raises(UserError, match="is for the torch engine"):
        check_precision("bf16", "onnx", None)
    with pytest.raises(UserError, match="choose fp32 or bf16"):
        check_precision("fp16", "torch", CPU)
    check_precision("fp32", "onnx", None)  # fp32 is every engine's


def test_a_cpu_without_bf16_units_is_one_line(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(hardware, "CPUINFO", cpuinfo(tmp_path, "avx2"))
    photo = tmp_path / "face.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photo)
    code = main(["apply", str(run), str(photo), "--to", "anime", "--detect", "never",
                 "--precision", "bf16", "-o", str(tmp_path / "out.png")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no bf16 units" in err, err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.skipif(not NATIVE, reason="this CPU has no bf16 units (the refusal is tested above)")
def test_bf16_translates_as_fp32_does_and_leaves_the_model_in_fp32(run):
    fp32 = Filter.load(run, "torch", "cpu")
    bf16 = Filter.load(run, "torch", "cpu", precision="bf16")
    crops = list(np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8))
    direction = fp32.resolve("anime")
    want, got = fp32.translate_crops(crops, direction), bf16.translate_crops(crops, direction)
    difference = np.abs(np.stack(want).astype(int) - np.stack(got).astype(int))
    # bf16 keeps 8 bits of mantissa: a few levels of 255 here and there, never a new picture
    assert difference.mean() < 2.0 and difference.max() <= 24, (difference.mean(), difference.max())
    assert bf16.family is not None
    weights = [p for net in bf16.family.nets.values() for p in net.parameters()]
    assert all(p.dtype == torch.float32 for p in weights)  # a bf16 copy of them runs


@pytest.mark.skipif(not NATIVE, reason="this CPU has no bf16 units")
def test_apply_and_eval_take_bf16(run, tmp_path, capsys):
    photo = tmp_path / "face.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photo)
    assert main(["apply", str(run), str(photo), "--to", "anime", "--detect", "never",
                 "--precision", "bf16", "-o", str(tmp_path / "out.png")]) == 0  # fmt: skip
    assert Image.open(tmp_path / "out.png").size == (32, 32)  # taken whole, at the run's size
    evaluated = tmp_path / "ev"
    assert main(["eval", str(run), "--to", "anime", "--split", "train", "--count", "4",
                 "--no-identity", "--precision", "bf16", "-o", str(evaluated)]) == 0  # fmt: skip
    assert '"precision": "bf16"' in (evaluated / "metrics.json").read_text()


def test_training_in_bf16_is_refused_where_it_would_be_emulated(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(hardware, "CPUINFO", cpuinfo(tmp_path, "avx2 avx512f"))
    code = main(["train", "cyclegan-lite", "--data-a", "synth:photo?count=4", "--data-b",
                 "synth:anime?count=4", "--size", "32", "--max-steps", "1", "--cpu",
                 "--mixed-precision", "bf16", "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "--mixed-precision bf16: this CPU" in err, err
    assert not (tmp_path / "run").exists()
