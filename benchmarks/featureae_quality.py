"""Do the feature editors' attribute vectors edit faces? Scored against true edited twins.

    python benchmarks/featureae_quality.py --family dcae --size 32 --steps 3000
    python benchmarks/featureae_quality.py --family pgae --size 32 --steps 3000 --loss dfc

Trains `--family` on built-in synthetic photo faces (`synth:photo`, 16 attributes),
which computes the attribute vectors at the end. Then, for Eyeglasses, Smiling,
Blond_Hair and Mustache, takes 32 held-out faces that lack the attribute and adds it
(strength 1.5), and 32 that have it and removes it, and compares each edit with the
true rendering of the same face with the attribute flipped (`synth_edit_pairs`):

- wins: the share of faces whose edit is nearer (L1) the true twin than the same
  pipeline without the edit (the issue's bar: 0.7 for every attribute);
- top-1: identity retrieval of the edits among the 32 twins (bar: 0.5; chance 0.03).

Both output modes are scored, each at `--edit-focus` 0 (the change applied everywhere,
as the write-up does), 0.35, 0.5 and 0.65: `keep detail` (the default output:
x plus the decoded change, compared with the input itself) and `decode` (the
write-up's D(z'), compared with D(z), the unedited reconstruction). `--loss dfc` adds
the deep-feature-consistent loss; without
`--vgg-weights` it uses a randomly initialised VGG19 (seeded), which is a control, not
the pretrained network the loss is meant for: the printout says which it was.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from facefilter.evaluation.paired import edit_score, identity_top1, l1_distance, synth_edit_pairs
from facefilter.inference.filter import Filter
from facefilter.models import config_class
from facefilter.models.featureae import FeatureAutoencoder, to_size
from facefilter.models.perceptual import VGGFeatures
from facefilter.models.targets import Direction, Target
from facefilter.pictures import save_picture
from facefilter.pixels import to_pixels
from facefilter.runs.weights import load_filter
from facefilter.tools.editing import feature_grid
from facefilter.training.config import TrainConfig
from facefilter.training.engine import train

ATTRIBUTES = ("Eyeglasses", "Smiling", "Blond_Hair", "Mustache")
STRENGTH = 1.5


def random_vgg_file(path: Path) -> Path:
    """A randomly initialised VGG19 up to relu3_1, in torchvision's key layout."""
    torch.manual_seed(0)
    layers = VGGFeatures().layers.state_dict()
    torch.save({f"features.{k}": v for k, v in layers.items()}, path)
    return path


MODES = ("keep", "decode")
FOCUS = (0.0, 0.35, 0.5, 0.65)


@torch.no_grad()
def edited_and_unedited(
    model: FeatureAutoencoder, faces: torch.Tensor, direction: Direction
) -> tuple[torch.Tensor, torch.Tensor]:
    """The edit at STRENGTH through the run's translator, and what the same pipeline gives
    without the edit: the input itself (keep detail), or D(z) (decode)."""
    module = model.translator(direction)
    edited = module(faces, torch.full((len(faces),), STRENGTH))
    if model.config.edit_detail == "keep":
        return edited, faces
    ae = module.ae
    plain = ae.decode(ae.encode(to_size(faces, ae.working_size))[0])
    return edited, to_size(plain, faces.shape[-1])


def score(model: FeatureAutoencoder, size: int) -> None:
    """Wins and top-1 for every attribute, both directions, each output mode and focus."""
    tasks = [(a, add) for a in ATTRIBUTES for add in (True, False)]
    pairs = {task: synth_edit_pairs(task[0], task[1], size) for task in tasks}
    names = [f"{a}{'+' if add else '-'}" for a, add in tasks]
    print(f"wins and progress at strength {STRENGTH}: the share of 32 faces whose edit is nearer "
          "its true twin than the unedited output, and the share of the true change made where "
          "the twin differs; then the lowest identity top-1")  # fmt: skip
    print(f"{'mode':>12} {'focus':>5} | " + " ".join(f"{n:>11}" for n in names) + " | top-1")
    for mode in MODES:
        for focus in FOCUS:
            model.config.edit_detail, model.config.edit_focus = mode, focus
            scores = []
            for (attribute, add), (faces, twins) in pairs.items():
                direction = Direction(None, Target(attribute, 1 if add else -1))
                edited, unedited = edited_and_unedited(model, faces, direction)
                scores.append(edit_score(edited, unedited, twins, faces))
            wins = " ".join(f"{s.wins:>6.2f} {s.progress:>4.2f}" for s in scores)
            print(f"{mode:>12} {focus:>5} | {wins} | {min(s.top1 for s in scores):.2f}",
                  flush=True)  # fmt: skip
    model.config.edit_detail, model.config.edit_focus = "keep", config_class("dcae")().edit_focus


@torch.no_grad()
def blond_breakdown(model: FeatureAutoencoder, size: int) -> None:
    """+Blond_Hair wins by what the face had: a hat or no hair (the truth barely changes),
    or visible black, brown or gray hair."""
    from facefilter.synth import SynthFaces

    kept = dict(where="-Blond_Hair", count=32 * 20, seed=12345)
    plain = SynthFaces("photo", size, **kept)
    flipped = SynthFaces("photo", size, **kept, force={"Blond_Hair": True})
    faces = torch.stack([plain[i]["image"] for i in range(96)])
    twins = torch.stack([flipped[i]["image"] for i in range(96)])
    attrs = dict(zip(plain.attr_names, plain.attribute_table()[:96].T.bool(), strict=True))
    hidden = attrs["Wearing_Hat"] | attrs["Bald"]
    groups = {"hat or bald": hidden} | {
        colour: attrs[colour] & ~hidden for colour in ("Black_Hair", "Brown_Hair", "Gray_Hair")
    }
    edited, unedited = edited_and_unedited(model, faces, Direction(None, Target("Blond_Hair", 1)))
    win = l1_distance(edited, twins) < l1_distance(unedited, twins)
    print("+Blond_Hair wins by the face's hair (96 faces): " + ", ".join(
        f"{name} {win[group].float().mean():.2f} of {int(group.sum())}"
        for name, group in groups.items()))  # fmt: skip


def sharpness(images: torch.Tensor) -> float:
    """Mean absolute Laplacian: how much fine detail there is."""
    kernel = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float32)
    kernel = kernel.expand(3, 1, 3, 3)
    return float(F.conv2d(images, kernel, groups=3).abs().mean())


@torch.no_grad()
def reconstruction(model: FeatureAutoencoder, size: int) -> None:
    faces, _ = synth_edit_pairs("Smiling", True, size, count=64)
    ae = model.inference_modules()["ae"]
    decoded = to_size(ae.decode(model.codes(faces)), size)
    print(f"reconstruction of 64 held-out faces: L1 {l1_distance(decoded, faces).mean():.4f}, "
          f"identity top-1 {identity_top1(decoded, faces):.3f}, sharpness (mean |Laplacian|) "
          f"{sharpness(decoded):.4f} vs the faces' {sharpness(faces):.4f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="dcae", choices=["dcae", "pgae"])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--count", type=int, default=4000, help="synthetic training faces")
    parser.add_argument("--loss", default="pixel", choices=["pixel", "dfc"])
    parser.add_argument("--vgg-weights", type=Path, help="torchvision's vgg19 file (--loss dfc)")
    parser.add_argument("--variational", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-featureae"))
    parser.add_argument("--reuse", action="store_true", help="score OUT/run again, no training")
    args = parser.parse_args()

    run = args.out / "run"
    if not (args.reuse and (run / "model.safetensors").is_file()):
        shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    vgg = None
    if args.loss == "dfc":
        vgg = args.vgg_weights or random_vgg_file(args.out / "random_vgg19.pth")
    what = (
        "pixel MSE"
        if vgg is None
        else "DFC + pixel MSE, VGG19 "
        + ("from " + str(vgg) if args.vgg_weights else "RANDOMLY INITIALISED (a control)")
    )
    if args.reuse and (run / "model.safetensors").is_file():
        print(f"scoring {run} again (its own settings are in {run / 'config.json'})")
    print(f"{args.family} at {args.size} px, {args.steps} steps, batch {args.batch_size}, "
          f"{args.count} faces, loss: {what}, variational: {args.variational}")  # fmt: skip
    model_config = config_class(args.family)(
        vgg_weights=str(vgg) if vgg else None, variational=args.variational)  # fmt: skip
    config = TrainConfig(out=run, data=f"synth:photo?count={args.count}", size=args.size,
                         batch_size=args.batch_size, max_steps=args.steps, seed=args.seed,
                         sample_every=max(1, args.steps // 4), save_every=args.steps,
                         progress=False)  # fmt: skip
    started = time.monotonic()
    if not (run / "model.safetensors").is_file():
        train(config, args.family, model_config)
        print(f"trained in {(time.monotonic() - started) / 60:.1f} minutes")
    model = load_filter(run)
    assert isinstance(model, FeatureAutoencoder)
    reconstruction(model, args.size)
    score(model, args.size)
    blond_breakdown(model, args.size)
    faces = [synth_edit_pairs(a, True, args.size, count=2)[0] for a in ATTRIBUTES]
    crops = list(to_pixels(torch.cat(faces)).permute(0, 2, 3, 1).numpy())
    grid = feature_grid(
        Filter.load(run),
        crops,
        [f"face {i}" for i in range(len(crops))],
        list(ATTRIBUTES),
        STRENGTH,
        enlarge_by=max(1, 64 // args.size),
    )
    save_picture(args.out / "feature_grid.png", np.ascontiguousarray(grid))
    print(f"feature grid: {args.out / 'feature_grid.png'}; samples in {run / 'samples'}")


if __name__ == "__main__":
    main()
