"""The engine: run directory, exact resume, atomic checkpoints, Ctrl-C, bad runs."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from facefilter.errors import UserError
from facefilter.models.cyclegan import CycleGANLiteConfig
from facefilter.runs import checkpoint
from facefilter.runs import weights as runs
from facefilter.runs.config import FORMAT_VERSION
from facefilter.training.augment import flip_batch
from facefilter.training.config import TrainConfig
from facefilter.training.engine import train

TINY = CycleGANLiteConfig(ngf=8, ndf=8, n_blocks=1, pool_size=4)


def config(out: Path, domains: tuple[Path, Path], **overrides) -> TrainConfig:
    settings = dict(
        out=out, data_a=f"folder:{domains[0]}", data_b=f"folder:{domains[1]}", size=32,
        batch_size=2, max_steps=6, num_workers=0, log_every=1, sample_every=3, save_every=3,
        progress=False,
    )  # fmt: skip
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "state" / "networks.safetensors")


def test_run_directory_layout(tmp_path, two_domains):
    run = train(config(tmp_path / "run", two_domains), "cyclegan-lite", TINY)
    assert (run / "model.safetensors").is_file() and (run / "loss.png").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step-000003.png", "step-000006.png",
    ]  # fmt: skip
    saved = json.loads((run / "config.json").read_text())
    assert saved["family"] == "cyclegan-lite" and saved["domains"] == ["dark", "light"]
    assert saved["model"]["ngf"] == 8 and saved["image_size"] == 32
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert checkpoint.saved_step(run) == 6
    model = runs.load_family(run)
    assert set(model.nets) == {"gen_ab", "gen_ba"}  # inference only: no discriminators
    assert model.translate(torch.zeros(1, 3, 32, 32), "light").shape == (1, 3, 32, 32)


def test_resume_is_exact(tmp_path, two_domains):
    straight = train(config(tmp_path / "straight", two_domains), "cyclegan-lite", TINY)
    # Pause the second run after step 3 (same schedule horizon), then resume it.
    halted = config(tmp_path / "halted", two_domains, stop_at=3)
    train(halted, "cyclegan-lite", TINY)
    assert checkpoint.saved_step(halted.out) == 3
    halted.resume, halted.stop_at = True, None
    train(halted, "cyclegan-lite", TINY)
    a, b = weights(straight), weights(halted.out)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    resumed_steps = [json.loads(x)["step"] for x in (halted.out / "metrics.jsonl").open()]
    assert resumed_steps == [1, 2, 3, 4, 5, 6]


def _train_until(cfg: TrainConfig, stop_at: int) -> None:
    """Run `cfg` but send ourselves Ctrl-C after `stop_at` steps (the user's way to stop)."""
    from facefilter.models.cyclegan import CycleGAN

    original = CycleGAN.train_step

    def step_then_interrupt(self, batch, progress):
        logs = original(self, batch, progress)
        if progress.step + 1 == stop_at:
            os.kill(os.getpid(), signal.SIGINT)
        return logs

    CycleGAN.train_step = step_then_interrupt  # type: ignore[method-assign]
    try:
        with pytest.raises(SystemExit) as stopped:
            train(cfg, "cyclegan-lite", TINY)
        assert stopped.value.code == 130
    finally:
        CycleGAN.train_step = original  # type: ignore[method-assign]


def test_ctrl_c_saves_a_checkpoint(tmp_path, two_domains):
    cfg = config(tmp_path / "run", two_domains, save_every=100, sample_every=100)
    _train_until(cfg, 2)
    assert checkpoint.saved_step(cfg.out) == 2
    assert (cfg.out / "model.safetensors").is_file()


def test_crash_while_saving_keeps_last_checkpoint(tmp_path, two_domains, monkeypatch):
    cfg = config(tmp_path / "run", two_domains, max_steps=3)
    train(cfg, "cyclegan-lite", TINY)
    before = weights(cfg.out)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    cfg2 = config(tmp_path / "run", two_domains, max_steps=6, resume=True)
    with pytest.raises(UserError, match=r"no space left on .*state\.tmp: free \d+ MB.*step 3"):
        train(cfg2, "cyclegan-lite", TINY)
    monkeypatch.undo()
    assert not (cfg.out / "state.tmp").exists()
    assert checkpoint.saved_step(cfg.out) == 3
    after = weights(cfg.out)
    assert all(torch.equal(before[k], after[k]) for k in before)
    runs.load_family(cfg.out)  # model.safetensors still whole


def test_existing_run_is_not_overwritten(tmp_path, two_domains):
    cfg = config(tmp_path / "run", two_domains, max_steps=1)
    train(cfg, "cyclegan-lite", TINY)
    stamp = (cfg.out / "model.safetensors").read_bytes()
    with pytest.raises(UserError, match="already holds a run; pass --resume"):
        train(cfg, "cyclegan-lite", TINY)
    with pytest.raises(UserError, match="holds a 'cyclegan-lite' run"):
        train(config(tmp_path / "run", two_domains, resume=True), "cyclegan", None)
    assert (cfg.out / "model.safetensors").read_bytes() == stamp


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"epochs": -1.0}, "--epochs must be positive"),
        ({"resume": True}, "holds no run to resume"),
        ({"data_b": None}, "pass --data-a SPEC and --data-b SPEC"),
    ],
)
def test_bad_training_options(tmp_path, two_domains, overrides, message):
    with pytest.raises(UserError, match=message):
        train(config(tmp_path / "run", two_domains, **overrides), "cyclegan-lite", TINY)


def test_empty_data_folder_is_reported(tmp_path, two_domains):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="empty"):
        train(config(tmp_path / "run", (two_domains[0], empty)), "cyclegan-lite", TINY)
    assert not (tmp_path / "run" / "config.json").exists()


def test_flips_depend_only_on_seed_and_step():
    batch = {"real_a": torch.arange(2 * 3 * 4 * 4.0).reshape(2, 3, 4, 4)}
    assert torch.equal(flip_batch(batch, 0, 5)["real_a"], flip_batch(batch, 0, 5)["real_a"])
    outcomes = {tuple(flip_batch(batch, 0, s)["real_a"][:, 0, 0, 0].tolist()) for s in range(20)}
    assert len(outcomes) > 1  # flips actually happen, and differ between steps


def test_load_model_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        runs.load_family(tmp_path / "nope")
    (tmp_path / "odd").mkdir()
    with pytest.raises(UserError, match=r"no config\.json"):
        runs.load_family(tmp_path / "odd")
    (tmp_path / "odd" / "config.json").write_text(json.dumps({"family": "cyclegan"}))
    with pytest.raises(UserError, match="format version"):
        runs.load_family(tmp_path / "odd")
    (tmp_path / "odd" / "config.json").write_text(
        json.dumps({"family": "stylegan9", "format_version": FORMAT_VERSION})
    )
    with pytest.raises(UserError, match="does not know"):
        runs.load_family(tmp_path / "odd")


def test_resume_with_other_model_settings_is_one_line(tmp_path, two_domains):
    cfg = config(tmp_path / "run", two_domains, max_steps=2)
    train(cfg, "cyclegan-lite", TINY)
    wider = CycleGANLiteConfig(ngf=16, ndf=8, n_blocks=1, pool_size=4)
    changed = r"--resume: --ngf 16 would change the model, which .* trained with --ngf 8;"
    with pytest.raises(UserError, match=changed):
        train(config(tmp_path / "run", two_domains, max_steps=4, resume=True), "cyclegan-lite",
              wider)  # fmt: skip
    assert checkpoint.saved_step(cfg.out) == 2


def test_fp16_on_the_cpu_is_one_line(tmp_path, two_domains):
    with pytest.raises(UserError, match="fp16 needs a CUDA GPU"):
        train(config(tmp_path / "run", two_domains, mixed_precision="fp16", cpu=True),
              "cyclegan-lite", TINY)  # fmt: skip


def test_weights_saved_under_torch_compile_keys_still_load(tmp_path, two_domains):
    """Runs trained with --compile by earlier versions saved `net._orig_mod.param` keys."""
    from safetensors.torch import save_file

    run = train(config(tmp_path / "run", two_domains, max_steps=1), "cyclegan-lite", TINY)
    plain = load_file(run / "model.safetensors")
    compiled = {key.replace(".", "._orig_mod.", 1): value for key, value in plain.items()}
    save_file(compiled, run / "model.safetensors")
    loaded = runs.load_family(run)
    for key, value in loaded.unwrapped("gen_ab").state_dict().items():
        assert torch.equal(value, plain[f"gen_ab.{key}"]), key


def test_a_short_run_writes_the_curves_it_announces(tmp_path, two_domains, capsys):
    """--max-steps below --log-every: the last step is logged, so loss.png exists."""
    run = train(config(tmp_path / "run", two_domains, max_steps=2, log_every=10), "cyclegan-lite",
                TINY)  # fmt: skip
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").open()] == [2]
    assert (run / "loss.png").is_file()
    assert f"run saved in {run} at step 2" in capsys.readouterr().out


def test_a_resume_with_no_step_left_is_refused_and_rewrites_nothing(tmp_path, two_domains):
    cfg = config(tmp_path / "run", two_domains, max_steps=2)
    train(cfg, "cyclegan-lite", TINY)
    before = (cfg.out / "config.json").read_bytes()
    with pytest.raises(UserError, match=r"is at step 2 and --max-steps 1 is not past it; raise"):
        train(config(cfg.out, two_domains, max_steps=1, resume=True), "cyclegan-lite", TINY)
    with pytest.raises(UserError, match=r"is at step 2 and --max-steps 2 is not past it"):
        train(config(cfg.out, two_domains, max_steps=2, resume=True), "cyclegan-lite", TINY)
    again = config(cfg.out, two_domains, max_steps=4, stop_at=2, resume=True)
    with pytest.raises(UserError, match="--stop-at 2 is not past the saved step 2"):
        train(again, "cyclegan-lite", TINY)
    assert (cfg.out / "config.json").read_bytes() == before


def test_resume_takes_a_new_training_setting_and_refuses_a_model_change(tmp_path, two_domains):
    """Loss weights and learning rates may change at a resume (recorded with the step);
    the size or widths may not."""
    noisy = CycleGANLiteConfig(ngf=8, ndf=8, n_blocks=1, pool_size=4, input_noise=0.1)
    train(config(tmp_path / "run", two_domains, max_steps=2), "cyclegan-lite", noisy)
    with pytest.raises(UserError, match=r"--size 64 would change the model, which .* --size 32"):
        train(config(tmp_path / "run", two_domains, size=64, resume=True), "cyclegan-lite", noisy)
    assert checkpoint.saved_step(tmp_path / "run") == 2
    resume = config(tmp_path / "run", two_domains, max_steps=4, resume=True)
    fast = CycleGANLiteConfig(ngf=8, ndf=8, n_blocks=1, pool_size=4, input_noise=0.0, lr=0.01)
    train(resume, "cyclegan-lite", fast)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["lr"] == 0.01 and saved["model"]["input_noise"] == 0.0
    assert saved["train"]["changes"] == [
        {"step": 2, "input_noise": [0.1, 0.0], "lr": [0.0002, 0.01], "max_steps": [2, 4]}
    ]
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert logged[-1]["step"] == 4 and logged[-1]["lr"] > 0.0002  # the new lr, decayed


def test_the_loss_plot_overlays_g_and_d_and_keeps_schedules_apart(tmp_path):
    from facefilter.training.log import panels, plot_losses

    names = ["g_gan_ab", "g_total", "d_a", "d_error", "cycle_a", "recon", "lr", "beta"]
    groups = panels(names)
    assert list(groups.values()) == [
        ["g_total"], ["d_a", "g_gan_ab"], ["cycle_a", "recon"], ["beta", "d_error", "lr"]
    ]  # fmt: skip
    rows = [{"step": s, "g_total": 3 / s, "d_a": 0.5, "recon": 0.1, "lr": 1e-3, "time": 9}
            for s in range(1, 40)]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    plot_losses(tmp_path)
    assert Image.open(tmp_path / "loss.png").size[1] > Image.open(tmp_path / "loss.png").size[0]


def test_accuracies_and_held_out_scores_get_panels_of_their_own():
    from facefilter.training.log import panels

    groups = panels(["loss", "attrs", "attrs_acc", "style_acc", "eval/attr_acc", "lr"])
    assert groups["accuracy on the training batches"] == ["attrs_acc", "style_acc"]
    assert groups["held-out evaluation (--eval-every)"] == ["eval/attr_acc"]
    assert groups["reconstruction and other losses"] == ["attrs"]


def test_the_progress_bar_ends_where_the_time_budget_will():
    import time

    from facefilter.training.span import expected_end

    now = time.monotonic()
    # 10 steps in the first 5 s of a 10 s budget: the run will end near step 20, not 20 000
    assert 19 <= expected_end(10, 0, now - 5, now + 5) <= 20
    assert expected_end(10, 0, now - 5, now - 1) == 10  # the budget is spent


def test_random_crops_and_colour_jitter_depend_only_on_seed_and_step():
    from facefilter.sizes import ImageSize
    from facefilter.training.augment import crop_batch, jitter_batch

    batch = {"real_a": torch.rand(4, 3, 40, 40) * 2 - 1, "label": torch.zeros(4)}
    cut = crop_batch(batch, ImageSize(32, 32), seed=0, step=5)
    assert cut["real_a"].shape == (4, 3, 32, 32) and torch.equal(cut["label"], batch["label"])
    assert torch.equal(cut["real_a"], crop_batch(batch, ImageSize(32, 32), 0, 5)["real_a"])
    places = {tuple(crop_batch(batch, ImageSize(32, 32), 0, s)["real_a"][0, 0, 0, :3].tolist())
              for s in range(10)}  # fmt: skip
    assert len(places) > 1  # the crop moves from step to step
    jittered = jitter_batch(batch, 0.2, seed=0, step=5)["real_a"]
    assert torch.equal(jittered, jitter_batch(batch, 0.2, 0, 5)["real_a"])
    assert not torch.equal(jittered, batch["real_a"]) and jittered.abs().max() <= 1
    assert torch.allclose(jitter_batch(batch, 0.0, 0, 5)["real_a"], batch["real_a"], atol=1e-6)


def resumed_exactly(tmp_path: Path, domains: tuple[Path, Path], **settings) -> dict:
    """Train straight and halted-then-resumed with `settings`; assert the weights are the
    same to the bit and return them."""
    straight = train(config(tmp_path / "straight", domains, **settings), "cyclegan-lite", TINY)
    halted = config(tmp_path / "halted", domains, stop_at=3, **settings)
    train(halted, "cyclegan-lite", TINY)
    halted.resume, halted.stop_at = True, None
    train(halted, "cyclegan-lite", TINY)
    a, b = weights(straight), weights(halted.out)
    assert all(torch.equal(a[k], b[k]) for k in a)
    return a


def test_load_size_and_jitter_train_and_resume_exactly(tmp_path, two_domains):
    resumed_exactly(tmp_path, two_domains, load_size=40, color_jitter=0.1)
    with pytest.raises(UserError, match="--load-size 20 is below --size 32"):
        train(config(tmp_path / "x", two_domains, load_size=20), "cyclegan-lite", TINY)


def test_tensorboard_gets_the_losses_and_the_sample_grids(tmp_path, two_domains):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    cfg = config(tmp_path / "run", two_domains, max_steps=2, sample_every=2, tensorboard=True)
    train(cfg, "cyclegan-lite", TINY)
    events = accumulator.EventAccumulator(str(cfg.out / "tensorboard"))
    events.Reload()
    assert "samples" in events.Tags()["images"] and "g_total" in events.Tags()["scalars"]


def test_randomize_puts_one_domain_through_a_camera_and_keeps_it_clean_too():
    from facefilter.training.augment import camera_batch, camera_domain

    batch = {"real_a": torch.rand(8, 3, 32, 32) * 2 - 1, "real_b": torch.rand(8, 3, 32, 32) * 2 - 1}
    out = camera_batch(batch, 1.0, camera_domain(None, ["photo", "anime"], "unpaired"), 0, 5)
    assert torch.equal(out["real_b"], batch["real_b"]) and torch.equal(out["clean_a"],
                                                                       batch["real_a"])  # fmt: skip
    assert (out["real_a"] - batch["real_a"]).abs().flatten(1).mean(1).min() > 0.005
    assert torch.equal(out["real_a"], camera_batch(batch, 1.0, 0, 0, 5)["real_a"])  # (seed, step)
    second = camera_batch(batch, 1.0, camera_domain("anime", ["photo", "anime"], "unpaired"), 0, 5)
    assert torch.equal(second["real_a"], batch["real_a"]) and "clean_b" in second
    labelled = {"image": torch.rand(8, 3, 32, 32) * 2 - 1, "label": torch.arange(8) % 2}
    only_ones = camera_batch(labelled, 1.0, 1, 0, 5)  # class 1's faces, not class 0's
    assert torch.equal(only_ones["image"][::2], labelled["image"][::2])
    assert not torch.equal(only_ones["image"][1::2], labelled["image"][1::2])
    with pytest.raises(UserError, match="--randomize-domain 'cartoon' is not a domain"):
        camera_domain("cartoon", ["photo", "anime"], "unpaired")


def test_randomize_trains_and_resumes_exactly(tmp_path, two_domains):
    a = resumed_exactly(tmp_path, two_domains, randomize=0.5)
    plain = weights(train(config(tmp_path / "plain", two_domains), "cyclegan-lite", TINY))
    assert not all(torch.equal(a[k], plain[k]) for k in a)  # the camera changed what it learned


def test_a_wrong_randomize_domain_is_refused_before_training(tmp_path, two_domains):
    cfg = config(tmp_path / "run", two_domains, randomize=0.5, randomize_domain="cartoon")
    with pytest.raises(UserError, match="--randomize-domain 'cartoon' is not a domain"):
        train(cfg, "cyclegan-lite", TINY)
    assert not (cfg.out / "model.safetensors").exists() and not (cfg.out / "state").exists()
