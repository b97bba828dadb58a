"""CycleGAN family and the shared blocks: shapes, init, image pool, overfit, resume."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from facefilter.errors import UserError
from facefilter.models import create_family
from facefilter.models.base import Progress
from facefilter.models.blocks import (
    ImagePool,
    PatchDiscriminator,
    ResnetBlock,
    ResnetGenerator,
    init_weights,
)
from facefilter.models.cyclegan import CycleGAN, CycleGANConfig, CycleGANLiteConfig

DOMAINS = ["photo", "anime"]
SIZE = 32


def tiny_config(**overrides: object) -> CycleGANConfig:
    fields: dict = {"ngf": 8, "ndf": 8, "n_blocks": 1, "pool_size": 4} | overrides
    return CycleGANConfig(**fields)


def tiny_family(**overrides: object) -> CycleGAN:
    family = create_family("cyclegan", tiny_config(**overrides), DOMAINS, SIZE)
    assert isinstance(family, CycleGAN)
    return family


def fixed_batch(seed: int = 0, batch: int = 2) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    # Smooth images (upsampled noise): a learnable target, unlike per-pixel noise.
    low = torch.rand(2, batch, 3, 8, 8, generator=gen) * 2 - 1
    up = nn.functional.interpolate(low.flatten(0, 1), size=SIZE, mode="bilinear")
    real_a, real_b = up.view(2, batch, 3, SIZE, SIZE)
    return {"real_a": real_a.contiguous(), "real_b": real_b.contiguous()}


def run_steps(family: CycleGAN, steps: range, seed: int = 7) -> list[dict[str, float]]:
    """What the engine does: reseed the global RNG from (seed, step) before each step."""
    logs = []
    for step in steps:
        torch.manual_seed(seed * 100_000 + step)
        family.train()
        logs.append(family.train_step(fixed_batch(step), Progress(step, 100)))
    return logs


def all_weights(family: CycleGAN) -> dict[str, Tensor]:
    return {
        f"{name}.{key}": value
        for name in family.nets
        for key, value in family.unwrapped(name).state_dict().items()
    }


# --- blocks ------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [32, 64])
def test_generator_and_discriminator_shapes(size: int) -> None:
    family = tiny_family()
    images = torch.rand(2, 3, size, size) * 2 - 1
    for name in ("gen_ab", "gen_ba"):
        out = family.nets[name](images)
        assert out.shape == (2, 3, size, size)
        assert out.min() >= -1 and out.max() <= 1
    for name in ("disc_a", "disc_b"):
        assert family.nets[name](images).shape == (2, 1, size // 8, size // 8)


def test_patch_map_is_16x16_at_128px_with_seed_002_setting() -> None:
    images = torch.zeros(1, 3, 128, 128)
    seed_002 = PatchDiscriminator(3, ndf=8, n_layers=3)  # the default padding
    assert seed_002(images).shape == (1, 1, 16, 16)
    pix2pix = PatchDiscriminator(3, ndf=8, n_layers=3, same_padding=False)
    assert pix2pix(images).shape == (1, 1, 14, 14)
    assert pix2pix(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)  # the paper's map


def test_generator_rejects_sizes_not_divisible_by_4() -> None:
    with pytest.raises(UserError, match="divisible by 4"):
        ResnetGenerator(ngf=4, n_blocks=1)(torch.zeros(1, 3, 30, 32))
    with pytest.raises(UserError, match="divisible by 4"):
        create_family("cyclegan", tiny_config(), DOMAINS, 30)


def test_resnet_block_is_residual() -> None:
    block = ResnetBlock(4, "instance")
    for param in block.parameters():
        nn.init.zeros_(param)  # body outputs 0, so the block is the identity
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(block(x), x)


def test_init_weights_conv_std() -> None:
    torch.manual_seed(0)
    net = ResnetGenerator(ngf=16, n_blocks=2, norm="batch")
    init_weights(net, "normal", 0.02)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert weights.std().item() == pytest.approx(0.02, rel=0.05)
    assert abs(weights.mean().item()) < 1e-3
    assert all(m.bias is None or not m.bias.any() for m in convs)
    norm_weights = torch.cat([m.weight for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
    assert norm_weights.mean().item() == pytest.approx(1.0, abs=0.01)


# --- image pool --------------------------------------------------------------------------
def test_pool_size_zero_passes_through() -> None:
    images = torch.randn(3, 3, 4, 4)
    assert ImagePool(0).query(images) is images


def test_pool_fills_then_swaps_half_the_time() -> None:
    torch.manual_seed(0)
    pool = ImagePool(3)
    first = torch.randn(3, 3, 4, 4)
    assert torch.equal(pool.query(first[:2]), first[:2])  # filling: returned as is
    assert torch.equal(pool.query(first[2:]), first[2:])
    assert pool.count == 3
    swaps = 0
    for _ in range(200):
        stored_before = pool.images.clone()
        new = torch.randn(1, 3, 4, 4)
        out = pool.query(new)
        if torch.equal(out, new):
            assert torch.equal(pool.images, stored_before)  # kept: pool unchanged
        else:
            swaps += 1
            slot = [i for i in range(3) if torch.equal(stored_before[i], out[0])]
            assert len(slot) == 1  # a stored image came out ...
            assert torch.equal(pool.images[slot[0]], new[0])  # ... and the new one took its slot
    assert 70 < swaps < 130  # p = 0.5


def test_pool_is_deterministic_and_state_round_trips(tmp_path: Path) -> None:
    def filled_pool() -> ImagePool:
        torch.manual_seed(1)
        pool = ImagePool(4)
        for _ in range(5):
            pool.query(torch.randn(2, 3, 4, 4))
        return pool

    pool, twin = filled_pool(), filled_pool()
    save_file(pool.state_dict(), tmp_path / "pool.safetensors")
    restored = ImagePool(4)
    restored.load_state_dict(load_file(tmp_path / "pool.safetensors"))
    new = torch.randn(6, 3, 4, 4)
    outs = []
    for p in (pool, twin, restored):
        torch.manual_seed(9)
        outs.append(p.query(new))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    assert not torch.equal(outs[0], new)  # the pool was full: some images were swapped
    assert torch.equal(pool.images, restored.images)


def test_pool_state_rejects_a_bigger_saved_pool() -> None:
    pool = ImagePool(4)
    pool.query(torch.randn(4, 3, 2, 2))
    with pytest.raises(UserError, match="pool_size"):
        ImagePool(2).load_state_dict(pool.state_dict())


# --- family ------------------------------------------------------------------------------
def test_config_defaults_and_block_count() -> None:
    lite = CycleGANLiteConfig()
    assert (lite.ngf, lite.ndf, lite.n_blocks) == (32, 32, 3)
    full = CycleGANConfig()
    assert full.resolved_n_blocks(128) == 6 and full.resolved_n_blocks(256) == 9

    def blocks_in(size: int) -> int:
        family = create_family("cyclegan", tiny_config(n_blocks=None), DOMAINS, size)
        return sum(isinstance(m, ResnetBlock) for m in family.nets["gen_ab"].modules())

    assert blocks_in(128) == 6 and blocks_in(256) == 9
    assert isinstance(create_family("cyclegan-lite", None, DOMAINS, 128).config, CycleGANLiteConfig)


def test_needs_exactly_two_domains() -> None:
    with pytest.raises(UserError, match="exactly two"):
        create_family("cyclegan", tiny_config(), ["a", "b", "c"], SIZE)


def test_overfit_one_batch_drives_cycle_loss_down() -> None:
    torch.manual_seed(0)
    family = tiny_family(lr=1e-3)  # tiny nets on one batch: 5x the paper's lr is still stable
    family.setup(Accelerator(cpu=True))
    assert all(g["initial_lr"] == 1e-3 for o in family.opts.values() for g in o.param_groups)
    batch = fixed_batch(0)
    cycle = []
    for step in range(150):
        family.train()
        logs = family.train_step(batch, Progress(step, 150))
        cycle.append(float(logs["cycle_a"]) + float(logs["cycle_b"]))
    expected = {"g_gan_ab", "g_gan_ba", "cycle_a", "cycle_b", "idt_a", "idt_b", "g_total"}
    assert expected | {"d_a", "d_b"} <= set(logs)
    # losses stay on the device as detached 0-d tensors: the engine reads them when it logs
    assert all(isinstance(logs[k], torch.Tensor) for k in expected | {"d_a", "d_b"})
    assert all(v.dim() == 0 and not v.requires_grad for v in logs.values())
    first, last = sum(cycle[:5]) / 5, sum(cycle[-5:]) / 5
    assert last < 0.4 * first, (first, last)


def test_same_seed_same_weights_and_exact_resume(tmp_path: Path) -> None:
    def fresh() -> CycleGAN:
        torch.manual_seed(0)
        family = tiny_family(pool_size=2)  # small pool: its random swaps take part
        family.setup(Accelerator(cpu=True))
        return family

    straight, twin, first_half = fresh(), fresh(), fresh()
    run_steps(straight, range(4))
    run_steps(twin, range(3))
    run_steps(first_half, range(2))
    untrained, trained = all_weights(fresh()), all_weights(twin)
    assert any(not torch.equal(v, trained[k]) for k, v in untrained.items())  # steps did train
    run_steps(twin, range(3, 4))
    assert all(torch.equal(v, all_weights(twin)[k]) for k, v in all_weights(straight).items())

    # Resume through files, as the engine does: weights, optimizers, extra state.
    save_file(first_half.extra_state(), tmp_path / "extra.safetensors")
    resumed = fresh()
    for name in resumed.nets:
        resumed.unwrapped(name).load_state_dict(first_half.unwrapped(name).state_dict())
    for name, opt in resumed.opts.items():
        opt.load_state_dict(first_half.opts[name].state_dict())
    resumed.load_extra_state(load_file(tmp_path / "extra.safetensors"))
    run_steps(resumed, range(2, 4))
    assert all(torch.equal(v, all_weights(resumed)[k]) for k, v in all_weights(straight).items())


def test_lr_factor_constant_then_linear_to_zero() -> None:
    family = tiny_family(decay_start=0.5)
    factors = [family.lr_factor(Progress(step, 100)) for step in range(101)]
    assert factors[:51] == [1.0] * 51
    assert factors[75] == pytest.approx(0.5)
    assert factors[100] == 0.0
    assert all(a > b for a, b in itertools.pairwise(factors[50:]))


def test_translate_and_export_module() -> None:
    torch.manual_seed(0)
    family = tiny_family()
    with pytest.raises(UserError, match="offers anime, photo"):
        family.translate(torch.zeros(1, 3, SIZE, SIZE), "cartoon")
    images = fixed_batch()["real_a"]
    to_anime = family.translator(family.resolve("anime"))
    assert to_anime.generator is family.unwrapped("gen_ab") and not to_anime.training
    to_photo = family.translator(family.resolve("photo", source="anime"))
    assert to_photo.generator is family.unwrapped("gen_ba")
    with pytest.raises(UserError, match="no translation from 'anime' to 'anime'"):
        family.resolve("anime", source="anime")
    with torch.no_grad():
        full = to_anime(images, torch.ones(2))
        assert torch.equal(full, family.translate(images, "anime"))
        assert torch.equal(to_anime(images, torch.zeros(2)), images)  # strength 0: the input
        half = family.translate(images, "anime", strength=0.5)
        torch.testing.assert_close(half, (images + full) / 2)  # an output-space blend


def test_sample_grid_shape_range_and_train_mode_restored() -> None:
    family = tiny_family()
    family.train()
    grid = family.sample_grid(fixed_batch(batch=2))
    # 6 labelled rows (one per image kind) of 2 faces, tiles enlarged to 96 px or more
    assert grid.shape[1] > 6 * 96 and 2 * 96 < grid.shape[2] < 3 * 96 + 200
    assert grid.min() >= 0 and grid.max() <= 1
    assert all(net.training for net in family.nets.values())


def test_load_extra_state_without_pools_is_a_user_error() -> None:
    with pytest.raises(UserError, match="image pool"):
        tiny_family().load_extra_state({})


# --- shape change: the dilated discriminator and input noise -----------------------------
def test_dilations_and_receptive_field() -> None:
    from facefilter.models.dilated import dilations_for, receptive_field

    assert receptive_field((2, 4, 8)) == 302  # worked by hand in the module docstring
    assert dilations_for(64) == dilations_for(128) == (2, 4, 8)
    assert dilations_for(256) == (2, 4, 8, 16) and receptive_field((2, 4, 8, 16)) == 558


@pytest.mark.parametrize("size", [128, 256])  # past a PatchGAN's 70 px
def test_dilated_discriminator_sees_the_whole_image(size: int) -> None:
    from facefilter.models.dilated import DilatedDiscriminator

    # No norm: instance norm's statistics span the image and would link every pixel anyway.
    disc = DilatedDiscriminator(3, ndf=4, image_size=size, norm="none")
    images = torch.zeros(1, 3, size, size, requires_grad=True)
    scores = disc(images)
    assert scores.shape == (1, 1, size // 8, size // 8)
    # One score in a corner of the map depends on the far corner of the image (and on
    # nearly every pixel): a 70x70 PatchGAN's does not, past 70 px.
    scores[0, 0, 0, 0].backward()
    reach = images.grad[0].abs().sum(0)  # (H, W)
    assert reach[-1, -1] > 0 and (reach > 0).float().mean() > 0.99


def test_patchgan_corner_score_does_not_see_the_far_corner() -> None:
    images = torch.zeros(1, 3, 128, 128, requires_grad=True)
    PatchDiscriminator(3, ndf=4, norm="none")(images)[0, 0, 0, 0].backward()
    assert images.grad[0, :, -1, -1].abs().sum() == 0  # the control for the test above


def test_input_noise_decays_to_zero_by_the_last_step() -> None:
    family = tiny_family(input_noise=0.2, disc="dilated")
    family.setup(Accelerator(cpu=True))
    logs = [family.train_step(fixed_batch(s), Progress(s, 10)) for s in (0, 5, 10)]
    assert [round(entry["input_noise"], 6) for entry in logs] == [0.2, 0.1, 0.0]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"disc": "huge"}, "--disc 'huge' unknown"),
        ({"input_noise": -0.1}, "--input-noise"),
        ({"input_noise": float("nan")}, "--input-noise nan"),
    ],
)
def test_bad_shape_settings(overrides: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        tiny_family(**overrides)
