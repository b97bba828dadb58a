"""A style from a few pictures: DiffAugment's transforms, `--init-from` with FreezeD, and
`limit=` on synthetic faces (benchmarks/few_shot.py measures what they win back)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file

from conftest import TRAIN, one_line
from facefilter.cli.main import main
from facefilter.data.sources import open_source
from facefilter.errors import UserError
from facefilter.models import create_family
from facefilter.models.base import Progress
from facefilter.models.blocks import PatchDiscriminator, freeze_first_layers, set_requires_grad
from facefilter.models.cyclegan import CycleGANLiteConfig
from facefilter.models.diffaugment import (
    TRANSFORMS,
    color,
    cutout,
    diff_augment,
    parse_policy,
    translation,
)
from facefilter.models.makeover import MakeoverConfig

POLICY = "color,translation,cutout"


def faces(count: int = 4, side: int = 16) -> torch.Tensor:
    return torch.rand(count, 3, side, side, generator=torch.Generator().manual_seed(1)) * 2 - 1


# --- DiffAugment ------------------------------------------------------------------------
def test_translation_moves_whole_pixels_and_fills_with_zeros():
    torch.manual_seed(3)
    images = faces(8)
    moved = translation(images)
    for before, after in zip(images, moved, strict=True):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(after, shifted(before, dy, dx))]  # fmt: skip
        assert found, "each image is its own shift of at most 1/8 of the side"
    assert any(not torch.equal(a, b) for a, b in zip(images, moved, strict=True))


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    out = torch.zeros_like(image)
    height, width = image.shape[-2:]
    out[:, max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = image[
        :, max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    return out


def test_cutout_zeroes_at_most_a_square_of_half_the_side():
    torch.manual_seed(0)
    kept = cutout(torch.ones(64, 1, 16, 16))
    zeroed = (kept == 0).sum(dim=(1, 2, 3))
    assert zeroed.max() == 64 and zeroed.min() > 0  # an 8x8 square, clipped at the edges
    rows, cols = (kept[0, 0] == 0).any(dim=1), (kept[0, 0] == 0).any(dim=0)
    assert int(rows.sum()) * int(cols.sum()) == int(zeroed[0])  # one rectangle


def test_color_changes_each_image_on_its_own():
    torch.manual_seed(0)
    flat = torch.zeros(4, 3, 8, 8)
    changed = color(flat)
    means = changed.mean(dim=(1, 2, 3))
    assert len(set(means.tolist())) == 4 and means.abs().max() <= 0.5


def test_augmentation_is_differentiable_and_a_function_of_the_seed():
    images = faces().requires_grad_(True)
    torch.manual_seed(5)
    first = diff_augment(images, POLICY)
    first.square().sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    torch.manual_seed(5)
    assert torch.equal(first, diff_augment(images, POLICY))
    assert torch.equal(diff_augment(images, ""), images)


@pytest.mark.parametrize(
    ("text", "said"),
    [("color,zoom", "unknown transform 'zoom'"), ("color,color", "names a transform twice")],
)
def test_a_bad_policy_is_one_line(text, said):
    with pytest.raises(UserError, match=said):
        parse_policy(text)
    assert parse_policy(" color, cutout ") == ("color", "cutout")


def test_every_image_a_discriminator_sees_is_augmented(monkeypatch):
    """In cyclegan's generator step (each fake) and its discriminator step (real and pooled
    fake together), as in makeover's critic and generator steps."""
    seen: list[int] = []
    for name, transform in list(TRANSFORMS.items()):

        def spy(images, transform=transform, name=name):
            if name == "color":
                seen.append(images.shape[0])
            return transform(images)

        monkeypatch.setitem(TRANSFORMS, name, spy)
    batch = {"real_a": faces(2, 32), "real_b": faces(2, 32)}
    cyclegan = create_family("cyclegan-lite", CycleGANLiteConfig(
        ngf=8, ndf=8, n_blocks=1, diff_augment=POLICY), ["photo", "anime"], 32)  # fmt: skip
    cyclegan.setup(Accelerator(cpu=True))
    cyclegan.train_step(batch, Progress(0, 10))
    assert seen == [2, 2, 4, 4]  # G: fake_b, fake_a; D: real + fake, for each domain
    seen.clear()
    makeover = create_family("makeover", MakeoverConfig(
        encoder=(8, 16), decoder=(48, 16), width=8, critic=(8, 16), critic_steps=1,
        diff_augment=POLICY), ["male", "female"], 32)  # fmt: skip
    makeover.setup(Accelerator(cpu=True))
    makeover.train_step(batch, Progress(0, 10))
    assert seen == [2, 2, 2]  # the critic: real, fake; the generator: fake


# --- FreezeD ------------------------------------------------------------------------------
def test_frozen_layers_stay_frozen_when_a_family_switches_gradients_back_on():
    disc = PatchDiscriminator(3, 8, 2, "instance")
    assert freeze_first_layers(disc, 2) == 4  # two stride-2 convs, two stride-1
    set_requires_grad([disc], False)
    set_requires_grad([disc], True)
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.weight.requires_grad for c in convs] == [False, False, True, True]


def test_weight_clipping_leaves_the_frozen_layers_alone():
    config = MakeoverConfig(encoder=(8, 16), decoder=(48, 16), width=8, critic=(8, 16),
                            gan_loss="wgan-clip", critic_steps=2)  # fmt: skip
    family = create_family("makeover", config, ["male", "female"], 32)
    family.freeze_critics(1)
    first = next(m for m in family.nets["critic"].modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        first.weight.fill_(0.5)  # as an unclipped run left it: far over the threshold 0.01
    family.setup(Accelerator(cpu=True))
    family.train_step({"real_a": faces(2, 32), "real_b": faces(2, 32)}, Progress(0, 10))
    assert (first.weight == 0.5).all()
    later = [m for m in family.nets["critic"].modules() if isinstance(m, torch.nn.Conv2d)][1]
    assert later.weight.abs().max() <= 0.01


# --- through the CLI ----------------------------------------------------------------------
def train(out: Path, *extra: str, target: str = "synth:anime?limit=6", steps: int = 3) -> int:
    data = ["--data-a", "synth:photo?count=12", "--data-b", target]
    return main([*TRAIN, *data, "--max-steps", str(steps), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def source_run(tmp_path_factory) -> Path:
    """A photo -> cartoon run, the filter a new style starts from."""
    out = tmp_path_factory.mktemp("init") / "cartoon"
    assert train(out, target="synth:cartoon?count=12") == 0
    return out


def test_init_from_starts_from_the_runs_weights_and_freeze_d_keeps_the_first_layers(
    source_run, tmp_path, capsys
):
    out = tmp_path / "anime"
    assert train(out, "--init-from", str(source_run), "--freeze-d", "2", "--diff-augment",
                 POLICY, "--save-every", "1") == 0  # fmt: skip
    assert "started from" in capsys.readouterr().out
    before = load_file(source_run / "state" / "networks.safetensors")
    after = load_file(out / "state" / "networks.safetensors")
    convs = sorted(
        (k for k in before if k.startswith("disc_b.") and before[k].dim() == 4),
        key=lambda k: int(k.split(".")[2]),
    )  # disc_b.model.N.weight, in order
    kept = [torch.equal(before[key], after[key]) for key in convs]
    assert kept == [True, True] + [False] * (len(convs) - 2)
    assert not torch.equal(before["gen_ab.model.0.1.weight"], after["gen_ab.model.0.1.weight"])
    assert json.loads((out / "config.json").read_text())["train"]["freeze_d"] == 2
    # a resume continues from its own checkpoint: another --init-from is refused
    code = main([*TRAIN, "--resume", "--max-steps", "5", "--init-from", str(tmp_path),
                 "--out", str(out)])  # fmt: skip
    assert code == 2 and "--init-from only starts a run" in one_line(capsys)
    # the command that started it, with --resume added, goes on (and records no change)
    assert train(out, "--init-from", str(source_run), "--resume", steps=4) == 0
    changes = json.loads((out / "config.json").read_text())["train"]["changes"]
    assert changes == [{"step": 3, "max_steps": [3, 4]}]


def test_init_from_takes_the_generators_at_step_0(source_run, tmp_path):
    out = tmp_path / "copy"
    # one step at a zero learning rate leaves the weights as they were given
    assert train(out, "--init-from", str(source_run), "--lr", "1e-30", steps=1) == 0
    given, kept = load_file(source_run / "model.safetensors"), load_file(out / "model.safetensors")
    for key in given:
        assert torch.allclose(given[key], kept[key]), key


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--ngf", "16"], "its --ngf is 8, this run's 16 (gen_ab: "),
        (["--freeze-d", "9"], "--freeze-d 9: disc_a has 5 layers"),
    ],
)
def test_an_incompatible_start_is_one_line(source_run, tmp_path, capsys, extra, said):
    assert train(tmp_path / "new", "--init-from", str(source_run), *extra) == 2
    assert said in one_line(capsys)


def test_init_from_refusals(source_run, tmp_path, capsys):
    assert train(tmp_path / "a", "--freeze-d", "1") == 2
    assert "give that run with --init-from RUN" in one_line(capsys)
    assert train(tmp_path / "b", "--init-from", str(tmp_path)) == 2
    assert "no facefilter run there" in one_line(capsys)
    code = main(["train", "trvae", "--data", "synth:photo,anime?count=8", "--size", "32",
                 "--init-from", str(source_run), "--out", str(tmp_path / "c")])  # fmt: skip
    assert code == 2 and "is a cyclegan-lite run; this run trains trvae" in one_line(capsys)


def test_a_filter_without_its_state_gives_its_generators_only(source_run, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((source_run / name).read_bytes())
    assert train(tmp_path / "new", "--init-from", str(bare)) == 0
    assert "disc_a, disc_b start fresh" in capsys.readouterr().out
    assert train(tmp_path / "frozen", "--init-from", str(bare), "--freeze-d", "1") == 2
    assert "has no state/ with them" in one_line(capsys)


# --- a small target set -------------------------------------------------------------------
def test_limit_takes_the_first_faces_of_each_split():
    every = open_source("synth:anime?count=40", 32, "train")
    first = open_source("synth:anime?count=40&limit=5", 32, "train")
    assert len(first) == 5 < len(every)
    assert first.identities() == every.identities()[:5]
    assert torch.equal(first[4]["image"], every[4]["image"])
    men = open_source("synth:photo?count=40&where=Male&limit=3", 32, "train")
    assert len(men) == 3 and men.attribute_table()[:, men.attr_names.index("Male")].all()
