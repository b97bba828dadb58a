"""Evidence that the families learn, scored against true pairs of synthetic faces."""

from __future__ import annotations

import torch

from facefilter.evaluation.paired import (
    edit_score,
    identity_score,
    paired_score,
    synth_edit_pairs,
    synth_pairs,
)
from facefilter.models import config_class, create_family
from facefilter.models.cyclegan import CycleGANLiteConfig
from facefilter.models.targets import Target
from facefilter.runs.weights import load_filter
from facefilter.training.config import TrainConfig
from facefilter.training.engine import train

COUNT = 400  # synthetic faces per style: 320 train, 40 val, 40 held-out test


def test_cyclegan_lite_learns_photo_to_anime(tmp_path):
    """A few hundred CPU steps at 32 px: translations land near the true anime faces."""
    model = CycleGANLiteConfig(ngf=16, ndf=16, n_blocks=1)
    run = train(
        TrainConfig(
            out=tmp_path / "run", data_a=f"synth:photo?count={COUNT}",
            data_b=f"synth:anime?count={COUNT}", size=32, batch_size=4, max_steps=200,
            num_workers=0, progress=False, sample_every=1000, save_every=1000,
        ),
        "cyclegan-lite",
        model,
    )  # fmt: skip
    photos, true_anime = synth_pairs("photo", "anime", 32, count=COUNT, split="test")
    torch.manual_seed(0)  # the trained run started from these very weights
    untrained = create_family("cyclegan-lite", model, ["photo", "anime"], 32)
    before = paired_score(untrained, photos, true_anime, "anime")
    after = paired_score(load_filter(run), photos, true_anime, "anime")
    nothing = identity_score(photos, true_anime)
    assert after.l1 < 0.6 * before.l1, (after, before)
    assert after.l1 < 0.8 * nothing.l1, (after, nothing)  # better than returning the photo
    assert after.ssim > before.ssim + 0.2, (after, before)
    # Each output nearest its own true anime face: a mean face would score chance (1/40).
    assert after.top1 > 4 / after.count, after


def test_dcae_edits_move_faces_towards_their_true_twins(tmp_path):
    """A few hundred CPU steps at 32 px: the Eyeglasses vector adds and removes glasses.

    Scored against the true renderings of the same held-out faces with glasses flipped:
    each edit must be nearer its twin than the unedited face is (wins), keep the person
    (identity top-1 among the twins), and make a good share of the true change where the
    glasses are (progress: wins alone would reward an edit too timid to see)."""
    run = train(
        TrainConfig(out=tmp_path / "run", data="synth:photo?count=800", size=32, batch_size=32,
                    max_steps=300, num_workers=0, progress=False, sample_every=1000,
                    save_every=1000),
        "dcae",
        config_class("dcae")(channels=16, max_channels=64, latent_dim=32, vector_count=200),
    )  # fmt: skip
    model = load_filter(run)
    for sign, add in ((1, True), (-1, False)):
        faces, twins = synth_edit_pairs("Eyeglasses", add, 32, count=32)
        edited = model.translate(faces, Target("Eyeglasses", sign, 1.5))
        score = edit_score(edited, faces, twins, faces)
        # Measured: wins 0.91 (add) and 0.81 (remove), top-1 1.0, progress 0.46 both ways.
        assert score.wins >= 0.7 and score.top1 >= 0.5, (add, score)
        assert score.progress > 0.2, (add, score)
