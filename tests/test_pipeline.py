"""`facefilter apply` on real photos, end to end through the CLI: faces found, aligned with
the run's framing, translated and pasted back; videos, the webcam and every bad input.

Photos come from scikit-image (no downloads): the astronaut is the one human face,
multi-face and huge images are composed from her; the cat has no human face.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_photo_anime_run
from facefilter.cli.main import main
from facefilter.data.framing import (
    celeba_framing,
    domain_framings,
    framing_for_spec,
    synth_framing,
)
from facefilter.face import align_face, create_detector
from facefilter.inference import Filter, PhotoFilter, Request
from facefilter.synth import render, sample_params

pytest.importorskip("dlib")
cv2 = pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

SIZE = 32  # the tiny run's image size
FAST = ["--upsample", "0"]  # the astronaut's face (~90 px) is found without upsampling


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny cyclegan-lite trained for 2 steps on synthetic photo -> anime faces."""
    return tiny_photo_anime_run(tmp_path_factory.mktemp("pipeline") / "run", size=SIZE)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    astronaut = skimage_data.astronaut()  # (512, 512, 3)
    two = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)  # two faces, (512, 1024, 3)
    paths = {"astronaut": folder / "astronaut.png", "two": folder / "two.png",
             "cat": folder / "cat.png"}  # fmt: skip
    Image.fromarray(astronaut).save(paths["astronaut"])
    Image.fromarray(two).save(paths["two"])
    Image.fromarray(skimage_data.chelsea()).save(paths["cat"])
    return paths


def apply(run: Path, *args: str | Path) -> int:
    return main(["apply", str(run), *map(str, args), "--to", "anime", *FAST])


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_training_records_the_framing_apply_uses(run):
    framing = json.loads((run / "config.json").read_text())["train"]["framing"]
    assert framing == synth_framing()
    # Synthetic faces sit low and small; CelebA's square crops put the eyes near 0.51.
    assert 0.5 < framing["eye_height"] < 0.6 and 0.15 < framing["eye_distance"] < 0.22
    assert abs(celeba_framing()["eye_height"] - 0.51) < 0.01
    assert framing_for_spec("folder:somewhere") == {"eye_height": 0.4, "eye_distance": 0.24}


def test_each_direction_aligns_faces_as_its_source_domain_was_framed(run, photos):
    framings = json.loads((run / "config.json").read_text())["train"]["framings"]
    assert framings == {"photo": synth_framing("photo"), "anime": synth_framing("anime")}
    assert framings["anime"]["eye_height"] > framings["photo"]["eye_height"] + 0.02  # lower eyes
    flt = Filter.load(run)
    photo_filter = PhotoFilter(flt, create_detector("dlib", upsample=0))
    image = pixels(photos["astronaut"])
    faces = photo_filter.find_faces(image)
    for source, target in (("photo", "anime"), ("anime", "photo")):
        result = photo_filter(image, Request((flt.resolve(target),)), found=faces)
        expected, _ = align_face(image, faces[0], flt.align_config(source))
        assert np.array_equal(result.crops[0], expected), source
    assert flt.align_config("anime").eye_height == framings["anime"]["eye_height"]
    assert flt.align_config(None).eye_height == framings["photo"]["eye_height"]  # older runs


def test_several_styles_of_one_synthetic_set_are_framed_each_as_drawn():
    framings = domain_framings(["photo", "cartoon"], "synth:photo,cartoon?count=4", None, None)
    assert framings == {"photo": synth_framing("photo"), "cartoon": synth_framing("cartoon")}
    one = domain_framings(["a", "b"], "classes:somewhere", None, None)
    assert one["a"] == one["b"] == framing_for_spec("classes:somewhere")


def test_photo_is_pasted_back_whole(run, photos, tmp_path):
    out = tmp_path / "out.png"
    assert apply(run, photos["astronaut"], "-o", out) == 0
    before, after = pixels(photos["astronaut"]), pixels(out)
    assert after.shape == before.shape
    changed = np.any(after != before, axis=2)  # (H, W)
    ys, xs = np.nonzero(changed)
    # Her face box is about (175, 76, 265, 166): the change covers it and stays near it.
    assert changed[76:166, 175:265].mean() > 0.9
    assert xs.min() > 60 and xs.max() < 420 and ys.max() < 330
    assert np.array_equal(after[400:, :], before[400:, :])  # far from the face: bit-identical


def test_compare_and_crop_only_and_two_faces(run, photos, tmp_path, capsys):
    assert apply(run, photos["astronaut"], "-o", tmp_path / "cmp.png", "--compare") == 0
    width, height = Image.open(tmp_path / "cmp.png").size  # input | output, named above
    assert 1024 < width < 1040 and 512 < height < 540
    assert f"wrote {tmp_path / 'cmp.png'}" in capsys.readouterr().out
    assert apply(run, photos["two"], "-o", tmp_path / "faces.png", "--crop-only") == 0
    said = capsys.readouterr().out  # the files as they are named on disk
    assert "wrote 2 file(s) for 1 image(s)" in said and "faces_face1.png, faces_face2.png" in said
    crops = sorted(tmp_path.glob("faces_face*.png"))
    assert [p.name for p in crops] == ["faces_face1.png", "faces_face2.png"]
    assert all(Image.open(p).size == (SIZE, SIZE) for p in crops)
    assert apply(run, photos["two"], "-o", tmp_path / "one.png", "--faces", "largest",
                 "--crop-only") == 0  # fmt: skip
    assert Image.open(tmp_path / "one.png").size == (SIZE, SIZE)


def test_no_face_is_a_per_file_failure(run, photos, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("astronaut", "cat"):
        (folder / f"{name}.png").write_bytes(photos[name].read_bytes())
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.png").write_text("not an image")
    good = photos["astronaut"].read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 3])
    assert apply(run, folder, "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["astronaut_anime.png"]  # nothing written for the failures
    for name in ("cat.png: no face found", "empty.jpg", "text.png", "truncated.png"):
        assert sum(name in line for line in err.splitlines()) == 1, (name, err)


def test_detect_never_and_auto_crop_fallback(run, photos, tmp_path, capsys):
    assert apply(run, photos["cat"], "-o", tmp_path / "cat.png", "--detect", "never") == 0
    assert Image.open(tmp_path / "cat.png").size == (SIZE, SIZE)
    face = (render(sample_params(1, seed=3), "photo", 48)[0] * 255).round().byte()
    Image.fromarray(face.permute(1, 2, 0).numpy()).save(tmp_path / "synth.png")
    assert apply(run, tmp_path / "synth.png", "-o", tmp_path / "s.png") == 0
    assert "its centre square was translated as one" in capsys.readouterr().err
    assert Image.open(tmp_path / "s.png").size == (SIZE, SIZE)
    assert apply(run, tmp_path / "synth.png", "-o", tmp_path / "s2.png", "--detect", "always") == 1
    assert "no face found" in capsys.readouterr().err


def test_huge_flat_image_downscales_for_detection(run, tmp_path, capsys):
    huge = np.full((9000, 12000, 3), 128, np.uint8)
    Image.fromarray(huge).save(tmp_path / "huge.jpg", quality=50)
    del huge
    assert apply(run, tmp_path / "huge.jpg", "-o", tmp_path / "o.jpg", "--detect", "always") == 1
    err = capsys.readouterr().err
    assert "no face found in this 12000x9000 image" in err
    assert not (tmp_path / "o.jpg").exists()


def test_video_file_in_video_out(run, photos, tmp_path):
    astronaut = pixels(photos["astronaut"])[::2, ::2]  # (256, 256, 3)
    writer = cv2.VideoWriter(str(tmp_path / "in.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5,
                             (256, 256))  # fmt: skip
    for shift in range(4):
        writer.write(np.ascontiguousarray(np.roll(astronaut, 2 * shift, axis=1)[:, :, ::-1]))
    writer.release()
    assert main(["apply", str(run), str(tmp_path / "in.avi"), "--to", "anime",
                 "-o", str(tmp_path / "out.avi")]) == 0  # fmt: skip
    capture = cv2.VideoCapture(str(tmp_path / "out.avi"))
    frames = []
    while (grabbed := capture.read())[0]:
        frames.append(grabbed[1])
    assert len(frames) == 4 and frames[0].shape == (256, 256, 3)
    face = frames[0][50:75, 90:130].astype(int)  # her face, halved
    original = astronaut[50:75, 90:130, ::-1].astype(int)
    assert np.abs(face - original).mean() > 10  # the face was filtered


def test_an_mp4_with_sound_comes_out_h264_with_its_sound(run, photos, tmp_path):
    """What browsers and phones play, through the ffmpeg that imageio-ffmpeg ships."""
    ffmpeg = pytest.importorskip("imageio_ffmpeg").get_ffmpeg_exe()
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-y",
            "-loop",
            "1",
            "-i",
            str(photos["astronaut"]),
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-t",
            "1",
            "-r",
            "4",
            "-vf",
            "scale=256:256",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            "-shortest",
            str(clip),
        ],
        check=True,
    )
    out = tmp_path / "out.mp4"
    assert main(["apply", str(run), str(clip), "--to", "anime", "-o", str(out)]) == 0
    probe = subprocess.run([ffmpeg, "-hide_banner", "-i", str(out)], capture_output=True,
                           text=True).stderr  # fmt: skip
    streams = [line for line in probe.splitlines() if "Stream #" in line]
    assert any("Video: h264" in s and "yuv420p" in s for s in streams), probe
    assert any("Audio: aac" in s for s in streams), probe
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--webcam"], "--webcam: no camera at index 0"),
        (["--detector", "retina"], "unknown face detector 'retina'"),
        (["--detector", "yunet"], "the yunet detector needs --yunet-model PATH"),
        (["--detector", "yunet", "--yunet-model", "missing.onnx"], "missing.onnx does not exist"),
        (["--detect", "sometimes"], "sometimes"),
    ],
)
def test_usage_errors_exit_2(run, photos, capsys, args, message):
    with_input = [] if args == ["--webcam"] else [str(photos["astronaut"])]
    try:
        code = main(["apply", str(run), *with_input, "--to", "anime", *args])
    except SystemExit as exit_:  # tyro rejects bad choices itself
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err + captured.out
    if args[0] != "--detect":
        assert len(captured.err.strip().splitlines()) == 1, captured.err


def test_video_output_names():
    from facefilter.errors import UserError
    from facefilter.inference.video import video_output

    out = Path("out")
    assert video_output(Path("clip.webm"), out, "_anime") == out / "clip_anime.mp4"
    assert video_output(Path("clip.avi"), out, "_anime") == out / "clip_anime.avi"
    assert video_output(Path("clip.mp4"), Path("x.avi"), "") == Path("x.avi")
    with pytest.raises(UserError, match=r"cannot write \.webm"):
        video_output(Path("clip.mp4"), Path("x.webm"), "")


def test_tracker_holds_faces_for_hold_frames_frames_whatever_detect_every():
    import numpy as np

    from facefilter.face import Face
    from facefilter.inference.video import Tracker

    face = Face(box=(0, 0, 10, 10), landmarks=np.arange(10.0).reshape(5, 2), score=1.0)
    for every in (1, 2, 4):
        tracker = Tracker(detect_every=every, hold_frames=4)
        assert tracker.update(0, lambda: [face])
        kept = [bool(tracker.update(i, list)) for i in range(1, 13)]  # no face from now on
        held = kept.index(False)  # frames the last faces were held
        assert kept[held:] == [False] * (12 - held)
        # dropped on the first detection frame past hold_frames
        assert 4 <= held < 4 + every, (every, kept)


def test_tracking_searches_near_its_faces_and_the_whole_frame_now_and_then():
    import numpy as np

    from facefilter.face import Face
    from facefilter.inference.video import Tracker

    face = Face(box=(0, 0, 10, 10), landmarks=np.arange(10.0).reshape(5, 2), score=1.0)
    calls: list[str] = []

    def full() -> list[Face]:
        calls.append("full")
        return [face]

    def near(tracked: list[Face]) -> list[Face]:
        calls.append("near")
        return [] if len(calls) == 3 else tracked  # the face moves away once (frame 4)

    tracker = Tracker(detect_every=2, full_every=8)
    for index in range(14):
        assert tracker.update(index, full, near)
    # 0: full; 2: near; 4: near misses, so full at once; 6, 8, 10: near; 12: full (8 after 4)
    assert calls == ["full", "near", "near", "full", "near", "near", "near", "full"]


def test_a_face_missed_near_sends_the_tracker_to_the_whole_frame():
    import numpy as np

    from facefilter.face import Face
    from facefilter.inference.video import Tracker

    faces = [Face(box=(x, 0, x + 10, 10), landmarks=np.arange(10.0).reshape(5, 2) + x,
                  score=1.0) for x in (0, 100)]  # fmt: skip
    calls: list[str] = []
    tracker = Tracker(detect_every=7, full_every=60)
    for index in range(0, 29, 7):
        found = tracker.update(index, lambda: calls.append("full") or faces,
                               lambda tracked: calls.append("near") or faces[:1])  # fmt: skip
        assert len(found) == 2  # the face the near search lost is found again at once
    assert calls == ["full"] + ["near", "full"] * 4


def test_faces_are_found_again_near_where_they_were(run, photos):
    from facefilter.face import create_detector
    from facefilter.inference import Filter, PhotoFilter

    photo_filter = PhotoFilter(Filter.load(run), create_detector("dlib", upsample=0))
    image = pixels(photos["two"])  # (512, 1024): two faces
    faces = photo_filter.find_faces(image)
    moved = np.roll(image, (12, -20), axis=(0, 1))  # both faces moved a little
    near = photo_filter.find_faces_near(moved, faces)
    assert len(near) == 2
    for before, after in zip(faces, near, strict=True):
        assert np.allclose(after.landmarks - before.landmarks, [-20, 12], atol=4)
    far = np.roll(image, 300, axis=0)  # too far: not in their regions
    assert len(photo_filter.find_faces_near(far, faces)) < 2
