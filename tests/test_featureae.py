"""Feature editors (dcae, pgae): growth, attribute vectors, the VGG19 file, edits."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from facefilter.errors import UserError
from facefilter.models import config_class, create_family
from facefilter.models.featureae import FeatureAutoencoder, focus_mask
from facefilter.models.perceptual import VGGFeatures
from facefilter.models.pgae import growth, phase_length, resolutions
from facefilter.models.targets import Direction, Target
from facefilter.models.vectors import check_count, fit_vectors, pick_faces
from facefilter.pretrained import load_vgg19_layers, vgg19_shapes
from facefilter.training.config import TrainConfig
from facefilter.training.engine import train

TINY = {"channels": 8, "max_channels": 16, "latent_dim": 8, "vector_count": 5}


# --- progressive growing -------------------------------------------------------------------
def test_growth_fades_each_resolution_in_then_trains_it():
    levels = len(resolutions(64))
    assert resolutions(64) == [8, 16, 32, 64]
    seen = [growth(step, 10, levels) for step in range(0, 80, 5)]
    assert seen[:4] == [(0, 1.0), (0, 1.0), (1, 0.0), (1, 0.5)]  # 8 px, then 16 fades in
    assert seen[4:6] == [(1, 1.0), (1, 1.0)]  # 16 px alone
    assert seen[10:12] == [(3, 0.0), (3, 0.5)]  # 64 fades in
    assert all(level == 3 and alpha == 1.0 for level, alpha in seen[12:])  # and stays
    assert phase_length(800, levels, 0) == 100 and phase_length(800, levels, 7) == 7


def test_pgae_runs_at_the_resolution_reached_and_its_grid_says_so():
    family = create_family("pgae", config_class("pgae")(**TINY), ["Smiling", "Male"], 32)
    net = family.nets["ae"]
    net.set_growth(1, 0.25)  # 16 px, fading in
    assert net.working_size == 16
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    result = net(torch.nn.functional.avg_pool2d(images, 2))
    assert result.image.shape == (3, 3, 16, 16)
    family.vectors[0] = 1.0
    family.vector_counts[0] = torch.tensor([3, 3])
    out = family.translate(images, "+Smiling")
    assert out.shape == images.shape  # back at the run's size
    assert family.growth_note() == ", fading in (alpha 0.25)"
    grid = family.sample_grid({"image": images})
    assert grid.shape[0] == 3 and grid.shape[2] > 3 * 64  # input, decoded, +Smiling; enlarged


# --- attribute vectors -----------------------------------------------------------------------
def test_vectors_are_the_mean_code_with_minus_the_mean_code_without():
    table = torch.tensor([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0], [0, 1]], dtype=torch.float32)
    codes = torch.randn(6, 4)
    fit = fit_vectors(lambda images: images, lambda i: codes[i], table, ["A", "B"], count=10)
    for a in range(2):
        has = table[:, a] > 0.5
        torch.testing.assert_close(fit.vectors[a], codes[has].mean(0) - codes[~has].mean(0))
    assert fit.counts.tolist() == [[3, 3], [3, 3]]
    few = fit_vectors(lambda images: images, lambda i: codes[i], table, ["A", "B"], count=2,
                      chosen=["B"])  # fmt: skip
    assert few.counts.tolist() == [[0, 0], [2, 2]]


def test_faces_are_picked_in_one_shared_order():
    table = (torch.rand(200, 3) < 0.3).float()
    picks = pick_faces(table, count=20)
    for a, (with_it, without) in enumerate(picks):
        assert len(with_it) == 20 and bool((table[with_it, a] == 1).all())
        assert len(without) == 20 and bool((table[without, a] == 0).all())
    assert len({int(i) for pair in picks for side in pair for i in side}) < 6 * 20  # shared


def test_an_attribute_no_face_has_gets_no_vector():
    table = torch.tensor([[1, 0], [0, 0], [1, 0]], dtype=torch.float32)
    fit = fit_vectors(lambda x: x, lambda i: torch.ones(2) * i, table, ["A", "B"], count=5)
    assert fit.counts.tolist() == [[2, 1], [0, 0]]


def test_an_explicit_count_must_be_met():
    table = torch.tensor([[1], [0], [0], [0]], dtype=torch.float32)
    with pytest.raises(
        UserError, match="1 of the 4 faces have A and 3 lack it; lower --count to 1"
    ):
        check_count(table, ["A"], ["A"], 2)


# --- edits -------------------------------------------------------------------------------------
@pytest.fixture
def editor() -> FeatureAutoencoder:
    torch.manual_seed(0)
    family = create_family("dcae", config_class("dcae")(**TINY), ["Smiling", "Male", "Bald"], 32)
    assert isinstance(family, FeatureAutoencoder)
    family.vectors = torch.randn(3, 8)
    family.vector_counts = torch.tensor([[5, 5], [5, 5], [0, 0]])
    family.eval()
    return family


def test_only_attributes_with_vectors_are_offered(editor):
    assert editor.targets() == ["+Smiling", "-Smiling", "+Male", "-Male"]
    with pytest.raises(UserError, match="unknown attribute 'Bald'"):
        editor.translate(torch.zeros(1, 3, 32, 32), "+Bald")


def test_amounts_scale_the_strength_and_edits_add_up(editor):
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    one = editor.translator(Direction(None, Target("Smiling", 1)))
    heavy = editor.translator(Direction(None, Target("Smiling", 1, 1.5)))
    torch.testing.assert_close(heavy(images, torch.full((2,), 0.4)),
                               one(images, torch.full((2,), 0.6)))  # fmt: skip
    both = Direction(None, Target("Smiling", 1, 1.5), (Target("Male", -1),))
    delta, scale = editor.edit_delta(both)
    torch.testing.assert_close(delta, 1.5 * editor.vectors[0] - editor.vectors[1])
    assert scale == 1.0
    assert torch.equal(editor.translator(both)(images, torch.zeros(2)), images)


def test_keep_adds_the_edit_to_the_photo_and_decode_returns_the_decode(editor):
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    direction = Direction(None, Target("Smiling", 1))
    ae = editor.nets["ae"]
    code = ae.encode(images)[0]
    edited, plain = ae.decode(code + editor.vectors[0]), ae.decode(code)
    editor.config.edit_focus = 0.0  # the edit everywhere, as the write-up applies it
    kept = editor.translator(direction)(images, torch.ones(2))
    torch.testing.assert_close(kept, (images + (edited - plain)).clamp(-1, 1))
    editor.config.edit_detail = "decode"
    decoded = editor.translator(direction)
    torch.testing.assert_close(decoded(images, torch.ones(2)), edited)
    assert torch.equal(decoded(images, torch.zeros(2)), images)  # to the bit


def test_focus_keeps_the_edit_where_the_decoded_change_is_strong(editor):
    images = torch.rand(2, 3, 32, 32) * 0.2
    direction = Direction(None, Target("Smiling", 1))
    editor.config.edit_focus = 0.0
    everywhere = editor.translator(direction)(images, torch.ones(2)) - images
    editor.config.edit_focus = 0.5
    focused = editor.translator(direction)(images, torch.ones(2)) - images
    mask = focus_mask(everywhere, 0.5)
    torch.testing.assert_close(focused, everywhere * mask)
    assert 0 < (mask == 0).float().mean() < 1  # weak changes dropped, strong ones kept
    assert (mask.amax(dim=(1, 2, 3)) > 0.999).all()  # the peak of each change is kept whole


# --- the VGG19 file ------------------------------------------------------------------------
def vgg_file(tmp_path, name="vgg19.pth", **replace):
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in VGGFeatures().layers.state_dict().items()}
    state |= replace
    torch.save(state, tmp_path / name)
    return tmp_path / name


def test_a_truncated_or_whole_vgg19_state_dict_loads(tmp_path):
    path = vgg_file(tmp_path)
    assert set(load_vgg19_layers(path, 12)) == {f"layers.{i}.{p}" for i in (0, 2, 5, 7, 10)
                                               for p in ("weight", "bias")}  # fmt: skip
    # the whole of torchvision's vgg19, every tensor of its real shape (stored as views of
    # one value, so the test file stays small)
    whole = {k: torch.zeros(1).expand(*shape) for k, shape in vgg19_shapes().items()}
    torch.save(whole, tmp_path / "whole.pth")
    assert len(load_vgg19_layers(tmp_path / "whole.pth", 12)) == 10


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        ({"features.0.weight": torch.zeros(32, 3, 3, 3)}, r"features.0.weight has shape \(32"),
        ({"features.17.weight": torch.zeros(256, 256, 3, 3)}, "another network"),  # vgg16
        ({"features.1.running_mean": torch.zeros(64)}, "another network"),  # vgg19_bn
    ],
)
def test_a_wrong_vgg_file_is_one_line(tmp_path, replace, message):
    with pytest.raises(UserError, match=message):
        load_vgg19_layers(vgg_file(tmp_path, **replace), 12)


def test_missing_or_broken_vgg_files_are_one_line(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_vgg19_layers(tmp_path / "nope.pth", 12)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable weights file"):
        load_vgg19_layers(tmp_path / "junk.pth", 12)
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "short.pth")
    with pytest.raises(UserError, match=r"lacks features\.0\.bias"):
        load_vgg19_layers(tmp_path / "short.pth", 12)


def test_training_with_vgg_weights_logs_the_dfc_loss(tmp_path):
    path = vgg_file(tmp_path)
    out = train(TrainConfig(out=tmp_path / "run", data="synth:photo?count=20", size=32,
                            batch_size=4, max_steps=2, num_workers=0, progress=False, log_every=1),
                "dcae", config_class("dcae")(**TINY, vgg_weights=str(path)))  # fmt: skip
    assert '"dfc"' in (out / "metrics.jsonl").read_text()
    assert not any(key.startswith("vgg") for key in load_file(out / "model.safetensors"))


def test_a_pgae_run_resumed_in_the_middle_of_a_fade_continues_exactly(tmp_path):
    settings = dict(data="synth:photo?count=20", size=32, batch_size=4, max_steps=8,
                    num_workers=0, progress=False, save_every=100, sample_every=100)  # fmt: skip
    model = config_class("pgae")(**TINY, phase_steps=4)  # steps 4..7: 16 px fades in
    straight = train(TrainConfig(out=tmp_path / "straight", **settings), "pgae", model)
    paused = TrainConfig(out=tmp_path / "paused", stop_at=6, **settings)  # alpha 0.5 next
    train(paused, "pgae", model)
    paused.resume, paused.stop_at = True, None
    train(paused, "pgae", model)
    a = load_file(straight / "state" / "networks.safetensors")
    b = load_file(paused.out / "state" / "networks.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert float(a["ae.alpha"]) == 0.75 and int(a["ae.level"]) == 1  # the last step's


def test_a_pgae_run_continued_with_more_steps_keeps_its_phases(tmp_path):
    """The automatic phase length is fixed when training starts: raising --max-steps on
    resume must not shrink the network back to a lower resolution."""
    settings = dict(data="synth:photo?count=20", size=32, batch_size=4, num_workers=0,
                    progress=False, save_every=100, sample_every=100)  # fmt: skip
    model = config_class("pgae")(**TINY)  # phase_steps 0: 12 steps / 6 phases = 2 a phase
    first = TrainConfig(out=tmp_path / "run", max_steps=12, **settings)
    train(first, "pgae", model)
    first.resume, first.max_steps = True, 40
    train(first, "pgae", model)
    state = load_file(tmp_path / "run" / "state" / "networks.safetensors")
    assert int(state["ae.phase"]) == 2 and int(state["ae.level"]) == 2  # still at 32 px


def test_settings_that_only_change_inference_may_change_on_resume(tmp_path):
    settings = dict(data="synth:photo?count=20", size=32, batch_size=4, num_workers=0,
                    progress=False, max_steps=4)  # fmt: skip
    run = TrainConfig(out=tmp_path / "run", stop_at=2, **settings)
    train(run, "dcae", config_class("dcae")(**TINY))
    run.resume, run.stop_at = True, None
    train(run, "dcae", config_class("dcae")(**TINY, edit_focus=0.0, edit_detail="decode"))
    assert '"edit_focus": 0.0' in (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(UserError, match="--latent-dim 16 would change the model"):
        train(run, "dcae", config_class("dcae")(**(TINY | {"latent_dim": 16})))
