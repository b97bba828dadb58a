"""The model contract, checked for every registered family on tiny configs.

A new family gets these tests by adding one line to TINY: its tiny settings and the
logged loss that must fall when it overfits one batch. VARIANTS run the same tests on
options that change the training networks (another discriminator, input noise).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file
from torch import Tensor, nn

from facefilter.data.loading import TrainingData
from facefilter.errors import UserError
from facefilter.models import (
    FAMILIES,
    FamilyEntry,
    capable,
    config_class,
    create_family,
    family_class,
    offers,
)
from facefilter.models.base import Family, Progress
from facefilter.models.capabilities import CAPABILITIES, EditsCodes, Predicts, Translates
from facefilter.models.cyclegan import CycleGAN, CycleGANConfig
from facefilter.runs import checkpoint
from facefilter.runs.config import WEIGHTS_FILE
from facefilter.runs.weights import load_family
from facefilter.training.config import TrainConfig
from facefilter.training.engine import train

SIZE = 32
TINY: dict[str, tuple[dict[str, Any], str]] = {
    "cyclegan": ({"ngf": 8, "ndf": 8, "n_blocks": 1, "pool_size": 2}, "g_total"),
    "cyclegan-lite": ({"ngf": 8, "ndf": 8, "n_blocks": 1, "pool_size": 2}, "g_total"),
    "trvae": ({"channels": (8, 16), "latent_dim": 8, "mmd_dim": 16, "lr": 3e-3,
               "kl_warmup_steps": 0, "mmd_warmup_steps": 0}, "recon"),
    "dcae": ({"channels": 8, "max_channels": 16, "latent_dim": 8, "lr": 3e-3,
              "vector_count": 3}, "pixel"),
    "pgae": ({"channels": 8, "max_channels": 16, "latent_dim": 8, "lr": 3e-3,
              "vector_count": 3, "phase_steps": 2}, "pixel"),
    # the critic learns to tell the two sets apart: the share it misjudges falls
    "makeover": ({"encoder": (8, 16), "decoder": (48, 16), "width": 8, "critic": (8, 16),
                  "lr_start": 1e-3, "lr_end": 1e-4, "critic_lr": 1e-3,
                  "annealing_half_life": 20}, "d_error"),
    "classifier": ({"channels": (8, 16), "lr": 3e-3}, "loss"),
    "template": ({"width": 8, "ndf": 8, "lr": 1e-3}, "d"),
}  # fmt: skip
# makeover the way before its measured defaults: deep-makeover's Wasserstein critic with a
# gradient penalty, 2 critic steps, the pixel scale that held its unmasked generator
WGAN_MAKEOVER = {"gan_loss": "wgan-gp", "critic_steps": 2, "pixel_scale": 30.0, "warmup_share": 0.0}
# name -> (family, settings[, the loss the overfit test watches instead of the family's])
VARIANTS: dict[str, tuple[Any, ...]] = {
    "cyclegan-lite+dilated+noise": ("cyclegan-lite", {"disc": "dilated", "input_noise": 0.1}),
    # every image a discriminator sees augmented: resume must redraw the same transforms
    "cyclegan-lite+diffaugment": ("cyclegan-lite", {"diff_augment": "color,translation,cutout"}),
    # (the critic misjudges a tiny batch as often through its transforms: watch its loss,
    # the Wasserstein one, which falls far in 60 steps where the GAN loss stays near chance)
    "makeover+diffaugment": (
        "makeover",
        {**WGAN_MAKEOVER, "diff_augment": "color,translation,cutout"},
        "d",
    ),
    "dcae+variational": ("dcae", {"variational": True, "kl_weight": 1e-4}),
    "pgae+variational": ("pgae", {"variational": True, "phase_steps": 1}),  # grows every step
    # the whole face repainted, as deep-makeover's generator did; and no EMA
    "makeover+wgan-gp+unmasked": ("makeover", {**WGAN_MAKEOVER, "masked": False, "ema_decay": 0.0}),
    "makeover+wgan-clip+ema": (
        "makeover",
        {"gan_loss": "wgan-clip", "critic_steps": 2, "ema_decay": 0.9},
    ),
}
# The template family (models/template_family.py), which teaches the contract, is held to it
# too: registered only while each test of this file runs (`template_registered`).
TEMPLATE = FamilyEntry("facefilter.models.template_family", "Template", "TemplateConfig",
                       "the template family", (Translates,))  # fmt: skip
REGISTERED = {**FAMILIES, "template": TEMPLATE}
CASES = sorted(TINY)  # every family
FILTERS = [n for n in CASES if any(issubclass(c, Translates) for c in REGISTERED[n].can)]
TRAINING_CASES = sorted([*TINY, *VARIANTS])  # and the variants that change training only
DOMAINS = ["photo", "anime"]
# a classifier's domains: two attributes named like DOMAINS, and two styles
CLASSIFIER_DOMAINS = [*DOMAINS, "style:photo", "style:anime"]


@pytest.fixture(autouse=True)
def template_registered(monkeypatch):
    monkeypatch.setitem(FAMILIES, "template", TEMPLATE)


def test_every_registered_family_is_a_case():
    assert set(REGISTERED) == set(TINY)


def case(case_id: str) -> tuple[str, dict[str, Any], str]:
    """(family name, tiny settings, watched loss) of a test case."""
    name, extra, *watch = VARIANTS.get(case_id, (case_id, {}))
    settings, watched = TINY[name]
    return name, settings | extra, watch[0] if watch else watched


class TinyAttributes(torch.utils.data.Dataset):
    """Six faces with two attributes (named like DOMAINS), the first of which brightens
    the face: what an attribute editor fits its vectors on."""

    attr_names = DOMAINS

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        attrs = self.attribute_table()[index]
        return {"image": smooth(6, 3)[index] * 0.3 + attrs[0] - 0.5, "attrs": attrs}

    def attribute_table(self) -> Tensor:
        return torch.tensor([[i % 2, i // 3] for i in range(6)], dtype=torch.float32)


def tiny_family(case_id: str, **overrides: Any) -> Family:
    """A tiny family of the case, ready to apply (an attribute editor has its vectors)."""
    name, settings, _ = case(case_id)
    torch.manual_seed(0)
    domains = CLASSIFIER_DOMAINS if offers(name, Predicts) else DOMAINS
    family = create_family(name, config_class(name)(**(settings | overrides)), domains, SIZE)
    if family.data_kind == "attributes":  # an untrained encoder maps every face near 0
        data = TinyAttributes()
        batch = {"image": torch.stack([data[i]["image"] for i in range(6)])}
        family.opts = family.build_optimizers()
        for step in range(20):
            family.train_step(batch, Progress(step, 20))
        family.opts = {}
        family.after_training(TrainingData(data, [], DOMAINS, {}, 6))
    return family


def smooth(count: int, seed: int) -> Tensor:
    """(count, 3, S, S) in [-1, 1]: upsampled noise, learnable unlike per-pixel noise."""
    low = torch.rand(count, 3, 4, 4, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return nn.functional.interpolate(low, size=SIZE, mode="bilinear")


def batch_for(family: Family, count: int = 4) -> dict[str, Tensor]:
    if family.data_kind == "unpaired":
        return {"real_a": smooth(count, 1), "real_b": smooth(count, 2) * 0.5 + 0.3}
    if family.data_kind == "attributes":
        return {"image": smooth(count, 1), "attrs": TinyAttributes().attribute_table()[:count]}
    if family.data_kind == "labels":  # attributes and a style per face, to be told apart
        return {
            "image": smooth(count, 1),
            "attrs": TinyAttributes().attribute_table()[:count],
            "label": torch.arange(count) % 2,
        }
    return {"image": smooth(count, 1), "label": torch.arange(count) % len(family.domains)}


def data_flags(family_name: str) -> dict[str, str]:
    """TrainConfig data fields for a family: two domains, two classes, or faces with an
    attribute table, all synthetic."""
    kind = family_class(family_name).data_kind
    if kind == "unpaired":
        return {"data_a": "synth:photo?count=10", "data_b": "synth:anime?count=10"}
    if kind == "attributes":
        return {"data": "synth:photo?count=20"}
    return {"data": "synth:photo,anime?count=10"}  # classes (trvae), labels (classifier)


def test_every_registered_family_has_a_tiny_config():
    assert set(TINY) == set(FAMILIES), "add the new family's tiny settings to TINY"


@pytest.mark.parametrize("name", TRAINING_CASES)
def test_overfits_one_batch(name):
    family = tiny_family(name)
    family.setup(Accelerator(cpu=True))
    batch, watched = batch_for(family), case(name)[2]
    losses = []
    for step in range(60):
        torch.manual_seed(step)
        family.train()
        losses.append(family.train_step(batch, Progress(step, 60))[watched])
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.6 * first, (watched, first, last)


@pytest.mark.parametrize("name", CASES)
def test_inference_builds_only_inference_networks(name):
    trainer = tiny_family(name)
    applier = create_family(case(name)[0], trainer.config, trainer.domains, SIZE, training=False)
    assert set(applier.nets) == set(applier.inference_names) == set(trainer.inference_names)
    assert not applier.helpers and not applier.opts
    if offers(name, Translates):
        applier = capable(applier, Translates)
        for direction in applier.directions():
            assert str(direction.target) in applier.targets()
        assert capable(trainer, Translates).directions()


@pytest.mark.parametrize("name", CASES)
def test_the_registry_declares_what_the_class_can_do(name):
    """Capabilities come from the table (so config.json alone tells what a run can do):
    they must be exactly those the class derives from, and `capable` refuses the others
    in one line naming the families that have them."""
    cls = family_class(name)
    for capability in CAPABILITIES:
        assert offers(name, capability) == issubclass(cls, capability), (name, capability)
    family = tiny_family(name)
    for capability in CAPABILITIES:
        if not offers(name, capability):
            with pytest.raises(UserError, match=f"is a {name} model, not .* need a .* run"):
                capable(family, capability, "runs/x")
    assert offers(name, Translates) or offers(name, Predicts)  # every family is of some use
    if offers(name, EditsCodes):
        assert offers(name, Translates)  # an editor applies like any filter


def outputs_of(family: Family, images: Tensor) -> list[Tensor]:
    """What a family makes of `images`: each direction's translation at strength 0.7, or a
    classifier's probabilities and features."""
    if offers(family.registry_name, Predicts):
        return list(capable(family, Predicts).predict(images))
    translator = capable(family, Translates)
    return [translator.translate(images, d.target, d.source, strength=0.7)
            for d in translator.directions()]  # fmt: skip


@pytest.mark.parametrize("name", FILTERS)
def test_strength_zero_is_the_input_and_one_is_the_default(name):
    family = capable(tiny_family(name), Translates)
    family.eval()
    images = smooth(3, 5)
    for direction in family.directions():
        zero = family.translate(images, direction.target, direction.source, strength=0.0)
        torch.testing.assert_close(zero, images, rtol=0, atol=1e-5)
        default = family.translate(images, direction.target, direction.source)
        one = family.translate(images, direction.target, direction.source, strength=1.0)
        assert torch.equal(default, one)
        assert (one - images).abs().mean() > 1e-3  # the untrained filter still does something


@pytest.mark.parametrize("name", CASES)
def test_save_load_round_trip(name, tmp_path):
    family = tiny_family(name)
    family.setup(Accelerator(cpu=True))
    family.train()
    family.train_step(batch_for(family), Progress(0, 2))
    checkpoint.save_checkpoint(tmp_path, family, 1, {"framing": None})
    loaded = load_family(tmp_path)
    images = smooth(2, 9)
    family.eval()
    expected, got = outputs_of(family, images), outputs_of(loaded, images)
    assert expected and len(expected) == len(got)
    assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True)), name


@pytest.mark.parametrize("name", TRAINING_CASES)
def test_resume_is_exact_through_the_engine(name, tmp_path):
    family, tiny, _ = case(name)
    settings = dict(size=SIZE, batch_size=2, max_steps=4, num_workers=0, progress=False,
                    log_every=1, sample_every=100, save_every=100)  # fmt: skip
    settings |= data_flags(family)
    model = config_class(family)(**tiny)
    straight = train(TrainConfig(out=tmp_path / "straight", **settings), family, model)
    paused = TrainConfig(out=tmp_path / "paused", stop_at=2, **settings)
    train(paused, family, model)
    paused.resume, paused.stop_at = True, None
    train(paused, family, model)
    a = load_file(straight / "state" / "networks.safetensors")
    b = load_file(paused.out / "state" / "networks.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), name


@pytest.mark.parametrize("name", FILTERS)
def test_export_parity(name, tmp_path):
    pytest.importorskip("onnxruntime")
    from facefilter.inference.onnx import PARITY_TOLERANCE, export_module, parity

    family = capable(tiny_family(name), Translates)
    family.eval()
    direction = family.directions()[0]
    module = family.translator(direction)
    path = tmp_path / "f.onnx"
    dynamic = export_module(module, path, SIZE)
    assert parity(module, path, SIZE, batch=3) < PARITY_TOLERANCE  # batch 3: the axis is dynamic
    if dynamic:  # fully convolutional: other sizes run too
        assert parity(module, path, 48) < PARITY_TOLERANCE


@pytest.mark.parametrize("name", TRAINING_CASES)
def test_sample_grid_is_a_picture_and_keeps_train_mode(name):
    family = tiny_family(name)
    family.train()
    grid = family.sample_grid(batch_for(family))
    assert grid.dim() == 3 and grid.shape[0] == 3 and min(grid.shape[1:]) > SIZE
    assert grid.min() >= 0 and grid.max() <= 1
    assert all(net.training for net in family.nets.values())


# --- the hooks new families need, shown on a CycleGAN that uses all of them ----------------
HookedConfig = CycleGANConfig  # the registry finds config and family in this module


HOOKED = FamilyEntry("test_contract", "HookedCycleGAN", "HookedConfig", "x", (Translates,))


class HookedCycleGAN(CycleGAN):
    """Keeps a frozen helper, an EMA of its generators, and a mean face after training."""

    def build_helpers(self) -> dict[str, nn.Module]:
        return {"blur": nn.Conv2d(3, 3, 3, padding=1)}

    def ema_networks(self) -> tuple[str, ...]:
        return ("gen_ab",)

    def ema_decay(self) -> float:
        return 0.5

    def train_step(self, batch, progress):
        logs = super().train_step(batch, progress)
        self.seen_totals = {*getattr(self, "seen_totals", set()), progress.total}
        return logs

    def after_training(self, data) -> None:
        images = torch.stack([data.dataset[(i, i)]["real_a"] for i in range(4)])
        self.mean_face = images.mean(0)  # (3, S, S)

    def inference_state(self) -> dict[str, Tensor]:
        return {"mean_face": self.mean_face} if hasattr(self, "mean_face") else {}

    def load_inference_state(self, state: dict[str, Tensor]) -> None:
        self.mean_face = state["mean_face"]


def test_hooks_helpers_ema_after_training_and_progress(tmp_path, monkeypatch):
    monkeypatch.setitem(FAMILIES, "hooked", HOOKED)
    seen: list[HookedCycleGAN] = []
    original_setup = HookedCycleGAN.setup

    def setup(self, accelerator):
        original_setup(self, accelerator)
        seen.append(self)

    monkeypatch.setattr(HookedCycleGAN, "setup", setup)
    out = train(TrainConfig(out=tmp_path / "run", size=SIZE, batch_size=2, max_steps=3,
                            num_workers=0, progress=False, **data_flags("cyclegan")),
                "hooked", config_class("cyclegan")(**TINY["cyclegan"][0]))  # fmt: skip
    family = seen[0]
    helper = family.helpers["blur"]
    assert "blur" not in family.nets and not any(p.requires_grad for p in helper.parameters())
    assert family.seen_totals == {3}  # schedules see the total as well as the step
    saved = load_file(out / WEIGHTS_FILE)
    assert not any(key.startswith("blur") or key.startswith("disc") for key in saved)
    ema = family.ema["gen_ab"].state_dict()
    live = family.unwrapped("gen_ab").state_dict()
    assert all(torch.equal(saved[f"gen_ab.{k}"], v) for k, v in ema.items())  # EMA is applied
    assert any(not torch.equal(ema[k], live[k]) for k in ema)
    loaded = load_family(out)
    assert isinstance(loaded, HookedCycleGAN) and not loaded.helpers
    torch.testing.assert_close(loaded.mean_face, family.mean_face)
    assert json.loads((out / "config.json").read_text())["family"] == "hooked"


def test_a_run_ended_by_its_time_budget_is_over_and_keeps_its_after_training_state(
    tmp_path, monkeypatch
):
    monkeypatch.setitem(FAMILIES, "hooked", HOOKED)
    out = train(TrainConfig(out=tmp_path / "run", size=SIZE, batch_size=2, max_steps=1000,
                            train_time=1e-9, num_workers=0, progress=False,
                            **data_flags("cyclegan")),
                "hooked", config_class("cyclegan")(**TINY["cyclegan"][0]))  # fmt: skip
    assert "state.mean_face" in load_file(out / WEIGHTS_FILE)


READS = ("item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__", "__index__")
HOST_DRAWS = ("rand", "randint", "randn", "randperm")  # with no device: the CPU's generator
# torch's optimizers keep their step count on the host, by design, and read it there
OPTIMIZERS = str(Path(torch.optim.__file__).parent)


@pytest.mark.parametrize("name", TRAINING_CASES)
def test_a_training_step_never_waits_on_the_device(name, monkeypatch):
    """A step (schedule, augmentation, train_step, EMA) reads no number from a tensor: the
    losses stay tensors until the engine logs, so a GPU's queue never drains mid-step.
    Random draws made on the host (torch.rand with no device) and the step count torch's
    optimizers keep on the host are no such read."""
    from facefilter.training.augment import flip_batch

    family = tiny_family(name)
    family.setup(Accelerator(cpu=True))
    family.train()
    batch = batch_for(family)
    family.train_step(batch, Progress(0, 6))  # the first step may read what loading left
    reads: list[str] = []

    def counting(method: str) -> Any:
        original = getattr(Tensor, method)

        def read(self: Tensor, *args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_code.co_filename
            if not getattr(self, "host_draw", False) and OPTIMIZERS not in caller:
                reads.append(f"{method} in {Path(caller).name}")
            return original(self, *args, **kwargs)

        return read

    def tagging(draw: str) -> Any:
        original = getattr(torch, draw)

        def made(*args: Any, **kwargs: Any) -> Tensor:
            tensor = original(*args, **kwargs)
            tensor.host_draw = kwargs.get("device") is None  # type: ignore[attr-defined]
            return tensor

        return made

    for method in READS:
        monkeypatch.setattr(Tensor, method, counting(method))
    for draw in HOST_DRAWS:
        monkeypatch.setattr(torch, draw, tagging(draw))
    for step in range(1, 6):
        progress = Progress(step, 6)
        family.set_learning_rates(progress)
        logs = family.train_step(flip_batch(batch, 0, step, 0), progress)
        family.update_ema()
    monkeypatch.undo()
    assert not reads, f"{name}: {len(reads)} reads from the device in 5 steps: {set(reads)}"
    assert logs and all(not torch.is_tensor(v) or v.dim() == 0 for v in logs.values())
