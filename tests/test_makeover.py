"""The makeover GAN's parts: near-identity start, annealed schedules, width checks, and
the non-square sizes it brings (parsing, data, alignment)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from facefilter.data.framing import align_config
from facefilter.data.images import to_tensor
from facefilter.data.loading import build_training_data
from facefilter.data.sources import open_source
from facefilter.errors import UserError
from facefilter.face.template import template_landmarks
from facefilter.models import create_family, losses
from facefilter.models.base import Progress
from facefilter.models.makeover import MakeoverConfig
from facefilter.models.makeover_nets import MakeoverGenerator
from facefilter.runs.config import config_from_dict
from facefilter.sizes import ImageSize

TINY = {"encoder": (8, 16), "decoder": (48, 16), "width": 8, "critic": (8, 16)}


def faces(size: str, count: int = 8) -> torch.Tensor:
    source = open_source(f"synth:photo?count={count}", size)
    return torch.stack([source[i]["image"] for i in range(len(source))])


@pytest.mark.parametrize("size", ["32x40", "80x100"])
def test_an_untrained_generator_returns_almost_its_input(size):
    torch.manual_seed(0)
    family = create_family("makeover", MakeoverConfig(), ["Male", "not-Male"], size)
    images = faces(size)
    family.eval()
    with torch.no_grad():
        out = family.nets["gen"](images)
    assert out.shape == images.shape
    assert (out - images).abs().mean() < 0.05  # the bar; measured ~0.0005


def test_near_identity_also_in_training_mode_and_before_the_first_step():
    torch.manual_seed(0)
    family = create_family("makeover", MakeoverConfig(**TINY), ["a", "b"], "32x40")
    images = faces("32x40")
    family.train()  # batch statistics in the branches: still near the input
    with torch.no_grad():
        assert (family.nets["gen"](images) - images).abs().mean() < 0.05


def test_a_masked_generator_starts_near_its_input_and_passes_it_where_the_mask_is_off():
    torch.manual_seed(0)
    family = create_family("makeover", MakeoverConfig(**TINY, masked=True), ["a", "b"], "32x40")
    gen, images = family.nets["gen"].eval(), faces("32x40", 4)
    with torch.no_grad():
        assert (gen(images) - images).abs().mean() < 0.05
        heads = gen.net[-1]
        heads.mask.bias.fill_(-30.0)  # the mask off everywhere ...
        heads.colour.weight.normal_()  # ... so whatever colour it paints
        assert torch.allclose(gen(images), images, atol=1e-6)  # the grain kept exactly
        heads.mask.bias.fill_(30.0)  # the mask on: the colour alone
        assert torch.allclose(gen(images), heads.colour(gen.net[:-1](images)), atol=1e-5)


def test_a_run_written_before_the_mask_loads_as_it_was_trained():
    written = {**asdict(MakeoverConfig(**TINY, masked=False, r1_weight=0.0, warmup_share=0.0)),
               "critic_lr": None}  # fmt: skip
    for key in ("masked", "r1_weight", "r1_every", "critic_lr", "warmup_share"):
        del written[key]  # config.json of an older facefilter
    loaded = config_from_dict(MakeoverConfig, json.loads(json.dumps(written)),
                              Path("old/config.json"))  # fmt: skip
    assert (loaded.masked, loaded.r1_weight, loaded.critic_lr, loaded.warmup_share) == (
        False, 0.0, None, 0.0)  # fmt: skip
    assert not MakeoverGenerator((8, 16), (48, 16), 8, "batch").masked  # its weights fit


def test_annealing_is_a_function_of_the_step():
    config = MakeoverConfig(annealing_half_life=100, pixel_loss_max=1.0, pixel_loss_min=0.5,
                            instance_noise=0.4, lr_start=1e-4, lr_end=1e-6)  # fmt: skip
    family = create_family("makeover", config, ["a", "b"], "32x40")
    assert family.annealing(Progress(0, 10)) == 1.0
    assert family.annealing(Progress(100, 10)) == pytest.approx(0.5)
    assert family.annealing(Progress(300, 10)) == pytest.approx(0.125)
    assert family.pixel_share(Progress(0, 10)) == 1.0  # the critic is ignored at first
    assert family.pixel_share(Progress(100, 10)) == pytest.approx(0.75)
    assert family.pixel_share(Progress(10**6, 10)) == pytest.approx(0.5)
    assert family.lr_factor(Progress(100, 10)) == pytest.approx(0.5)
    assert family.lr_factor(Progress(10**6, 10)) == pytest.approx(0.01)  # lr_end / lr_start


def test_the_generator_warms_up_while_its_faster_critic_does_not():
    config = MakeoverConfig(lr_start=2e-4, lr_end=2e-4, critic_lr=5e-4, warmup_share=0.1)
    family = create_family("makeover", config, ["a", "b"], "32x40")
    gen = [family.optimizer_lr_factor("gen", Progress(step, 100)) for step in (0, 4, 9, 50)]
    assert gen == pytest.approx([0.1, 0.5, 1.0, 1.0])  # 10 steps: never 0, whole at the 10th
    assert family.optimizer_lr_factor("critic", Progress(0, 100)) == 1.0
    optimizers = family.build_optimizers()
    assert optimizers["critic"].param_groups[0]["lr"] == 5e-4
    assert optimizers["gen"].param_groups[0]["lr"] == 2e-4


@pytest.mark.parametrize("loss", ["wgan-gp", "wgan-clip", "gan"])
def test_each_gan_loss_trains_and_logs_its_terms(loss):
    torch.manual_seed(0)
    config = MakeoverConfig(**TINY, gan_loss=loss, critic_steps=2)
    family = create_family("makeover", config, ["a", "b"], "32x40")
    family.opts = family.build_optimizers()
    images = faces("32x40", 4)
    batch = {"real_a": images, "real_b": images.flip(0)}
    first = family.train_step(batch, Progress(0, 10))
    assert "g_total" not in first  # critic_steps 2: the generator waits for the second
    second = family.train_step(batch, Progress(1, 10))
    assert {"d", "d_error", "g_total", "pixel", "pixel_share", "instance_noise"} <= set(second)
    assert ("d_penalty" in second) == (loss == "wgan-gp")
    if loss == "wgan-clip":
        weights = [p for p in family.nets["critic"].parameters() if p.dim() > 1]
        assert max(p.abs().max().item() for p in weights) <= config.disc_weights_threshold


def test_r1_penalises_the_critics_slope_on_real_faces_only_every_r1_every_steps():
    torch.manual_seed(0)
    config = MakeoverConfig(**TINY, gan_loss="gan", r1_weight=2.0, r1_every=3, critic_steps=1)
    family = create_family("makeover", config, ["a", "b"], "32x40")
    family.opts = family.build_optimizers()
    images = faces("32x40", 4)
    batch = {"real_a": images, "real_b": images.flip(0)}
    taken = [("d_r1" in family.train_step(batch, Progress(step, 10))) for step in range(6)]
    assert taken == [False, False, True, False, False, True]  # a logged multiple of 3 shows it


def test_r1_is_the_squared_slope_of_the_real_scores():
    real = torch.randn(3, 2, requires_grad=True)
    slope = torch.tensor([3.0, 4.0], requires_grad=True)  # a critic's weights
    penalty, logs = losses.r1_penalty((real * slope).sum(dim=1), real)
    assert penalty.item() == pytest.approx(25.0) and logs["d_r1"].item() == pytest.approx(25.0)
    penalty.backward()  # differentiable: the critic's weights learn to flatten their slope
    assert slope.grad is not None and torch.allclose(slope.grad, 2 * slope.detach())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"r1_every": 0}, "--r1-every 0 must be at least 1"),
        ({"critic_lr": 0.0}, "--critic-lr 0.0 must be > 0"),
        ({"lr_start": 0.0}, "--lr-start 0.0 must be > 0"),
        ({"warmup_share": 1.0}, "--warmup-share 1.0 must lie in"),
        ({"r1_weight": -1.0}, "--r1-weight -1.0 must be >= 0"),
        ({"annealing_half_life": 0}, "--annealing-half-life 0 must be at least 1"),
        ({"decoder": (32, 16)}, "--decoder width 32 is narrower than the 48 channels"),
        ({"decoder": (48,)}, "the same number of levels"),
        ({"decoder": (50, 16)}, "multiple of 4"),
        ({"pixel_loss_min": 0.9, "pixel_loss_max": 0.5}, "0 <= min <= max <= 1"),
        ({"lr_end": 1e-3}, "0 < end <= start"),
        ({"gan_loss": "hinge"}, "choose one of wgan-gp, wgan-clip, gan"),
    ],
)
def test_bad_settings_are_one_line(settings, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        create_family("makeover", MakeoverConfig(**settings), ["a", "b"], "32x40")


def test_a_size_the_halvings_cannot_take_names_one_that_works():
    with pytest.raises(UserError) as error:
        create_family("makeover", MakeoverConfig(), ["a", "b"], "80x101")
    assert "divisible by 4" in str(error.value) and "--size 80x104" in str(error.value)


def test_a_size_too_small_for_the_critic_is_one_line():
    with pytest.raises(UserError, match="too small for the critic's 4 halvings; use at least 16"):
        create_family("makeover", MakeoverConfig(), ["a", "b"], "8x12")


def test_the_gradient_penalty_refuses_compile_and_fp16():
    wgan_gp = MakeoverConfig(gan_loss="wgan-gp")
    with pytest.raises(UserError, match="--compile cannot train --gan-loss wgan-gp"):
        wgan_gp.check_engine(compile=True, mixed_precision="no")
    with pytest.raises(UserError, match="--mixed-precision fp16 cannot"):
        wgan_gp.check_engine(compile=False, mixed_precision="fp16")
    MakeoverConfig(gan_loss="gan", r1_weight=0.0).check_engine(compile=True, mixed_precision="fp16")
    with pytest.raises(UserError, match="--compile cannot train --gan-loss gan --r1-weight"):
        MakeoverConfig(gan_loss="gan", r1_weight=1.0).check_engine(True, "no")


def test_square_families_refuse_a_non_square_size_in_one_line():
    with pytest.raises(UserError, match="trains on square images only"):
        create_family("cyclegan", None, ["a", "b"], "32x40")
    create_family("cyclegan", None, ["a", "b"], 32)  # a side still works


@pytest.mark.parametrize(
    ("text", "expected"),
    [("128", (128, 128)), (128, (128, 128)), ("80x100", (80, 100)), (" 80 X 100 ", (80, 100)),
     ([80, 100], (80, 100))],
)  # fmt: skip
def test_sizes_parse(text, expected):
    size = ImageSize.parse(text)
    assert (size.width, size.height) == expected
    assert ImageSize.parse(size.json()) == size  # what config.json stores reads back


@pytest.mark.parametrize("text", ["80x", "x100", "0", "80x0", "big", "1.5"])
def test_bad_sizes_are_one_line(text):
    with pytest.raises(UserError, match="size"):
        ImageSize.parse(text)


def test_a_non_square_size_is_the_middle_of_the_square_crop():
    from PIL import Image

    square = faces("40", 1)[0]  # the synthetic face at 40 px
    tall = faces("32x40", 1)[0]  # the same face at 32 wide, 40 tall
    assert tall.shape == (3, 40, 32)
    torch.testing.assert_close(tall, square[:, :, 4:36])
    picture = Image.fromarray(np.zeros((60, 90, 3), np.uint8))
    assert to_tensor(picture, "32x40").shape == (3, 40, 32)


def test_alignment_puts_the_landmarks_where_the_cropped_data_has_them():
    square = template_landmarks(align_config(None, 100))
    tall = template_landmarks(align_config(None, "80x100"))
    np.testing.assert_allclose(tall, square - [10, 0])  # 10 px cut from each side


def test_two_filters_that_select_the_same_faces_are_refused():
    with pytest.raises(UserError, match="select the same"):
        build_training_data(
            "unpaired", size=32, seed=0, data_a="synth:photo?count=40&where=Male,-Eyeglasses",
            data_b="synth:photo?count=40&where=-Eyeglasses,Male",
        )  # fmt: skip
    data = build_training_data(
        "unpaired", size=32, seed=0, data_a="synth:photo?count=40&where=Male",
        data_b="synth:photo?count=40&where=-Male",
    )  # fmt: skip
    assert data.domains == ["Male", "not-Male"]
