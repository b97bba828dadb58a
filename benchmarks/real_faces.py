"""Filters trained on built-in faces, on real ones: judges with controls, identity, the gap.

    python benchmarks/real_faces.py RUN [RUN ...] --judge JUDGE [--plain-judge RUN]
        [--mosaics RUN] [--to anime] [--sheet real_faces.png] [--gap]

The real faces (none trained on; `facefilter data sample-photo --which people`): the
astronaut, Grace Hopper and the 100 people of scikit-image's `lfw_subset` (grey 25 px,
enlarged), found by dlib and aligned as each run's source domain was framed. For each run:

- style: the share of outputs the judge (a classifier run) calls the target style, beside
  the controls it must reject (`evaluation.controls`: the inputs, the inputs blurred,
  noise, the outputs scrambled) and, with `--mosaics RUN`, the real outputs of a broken
  filter, which no judge has seen; `--plain-judge` repeats it with a second judge (one
  trained without the camera and the scrambled class, to show what they buy);
- identity: dlib descriptors of each output against every input: top-1 (nearer its own
  input than the other 100), the share under the strict threshold (the distance only 5%
  of pairs of different inputs reach), and dlib's false-match rate at 0.6 on the inputs;
- the synthetic twins: paired L1 and identity top-1 on 100 held-out built-in faces.

Once, for the faces: dlib's false-match rate and top-1 at 32, 64, 128 and 256 px (where
dlib tells people apart), and with `--gap` how far the synthetic photos are from real
crops: a small CNN's accuracy telling grey face interiors of each apart (5-fold; 0.5: it
cannot).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facefilter.data.images import center_crop
from facefilter.data.real_photos import REAL_PHOTOS, lfw_faces
from facefilter.evaluation.controls import judge_controls
from facefilter.evaluation.evaluate import crops
from facefilter.evaluation.paired import score_outputs
from facefilter.evaluation.verdicts import style_score
from facefilter.face.align import align_face
from facefilter.face.arrays import import_cv2
from facefilter.face.detect import create_detector
from facefilter.face.identity import FaceDescriber, identity_summary
from facefilter.face.template import AlignConfig
from facefilter.face.types import Face
from facefilter.inference import Filter
from facefilter.inference.predictor import Classifier
from facefilter.pictures import labelled_grid, save_picture, shown_large
from facefilter.pixels import from_pixels
from facefilter.synth import SynthFaces

HELD_OUT_SEED = 12345  # no run trains on it


def real_photos() -> list[tuple[str, np.ndarray]]:
    people = [(name, REAL_PHOTOS[name][0]()) for name in ("astronaut", "grace-hopper")]
    return people + [(f"lfw-{i:03d}", face) for i, face in enumerate(lfw_faces())]


def found_faces(photos: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray, Face]]:
    detector = create_detector("dlib", upsample=1)
    kept = []
    for name, photo in photos:
        faces = sorted(detector.detect(photo), key=lambda face: face.area, reverse=True)
        if faces:
            kept.append((name, photo, faces[0]))
    return kept


def crops_for(faces: list[tuple[str, np.ndarray, Face]], align: AlignConfig) -> Tensor:
    crops = [align_face(photo, face, align)[0] for _, photo, face in faces]
    return from_pixels(torch.from_numpy(np.stack(crops))).permute(0, 3, 1, 2).contiguous()


def judged(judge: Classifier, inputs: Tensor, outputs: Tensor, style: str,
           mosaics: Tensor | None) -> str:  # fmt: skip
    """The outputs' share called `style` surely (p >= CONFIDENT) and as the likeliest,
    beside each control's (the broken filter's real mosaics too, when given)."""
    controls = judge_controls(judge, style, inputs, outputs)
    if mosaics is not None:
        score = style_score(judge.predict(mosaics), judge.styles, style)
        controls["mosaics"] = {"share": score["share"], "confident": score["confident"]}
    mine = style_score(judge.predict(outputs), judge.styles, style)
    listed = ", ".join(f"{name} {score['confident']:.2f}/{score['share']:.2f}"
                       for name, score in controls.items())  # fmt: skip
    worst = max(score["confident"] for score in controls.values())
    return (f"{mine['confident']:.2f}/{mine['share']:.2f} {style} (surely/likeliest; "
            f"controls: {listed}; worst sure {worst:.2f})")  # fmt: skip


def normalized(images: Tensor, size: int) -> Tensor:
    """Test-time normalisation toward the training look: edge-preserving smoothing (two
    bilateral passes: photographic texture goes, edges stay) and each channel's mean and
    spread matched to the synthetic photos' (colour for grey faces, their light)."""
    cv2 = import_cv2()
    smooth = []
    for picture in crops(images):
        for _ in range(2):
            picture = cv2.bilateralFilter(picture, 5, 40, 5)
        smooth.append(picture)
    out = from_pixels(torch.from_numpy(np.stack(smooth))).permute(0, 3, 1, 2)
    synth = SynthFaces("photo", size, count=200, seed=HELD_OUT_SEED)
    reference = torch.stack([synth[i]["image"] for i in range(200)])
    mean, std = reference.mean((0, 2, 3)), reference.std((2, 3)).mean(0)
    own_mean, own_std = out.mean((2, 3), keepdim=True), out.std((2, 3), keepdim=True)
    matched = (out - own_mean) / own_std.clamp(min=0.05) * std[:, None, None] + mean[:, None, None]
    return matched.clamp(-1, 1)


def synthetic_twins(flt: Filter, source: str, target: str, count: int = 100) -> str:
    faces = {style: SynthFaces(style, flt.size.side, count=count, seed=HELD_OUT_SEED)
             for style in (source, target)}  # fmt: skip
    sources, truths = (center_crop(torch.stack([faces[s][i]["image"] for i in range(count)]),
                                   flt.size) for s in (source, target))  # fmt: skip
    outputs = flt.translate(sources, next(iter(flt.expand(target, source)))).cpu()
    score, nothing = score_outputs(outputs, truths), score_outputs(sources, truths)
    return (f"L1 {score.l1:.3f} top-1 {score.top1:.2f} (do nothing: L1 {nothing.l1:.3f} "
            f"top-1 {nothing.top1:.2f}; chance {1 / count:.2f})")  # fmt: skip


def dlib_resolutions(describer: FaceDescriber, faces: list, native: int = 256) -> None:
    """dlib's false-match rate and top-1 against the native crops, by crop size."""
    align = AlignConfig(size=native)
    full = describer.describe_all(crops(crops_for(faces, align)), align)
    print(f"dlib on the {len(faces)} real inputs, by crop size (vs the {native} px crops):")
    for side in (32, 64, 128, 256):
        small = crops_for(faces, AlignConfig(size=side))
        found = describer.describe_all(crops(small), AlignConfig(size=side))
        against_native, among = identity_summary(full, found), identity_summary(found, found)
        print(f"  {side:3d} px: different people < 0.6: "
              f"{among['different_inputs_same_person']:.2f}, top-1 against the {native} px "
              f"crops {against_native['top1']:.2f}")  # fmt: skip


def interiors(images: Tensor) -> Tensor:
    """Grey face interiors (the middle of an aligned crop, between brows and chin) at 24 px."""
    side = images.shape[-1]
    grey = (images * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(1, keepdim=True)
    top, half = round(0.47 * side), round(0.19 * side)
    middle = grey[:, :, top : top + 2 * half, side // 2 - half : side // 2 + half]
    return F.interpolate(middle, size=(24, 24), mode="bilinear", antialias=True)


def gap(real: Tensor, size: int, folds: int = 5, seed: int = 0) -> float:
    """A small CNN's held-out accuracy telling real from synthetic photo interiors."""
    synth = SynthFaces("photo", size, count=len(real), seed=HELD_OUT_SEED)
    fake = torch.stack([synth[i]["image"] for i in range(len(real))])
    images = torch.cat([interiors(real), interiors(fake)])
    labels = torch.cat([torch.ones(len(real)), torch.zeros(len(real))])
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    right = 0
    for fold in range(folds):
        test = order[fold::folds]
        train = order[torch.isin(order, test, invert=True)]
        torch.manual_seed(seed + fold)
        net = nn.Sequential(
            nn.Conv2d(1, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 1),
        )  # fmt: skip
        opt = torch.optim.Adam(net.parameters(), 3e-3)
        for _ in range(300):
            loss = F.binary_cross_entropy_with_logits(net(images[train]).squeeze(1), labels[train])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            right += int(((net(images[test]).squeeze(1) > 0).float() == labels[test]).sum())
    return right / len(images)


def identity_line(describer: FaceDescriber, inputs: Tensor, outputs: Tensor,
                  align: AlignConfig) -> str:  # fmt: skip
    """Each output against every real input, by dlib (see the module docstring)."""
    found = identity_summary(describer.describe_all(crops(inputs), align),
                             describer.describe_all(crops(outputs), align))  # fmt: skip
    return (f"top-1 {found['top1']:.2f} (chance {1 / len(inputs):.3f}), same person (strict, "
            f"{found.get('strict_threshold', float('nan')):.2f}) "
            f"{found.get('same_person_strict', float('nan')):.2f}; different inputs < 0.6: "
            f"{found['different_inputs_same_person']:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="filter runs trained on built-in faces")
    parser.add_argument("--judge", type=Path, required=True, help="a classifier run")
    parser.add_argument("--plain-judge", type=Path, help="a second classifier run, compared")
    parser.add_argument("--mosaics", type=Path, help="a broken filter: its outputs are controls")
    parser.add_argument("--from", dest="source", default="photo")
    parser.add_argument("--to", dest="target", default="anime")
    parser.add_argument("--sheet", type=Path, help="PNG: real inputs and each run's outputs")
    parser.add_argument("--gap", action="store_true", help="real vs synthetic photo accuracy")
    parser.add_argument(
        "--normalize",
        action="store_true",
        help="also each run on normalised inputs (smoothed, colours matched)",
    )
    args = parser.parse_args()

    faces = found_faces(real_photos())
    print(f"{len(faces)} real faces found by dlib (of 102 photos)")
    describer = FaceDescriber()
    dlib_resolutions(describer, faces)
    judges = [Classifier.load(args.judge)] + (
        [Classifier.load(args.plain_judge)] if args.plain_judge else [])  # fmt: skip
    mosaics = None
    if args.mosaics:
        broken = Filter.load(args.mosaics)
        direction = next(iter(broken.expand(args.target, args.source)))
        mosaics = broken.translate(crops_for(faces, broken.align_config(args.source)),
                                   direction).cpu()  # fmt: skip
    rows: list[list[np.ndarray]] = []
    labels = ["real input"]
    for run in args.runs:
        flt = Filter.load(run)
        align = flt.align_config(args.source)
        inputs = crops_for(faces, align)
        variants = [("", inputs)] + ([(" normalised", normalized(inputs, flt.size.side))]
                                     if args.normalize else [])  # fmt: skip
        for name, fed in variants:
            outputs = flt.translate(fed, next(iter(flt.expand(args.target, args.source)))).cpu()
            print(f"\n{run}{name} ({flt.size} px):")
            for judge in judges:
                print(f"  judge {judge.path}: "
                      f"{judged(judge, inputs, outputs, args.target, mosaics)}")  # fmt: skip
            print(f"  dlib: {identity_line(describer, inputs, outputs, align)}")
            if not rows:
                rows.append(crops(inputs[:10]))
            rows.append(crops(outputs[:10]))
            labels.append(f"{run.name}{name}")
        print(f"  synthetic twins: {synthetic_twins(flt, args.source, args.target)}")
    if args.gap:  # the synthetic photos against the real crops, as the last run framed them
        print(f"\nreal vs synthetic photo, held-out accuracy: {gap(inputs, flt.size.side):.2f}")
    if args.sheet:
        grid = labelled_grid(shown_large(np.stack([np.stack(r) for r in rows])), rows=labels,
                             title=f"real faces, {args.source} -> {args.target}")  # fmt: skip
        save_picture(args.sheet, grid)
        print(f"\nwrote {args.sheet}")


if __name__ == "__main__":
    main()
