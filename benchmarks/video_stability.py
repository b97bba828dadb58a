"""Video flicker: how much a filtered video changes from frame to frame, motion undone.

    python benchmarks/video_stability.py [--run runs/demo] [--frames 60] [--clips pan,still]
        [--arms video,video-raw,one-by-one] [--sheet stability.png] [--json stability.json]

Clips of known motion are made from real photos (the astronaut, Grace Hopper) and one
synthetic photo face: 480x480 frames, frame t = warp(source, A_t) for a known affine
A_t, plus fresh Gaussian sensor noise (sigma 3/255) in every frame, so the input's own
residual is never zero. Motions: `still` (none), `pan` (1 px a frame to the right),
`sway` (side to side, 30 px either way every 40 frames: up to 4.7 px a frame),
`zoom+roll` (0.3% larger and 0.15 degrees more roll a frame, round the face) and
`light` (none; brightness falls to 0.8 and gamma rises to 1.2 over the clip).

Residual of a sequence (the input or an arm's output): for each pair of frames, frame
t-1 warped into frame t by the known motion A_t A_{t-1}^-1 (bilinear), the mean
absolute difference from frame t inside the head region (the source's dlib face box,
1.5x about its centre, mapped by A_t and eroded by 3 px), in /255, averaged over the
clip. The input's residual is interpolation and noise (and, for `light`, the lighting
change itself: reported raw). Arms (`make_tracker`): `video` (what `apply` runs on a
video: `filter_frame` with the default `Tracker`), `video-raw` (its landmark smoothing
off), `one-by-one` (every frame through the photo filter alone), and for diagnosis
`video-ema` (the moving average the One Euro filter replaced), `video-full` (the whole
frame searched every frame, not only round the tracked face) and `true-landmarks`
(every frame alone, aligned with the true landmarks: the flicker left with perfect
alignment, the filter's own response to the noise). Goal: on every clip `video`
changes no more than `one-by-one` and at most 1.2x the input's residual.

Alignment (second table): the landmarks each arm aligned with. `lag`: frames behind
one-by-one's fresh detection of the same frame, along the true motion (the source's
landmarks mapped by A_t; an EMA of weight 0.6 trails a steady motion by 0.67 frames);
one-by-one's own lag is measured against those true landmarks (the detector's bias,
which on zoom+roll, where landmarks move a fraction of a pixel a frame, is large).
`jitter`: the RMS of each frame's landmark step minus the true step (px): what moves
the output when the face did not. `error`: mean px from the true landmarks.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facefilter.data.real_photos import astronaut, grace_hopper
from facefilter.face import DetectorSettings, Face
from facefilter.face.arrays import import_cv2
from facefilter.face.geometry import apply_affine, compose_affine, invert_affine
from facefilter.face.smoothing import OneEuro
from facefilter.inference import FaceOptions, Filter, NoFaceError, PhotoFilter, Request
from facefilter.inference.video import Tracker, filter_frame
from facefilter.pictures import labelled_grid, save_picture
from facefilter.pixels import to_pixels
from facefilter.runs.config import write_json
from facefilter.synth import SynthFaces

SIDE = 480  # frames are SIDE x SIDE
NOISE = 3.0  # sensor noise, sigma in /255
PAN = 1.0  # px a frame
CHANGE_GAIN = 8  # the sheet's change rows: |frame - previous frame, moved| this much brighter
SWAY, SWAY_FRAMES = 30.0, 40  # px either side, frames a period: up to 4.7 px a frame
ZOOM, ROLL = 1.003, 0.15  # a frame: scale factor, degrees
LIGHT = (0.8, 1.2)  # brightness and gamma at the clip's end (1, 1 at its start)
HEAD_GROW, ERODE = 1.5, 3  # the head region: face box times this, eroded by these px
GOAL = 1.2  # the video's residual at most this times the input's
SYNTH_SEED, SYNTH_SIDE = 12345, 320  # held-out synthetic faces, shown this large
ONE_BY_ONE = "one-by-one"
TRUE_LANDMARKS = "true-landmarks"  # diagnosis: every frame alone, aligned with the truth
TRACKERS: dict[str, dict[str, Any]] = {  # arm -> Tracker's settings
    "video": {},
    "video-raw": {"smooth": False},  # --no-smoothing
    # the moving average the tracker had before its One Euro filter (weight 0.6 on the new
    # landmarks: a fixed cutoff of 1 / (2 pi (1 / 0.6 - 1)) cycles a frame)
    "video-ema": {"settings": OneEuro(min_cutoff=0.2387, beta=0.0)},
    "video-full": {"full_every": 1},
}
DEFAULT_ARMS = ("video", "video-raw", ONE_BY_ONE)
MOTIONS = ("still", "pan", "sway", "zoom+roll", "light")
DEFAULT_CLIPS = (
    *(f"astronaut/{m}" for m in MOTIONS),
    *(f"grace-hopper/{m}" for m in MOTIONS[:4]),
    *(f"synthetic/{m}" for m in MOTIONS[:4]),
)


def make_tracker(arm: str) -> Tracker | None:
    """The tracker an arm filters with; None: every frame alone."""
    return None if arm in (ONE_BY_ONE, TRUE_LANDMARKS) else Tracker(**TRACKERS[arm])


@dataclass
class Source:
    name: str
    image: np.ndarray  # (H, W, 3) uint8
    face: Face  # found once by dlib, in the image's pixels


@dataclass
class Clip:
    name: str
    frames: list[np.ndarray]  # (SIDE, SIDE, 3) uint8
    motions: list[np.ndarray]  # A_t: source pixels -> frame t pixels, (2, 3)
    masks: list[np.ndarray]  # the head region of frame t, (SIDE, SIDE) bool
    truth: list[np.ndarray]  # the source's landmarks in frame t, (5, 2)


@dataclass
class Arm:
    outputs: list[np.ndarray] = field(default_factory=list)
    landmarks: list[np.ndarray | None] = field(default_factory=list)  # those aligned with
    seconds: float = 0.0


def synthetic_photo(detector: PhotoFilter) -> np.ndarray:
    """The first held-out synthetic photo face dlib finds, SYNTH_SIDE px. (H, W, 3) uint8"""
    cv2 = import_cv2()
    faces = SynthFaces("photo", 256, count=16, seed=SYNTH_SEED)
    for index in range(len(faces)):
        pixels = to_pixels(faces[index]["image"]).permute(1, 2, 0).numpy()
        image = cv2.resize(pixels, (SYNTH_SIDE, SYNTH_SIDE), interpolation=cv2.INTER_CUBIC)
        if detector.find_faces(image):
            return image
    raise SystemExit("no synthetic face found by the detector")


def load_sources(names: set[str], photo_filter: PhotoFilter) -> dict[str, Source]:
    makers = {"astronaut": astronaut, "grace-hopper": grace_hopper,
              "synthetic": lambda: synthetic_photo(photo_filter)}  # fmt: skip
    sources = {}
    for name in sorted(names):
        image = makers[name]()
        faces = photo_filter.find_faces(image)
        if not faces:
            raise SystemExit(f"{name}: no face found in the source photo")
        sources[name] = Source(name, image, faces[0])
    return sources


def face_centre(face: Face) -> np.ndarray:
    x0, y0, x1, y1 = face.box
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2])


def first_motion(source: Source) -> np.ndarray:
    """A_0: a translation putting the face as near the frame's centre as the photo allows
    (the frame inside the photo where it is large enough, else the photo centred)."""
    height, width = source.image.shape[:2]
    offset = []
    for centre, size in zip(face_centre(source.face), (width, height), strict=True):
        ideal = centre - SIDE / 2
        offset.append(min(max(ideal, 0.0), size - SIDE) if size >= SIDE else (size - SIDE) / 2)
    return np.array([[1.0, 0.0, -round(offset[0])], [0.0, 1.0, -round(offset[1])]])


def motion_at(kind: str, t: int, centre: np.ndarray) -> np.ndarray:
    """The camera's motion from frame 0 to frame t (frame pixels -> frame pixels)."""
    if kind == "pan":
        return np.array([[1.0, 0.0, PAN * t], [0.0, 1.0, 0.0]])
    if kind == "sway":  # a head moving side to side: up to 4.7 px a frame, turning back
        return np.array([[1.0, 0.0, SWAY * math.sin(2 * math.pi * t / SWAY_FRAMES)],
                         [0.0, 1.0, 0.0]])  # fmt: skip
    if kind == "zoom+roll":
        cv2 = import_cv2()
        return cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), -ROLL * t, ZOOM**t)
    return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # still, light


def head_mask(face: Face, motion: np.ndarray) -> np.ndarray:
    """The head region in a frame: the face box HEAD_GROW times larger, mapped, eroded."""
    cv2 = import_cv2()
    x0, y0, x1, y1 = face.box
    (cx, cy), grow = face_centre(face), HEAD_GROW / 2
    half_w, half_h = grow * (x1 - x0), grow * (y1 - y0)
    corners = np.array([[cx - half_w, cy - half_h], [cx + half_w, cy - half_h],
                        [cx + half_w, cy + half_h], [cx - half_w, cy + half_h]])  # fmt: skip
    mask = np.zeros((SIDE, SIDE), np.uint8)
    cv2.fillConvexPoly(mask, np.round(apply_affine(motion, corners)).astype(np.int32), 1)
    return cv2.erode(mask, np.ones((2 * ERODE + 1, 2 * ERODE + 1), np.uint8)).astype(bool)


def lit(image: np.ndarray, t: int, frames: int) -> np.ndarray:
    """The lighting ramp of the `light` clip at frame t, float (H, W, 3) in 0..255."""
    share = t / max(1, frames - 1)
    gain, gamma = 1 + share * (LIGHT[0] - 1), 1 + share * (LIGHT[1] - 1)
    return 255.0 * gain * (image / 255.0) ** gamma


def make_clip(source: Source, kind: str, frames: int, seed: int) -> Clip:
    cv2 = import_cv2()
    rng = np.random.default_rng(seed)
    start = first_motion(source)
    centre = apply_affine(start, face_centre(source.face)[None])[0]
    clip = Clip(f"{source.name}/{kind}", [], [], [], [])
    for t in range(frames):
        motion = compose_affine(motion_at(kind, t, centre), start)
        warped = cv2.warpAffine(source.image, motion, (SIDE, SIDE), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT).astype(np.float64)  # fmt: skip
        if kind == "light":
            warped = lit(warped, t, frames)
        noisy = warped + rng.normal(0.0, NOISE, warped.shape)
        clip.frames.append(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
        clip.motions.append(motion)
        clip.masks.append(head_mask(source.face, motion))
        clip.truth.append(apply_affine(motion, source.face.landmarks))
    return clip


def residuals(frames: list[np.ndarray], motions: list[np.ndarray],
              masks: list[np.ndarray]) -> np.ndarray:  # fmt: skip
    """Per pair of frames, the mean |frame t - frame t-1 moved into t| in the mask, /255."""
    return np.array([float(change(frames, motions, t)[masks[t]].mean())
                     for t in range(1, len(frames))])  # fmt: skip


def change(frames: list[np.ndarray], motions: list[np.ndarray], t: int) -> np.ndarray:
    """|frame t - frame t-1 moved into t by the known motion| (bilinear), /255. (H, W)"""
    cv2 = import_cv2()
    step = compose_affine(motions[t], invert_affine(motions[t - 1]))
    height, width = frames[t].shape[:2]
    moved = cv2.warpAffine(frames[t - 1], step, (width, height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)  # fmt: skip
    return np.abs(moved.astype(np.float32) - frames[t].astype(np.float32)).mean(-1)


def largest(faces: list[Face]) -> np.ndarray | None:
    return max(faces, key=lambda face: face.area).landmarks.copy() if faces else None


def run_arm(photo_filter: PhotoFilter, request: Request, clip: Clip, arm: str) -> Arm:
    """Every frame of `clip` through one arm; the outputs and the landmarks aligned with."""
    tracker, result = make_tracker(arm), Arm()
    start = time.perf_counter()
    for index, frame in enumerate(clip.frames):
        if tracker is not None:
            result.outputs.append(filter_frame(photo_filter, request, tracker, frame, index,
                                               compare=False))  # fmt: skip
            result.landmarks.append(largest(tracker.faces))
            continue
        truth = Face(box=(0.0, 0.0, 1.0, 1.0), landmarks=clip.truth[index], score=1.0)
        found = [truth] if arm == TRUE_LANDMARKS else None
        try:
            translated = photo_filter(frame, request, found=found)
        except NoFaceError:  # as a video writes a frame without a face: unchanged
            result.outputs.append(frame)
            result.landmarks.append(None)
            continue
        result.outputs.append(translated.photos[0])
        result.landmarks.append(largest(translated.faces))
    result.seconds = time.perf_counter() - start
    return result


def lag(landmarks: list[np.ndarray | None], reference: list[np.ndarray | None],
        truth: list[np.ndarray]) -> float:  # fmt: skip
    """Frames `landmarks` trail `reference` along the true motion (a lagging landmark is at
    reference - lag * step); nan where nothing moves."""
    behind = weight = 0.0
    for t in range(1, len(truth)):
        found, fresh = landmarks[t], reference[t]
        step = truth[t] - truth[t - 1]
        if found is None or fresh is None or float((step**2).sum()) < 1e-6:
            continue
        behind -= float(((found - fresh) * step).sum())
        weight += float((step**2).sum())
    return behind / weight if weight else float("nan")


def alignment(landmarks: list[np.ndarray | None], truth: list[np.ndarray]) -> dict[str, float]:
    """Jitter (RMS px of each landmark step minus the true step), error (mean px from the
    truth), misses (frames without a face) and lag behind the truth (frames)."""
    steps, errors = [], []
    for t, found in enumerate(landmarks):
        if found is None:
            continue
        errors.append(float(np.linalg.norm(found - truth[t], axis=1).mean()))
        if t and landmarks[t - 1] is not None:
            true_step = truth[t] - truth[t - 1]
            steps.append(float(((found - landmarks[t - 1] - true_step) ** 2).sum(1).mean()))
    nan = float("nan")
    return {
        "lag": lag(landmarks, list(truth), truth),
        "jitter": math.sqrt(sum(steps) / len(steps)) if steps else nan,
        "error": float(np.mean(errors)) if errors else nan,
        "misses": float(sum(found is None for found in landmarks)),
    }


def measure(
    photo_filter: PhotoFilter, request: Request, clip: Clip, arms: list[str]
) -> tuple[dict[str, Any], dict[str, Arm]]:
    """One clip's numbers (the input's residual, each arm's and its alignment) and outputs."""
    scored: dict[str, Any] = {
        "input": float(residuals(clip.frames, clip.motions, clip.masks).mean())
    }
    outputs = {arm: run_arm(photo_filter, request, clip, arm) for arm in arms}
    for arm, result in outputs.items():
        residual = float(residuals(result.outputs, clip.motions, clip.masks).mean())
        ratio = residual / scored["input"]
        scored[arm] = {"residual": residual, "ratio": ratio, "seconds": result.seconds,
                       **alignment(result.landmarks, clip.truth)}  # fmt: skip
        if arm in TRACKERS and ONE_BY_ONE in outputs:  # behind a fresh detection
            fresh = outputs[ONE_BY_ONE].landmarks
            scored[arm]["lag"] = lag(result.landmarks, fresh, clip.truth)
    if "video" in arms and ONE_BY_ONE in arms:
        video, alone = scored["video"]["residual"], scored[ONE_BY_ONE]["residual"]
        scored["pass"] = bool(video <= alone and video <= GOAL * scored["input"])
    return scored, outputs


def print_tables(results: dict[str, dict], arms: list[str]) -> None:
    """The residual table (/255, and each arm's ratio to the input's) and the alignment."""
    head = f"{'clip':<24}{'input':>8}" + "".join(f"{arm:>22}" for arm in arms)
    print("\nper-frame change inside the head region, motion undone (/255; x input)")
    print(head + ("   goal" if "pass" in next(iter(results.values())) else ""))
    for name, scored in results.items():
        cells = [f"{scored[a]['residual']:.2f} ({scored[a]['ratio']:.2f}x)" for a in arms]
        verdict = ("   PASS" if scored["pass"] else "   FAIL") if "pass" in scored else ""
        print(f"{name:<24}{scored['input']:>8.2f}" + "".join(f"{c:>22}" for c in cells)
              + verdict)  # fmt: skip
    print(
        "\nlandmarks aligned with: lag (frames behind one-by-one's fresh detections; "
        "one-by-one's own: behind the true landmarks) / jitter (px, RMS of the step minus "
        "the true step) / error (px from the true landmarks); m: frames without a face"
    )
    print(f"{'clip':<24}" + "".join(f"{arm:>26}" for arm in arms))
    for name, scored in results.items():
        cells = []
        for arm in arms:
            s = scored[arm]
            lag = "-" if math.isnan(s["lag"]) else f"{s['lag']:+.2f}"
            miss = f" m{int(s['misses'])}" if s["misses"] else ""
            cells.append(f"{lag} / {s['jitter']:.2f} / {s['error']:.2f}{miss}")
        print(f"{name:<24}" + "".join(f"{c:>26}" for c in cells))


def sheet_tiles(clip: Clip, outputs: dict[str, Arm], arms: list[str],
                picks: list[int], half: int) -> list[np.ndarray]:  # fmt: skip
    """Rows of crops round the true face (so a lagging face drifts in its tile): for the
    input and each arm, its frames, then how much each frame changed from the one before
    with the motion undone, CHANGE_GAIN times brighter (the flicker, made visible)."""
    rows = []
    for sequence in [clip.frames] + [outputs[arm].outputs for arm in arms]:
        row, change = [], []
        for t in picks:
            cx, cy = np.round(clip.truth[t].mean(0)).astype(int)
            padded = np.pad(sequence[t], ((half, half), (half, half), (0, 0)), mode="edge")
            row.append(padded[cy : cy + 2 * half, cx : cx + 2 * half])
            moved = changed(sequence, clip.motions, max(t, 1))
            padded = np.pad(moved, ((half, half), (half, half), (0, 0)), mode="edge")
            change.append(padded[cy : cy + 2 * half, cx : cx + 2 * half])
        rows += [np.stack(row), np.stack(change)]
    return rows


def changed(frames: list[np.ndarray], motions: list[np.ndarray], t: int) -> np.ndarray:
    """`change` at frame t, CHANGE_GAIN times brighter, grey. (H, W, 3) uint8"""
    grey = np.clip(change(frames, motions, t) * CHANGE_GAIN, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def write_sheet(path: Path, clips: dict[str, Clip], outputs: dict[str, dict[str, Arm]],
                arms: list[str], frames: int) -> None:  # fmt: skip
    """Four frames of each clip kept (input, then each arm), one labelled row each."""
    picks = sorted({round(x) for x in np.linspace(0, frames - 1, 4)})
    rows, labels = [], []
    for name, clip in clips.items():
        eyes = np.linalg.norm(clip.truth[0][1] - clip.truth[0][0])
        rows += sheet_tiles(clip, outputs[name], arms, picks, half=int(1.6 * eyes))
        labels += [f"{name} {kind}{what}" for kind in ("input", *arms)
                   for what in ("", f" change x{CHANGE_GAIN}")]  # fmt: skip
    side = min(row.shape[1] for row in rows)
    tiles = np.stack([row[:, :side, :side] for row in rows])
    title = "frames " + ", ".join(map(str, picks)) + " round the true face"
    save_picture(path, labelled_grid(tiles, rows=labels, title=title))
    print(f"sheet: {path}")


def selected(spec: str | None) -> list[str]:
    """Clips named by `--clips`: full names, sources or motions, comma-separated."""
    if not spec:
        return list(DEFAULT_CLIPS)
    wanted = spec.split(",")
    every = [f"{s}/{m}" for s in ("astronaut", "grace-hopper", "synthetic") for m in MOTIONS]
    chosen = [c for c in every if any(w in (c, *c.split("/")) for w in wanted)]
    if not chosen:
        raise SystemExit(f"--clips {spec}: none of {', '.join(every)}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/demo", help="a trained filter's run folder")
    parser.add_argument("--to", default="anime")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--clips", help="comma-separated clips, sources or motions")
    every_arm = ", ".join([*TRACKERS, ONE_BY_ONE, TRUE_LANDMARKS])
    parser.add_argument("--arms", default=",".join(DEFAULT_ARMS), help=f"some of {every_arm}")
    parser.add_argument("--detector", default="auto")
    parser.add_argument("--upsample", type=int, default=1)
    parser.add_argument("--sheet", type=Path, help="a picture of Grace Hopper still and swaying")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    arms = args.arms.split(",")
    unknown = [arm for arm in arms if arm not in (*TRACKERS, ONE_BY_ONE, TRUE_LANDMARKS)]
    if unknown:
        raise SystemExit(f"--arms: unknown {', '.join(unknown)}")
    flt = Filter.load(Path(args.run), engine="torch")
    detection = DetectorSettings(detector=args.detector, upsample=args.upsample)
    photo_filter = PhotoFilter.build(flt, detection, FaceOptions(), video=True)
    request = Request.of(flt, to=args.to)
    names = selected(args.clips)
    sources = load_sources({name.split("/")[0] for name in names}, photo_filter)
    print(f"{args.run} ({flt.size} px) to {args.to}; {len(names)} clips of {args.frames} "
          f"{SIDE}x{SIDE} frames; {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads")  # fmt: skip
    results, kept, kept_outputs = {}, {}, {}
    for name in names:
        source, kind = name.split("/")
        clip = make_clip(sources[source], kind, args.frames, zlib.crc32(name.encode()))
        results[name], outputs = measure(photo_filter, request, clip, arms)
        print(f"{name}: done ({sum(results[name][a]['seconds'] for a in arms):.0f} s)",
              flush=True)  # fmt: skip
        if args.sheet and kind in ("still", "sway") and source == "grace-hopper":
            kept[name], kept_outputs[name] = clip, outputs
    print_tables(results, arms)
    if args.sheet and kept:
        write_sheet(args.sheet, kept, kept_outputs, arms, args.frames)
    if args.json:
        write_json(args.json, {"run": str(args.run), "frames": args.frames, "clips": results})


if __name__ == "__main__":
    main()
