"""The demo's work without a browser: `DemoService` (runs loaded once, uploads checked
before decoding, faces filtered and pasted back, every failure a message) and the
`facefilter demo` command's refusals. The page itself: tests/test_demo_web.py."""

from __future__ import annotations

import base64
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_photo_anime_run
from facefilter.cli.main import main
from facefilter.demo import service as demo_service
from facefilter.demo.app import Serving
from facefilter.demo.service import (
    DemoService,
    Engine,
    InlineImage,
    Limits,
    direction_labels,
    run_names,
    write_examples,
)
from facefilter.errors import UserError
from facefilter.inference import Filter
from facefilter.models.targets import Direction, Target

pytest.importorskip("dlib")
skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("gradio")

FACE_BOX = (170, 80, 270, 200)  # x0, y0, x1, y1: around the astronaut's face


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_photo_anime_run(tmp_path_factory.mktemp("demo") / "run")


@pytest.fixture(scope="module")
def service(run) -> DemoService:
    return DemoService([run], Engine(), Limits(max_megabytes=2, max_megapixels=1))


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    return path


def save(tmp_path: Path, name: str, pixels: np.ndarray) -> str:
    Image.fromarray(pixels).save(tmp_path / name)
    return str(tmp_path / name)


def test_a_photo_comes_back_whole_with_its_face_filtered(service, photo):
    answer = service.filter_photo(str(photo), "run", "anime", 1.0)
    assert answer.message.startswith(
        "1 face found in this 512x512 image and filtered to anime at strength 1"
    )
    original = skimage_data.astronaut()
    assert answer.image is not None and answer.image.shape == original.shape
    x0, y0, x1, y1 = FACE_BOX
    change = np.abs(answer.image.astype(int) - original.astype(int)).mean(axis=2)
    assert change[y0:y1, x0:x1].mean() > 10  # the face changed
    assert change[:60, :60].max() == 0 and change[-60:, -60:].max() == 0  # corners did not


def test_strength_moves_the_face_further(service, photo):
    original = skimage_data.astronaut().astype(int)
    x0, y0, x1, y1 = FACE_BOX
    change = {}
    for strength in (0.0, 1.0):
        answer = service.filter_photo(str(photo), "run", "anime", strength)
        assert answer.image is not None
        change[strength] = np.abs(answer.image[y0:y1, x0:x1] - original[y0:y1, x0:x1]).mean()
    # At 0 the face is the 32 px crop itself, pasted back (softer than the photo).
    assert change[0.0] < 0.5 * change[1.0]


def test_several_faces_say_so_and_offer_the_largest(service, tmp_path):
    astronaut = skimage_data.astronaut()
    small = np.asarray(Image.fromarray(astronaut).resize((384, 384)))
    two = np.zeros((512, 512 + 384, 3), np.uint8)
    two[:, :512], two[:384, 512:] = astronaut, small
    upload = save(tmp_path, "two.png", two)
    every = service.filter_photo(upload, "run", "anime", 1.0, faces="all")
    assert every.message.startswith("2 faces found in this 896x512 image; all were filtered")
    one = service.filter_photo(upload, "run", "anime", 1.0, faces="largest")
    assert one.message.startswith("2 faces found in this 896x512 image; the largest was")
    assert one.image is not None and every.image is not None
    right = (slice(0, 384), slice(512, None))  # only the small face's side differs
    assert np.array_equal(one.image[right], two[right])
    assert not np.array_equal(every.image[right], two[right])


def test_faces_are_outlined_on_request(service, photo):
    plain = service.filter_photo(str(photo), "run", "anime", 1.0)
    shown = service.filter_photo(str(photo), "run", "anime", 1.0, outline=True)
    assert plain.image is not None and shown.image is not None
    red = (shown.image == demo_service.OUTLINE).all(axis=2)
    assert 100 < red.sum() < 0.05 * red.size  # a thin box, not a fill
    assert not (plain.image == demo_service.OUTLINE).all(axis=2).any()


def test_no_face_is_a_message_and_a_small_crop_is_taken_whole(service, tmp_path):
    wall = save(tmp_path, "wall.png", np.full((300, 400, 3), 128, np.uint8))
    answer = service.filter_photo(wall, "run", "anime")
    assert answer.image is None
    assert answer.message.startswith("No face found in this 400x300 image. Try a photo")
    crop = save(tmp_path, "crop.png", skimage_data.astronaut()[80:140, 190:250])  # 60 px
    whole = service.filter_photo(crop, "run", "anime")
    assert whole.message.startswith("No face found in this 60x60 image; small enough to be")
    assert whole.image is not None and whole.image.shape == (32, 32, 3)


def test_uploads_over_the_limits_are_refused_and_deleted_undecoded(service, tmp_path, monkeypatch):
    decoded = []
    monkeypatch.setattr(demo_service, "load_image", lambda path: decoded.append(path))
    noise = np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    heavy = save(tmp_path, "heavy.png", noise)  # ~3 MB of noise, under 1 MP
    answer = service.filter_photo(heavy, "run", "anime")
    assert answer.image is None
    assert answer.message.startswith("the photo is 2.9 MB; this demo takes photos up to 2 MB")
    wide = save(tmp_path, "wide.png", np.zeros((800, 1500, 3), np.uint8))  # 1.2 MP, tiny file
    answer = service.filter_photo(wide, "run", "anime")
    assert answer.message.startswith("the photo is 1500x800 (1.2 megapixels); this demo takes")
    assert not Path(heavy).exists() and not Path(wide).exists() and decoded == []


def data_url(path: Path | str) -> InlineImage:
    return InlineImage(
        "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()
    )


def test_an_inline_photo_is_checked_as_an_upload_is(service, photo, tmp_path, monkeypatch):
    answer = service.filter_photo(data_url(photo), "run", "anime")
    assert answer.message.startswith("1 face found in this 512x512 image")
    decoded = []
    monkeypatch.setattr(demo_service, "load_image", lambda path: decoded.append(path))
    noise = np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    refused = {  # the length is read before the base64 is decoded, the header before pixels
        data_url(save(tmp_path, "heavy.png", noise)): "the photo is 2.9 MB; this demo takes",
        data_url(save(tmp_path, "wide.png", np.zeros((800, 1500, 3), np.uint8))):
            "the photo is 1500x800 (1.2 megapixels); this demo takes up to 1 megapixels",
        InlineImage("data:image/png;base64,bm90IGFuIGltYWdl"): "the photo is not an image",
        InlineImage("data:image/png;base64,abc"): "the photo is not valid base64",
        InlineImage("data:text/plain,hello"): "the photo is not an image this demo can read",
    }  # fmt: skip
    for upload, start in refused.items():
        answer = service.filter_photo(upload, "run", "anime")
        assert answer.image is None and answer.message.startswith(start), answer.message
    assert decoded == []


def test_bad_requests_are_messages(service, photo, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    cases = {
        (None, "run", "anime"): "Upload a photo",
        (str(junk), "run", "anime"): "the photo is not an image this demo can read",
        (str(photo), "other", "anime"): "unknown filter 'other'; choose one of run",
        (str(photo), "run", "cartoon"): "run has no target 'cartoon'; choose one of anime, photo",
    }
    for args, start in cases.items():
        answer = service.filter_photo(*args)
        assert answer.image is None and answer.message.startswith(start), answer.message
    negative = service.filter_photo(str(photo), "run", "anime", -1.0)
    assert negative.message.startswith("--strength -1.0 must be a number >= 0")


def test_a_bug_fails_its_request_and_not_the_server(service, photo, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    loaded = service.runs["run"]
    monkeypatch.setattr(loaded.photo, "_translate_faces", broken)
    answer = service.filter_photo(str(photo), "run", "anime")
    assert answer.image is None
    assert answer.message.startswith("internal error (RuntimeError); the server's log")
    assert "Traceback" in capsys.readouterr().err  # the server's log has it
    assert not loaded.lock.locked()
    monkeypatch.undo()
    assert service.filter_photo(str(photo), "run", "anime").image is not None


def test_runs_load_once_however_many_requests(run, photo, monkeypatch):
    loads = []
    real = Filter.load

    def counting(*args, **kwargs):
        loads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(Filter, "load", counting)
    service = DemoService([run, run / "."], Engine())  # the same run twice is served once
    assert len(loads) == 1 and list(service.runs) == ["run"]
    for _ in range(3):
        assert service.filter_photo(str(photo), "run", "anime").image is not None
    assert len(loads) == 1


def test_labels_name_the_source_only_where_several_reach_a_target():
    trvae = [Direction(s, Target(t)) for s in ("photo", "anime", "cartoon")
             for t in ("photo", "anime", "cartoon") if s != t]  # fmt: skip
    labels = direction_labels(trvae)
    assert "photo → anime" in labels and "cartoon → anime" in labels and len(labels) == 6
    edits = [Direction(None, Target.parse("+Smiling")), Direction(None, Target.parse("-Smiling"))]
    assert list(direction_labels(edits)) == ["+Smiling", "-Smiling"]
    assert list(direction_labels([Direction("photo", Target("anime"))])) == ["anime"]
    assert run_names([Path("a/run"), Path("b/run"), Path("c/x")]) == ["a/run", "b/run", "x"]


def test_examples_are_the_astronaut_and_synthetic_faces(service, tmp_path):
    written = write_examples(tmp_path / "examples", service)
    names = [path.name for path in written]
    assert names[0] == "astronaut.png"
    assert "synthetic_photo_1.png" in names and "synthetic_anime_1.png" in names
    assert Image.open(written[-1]).size == (64, 64)  # small enough to be taken whole


def test_the_command_refuses_what_it_cannot_serve(run, tmp_path, capsys):
    def refused(*args: str) -> str:
        assert main(["demo", *args]) == 2
        return capsys.readouterr().err.strip()

    assert refused() == "facefilter: error: give at least one run directory or export to serve"
    assert "no config.json" in refused(str(tmp_path))
    assert "--max-upload-mb 0.0 must be above 0" in refused(str(run), "--max-upload-mb", "0")
    assert "--max-megapixels inf: give a finite" in refused(str(run), "--max-megapixels", "inf")
    assert refused(str(run), "--port", "0").endswith("--port 0 must be between 1 and 65535")
    assert "unknown face detector 'x'" in refused(str(run), "--detector", "x")
    assert refused(str(run), "--live-turn", "0").endswith(
        "--live-turn 0.0 must be 1 to 86400 seconds"
    )
    assert refused(str(run), "--detect-every", "0").endswith(
        "--detect-every must be 1 or more, got 0"
    )
    assert refused(str(run), "--threads", "0").endswith(
        "--threads 0 must be 1 or more (unset: one a core)"
    )
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        message = refused(str(run), "--port", port)
    assert f"cannot serve on 127.0.0.1:{port}" in message and "choose another --port" in message


def test_serving_anyone_but_this_machine_is_warned_of():
    assert Serving().warnings() == [] and Serving(host="localhost").warnings() == []
    assert "--host 0.0.0.0 lets anyone" in Serving(host="0.0.0.0").warnings()[0]
    assert "public link" in Serving(share=True).warnings()[0]
    assert len(Serving(host="0.0.0.0", share=True).warnings()) == 2
    Serving(host="::1", port=free_port(socket.AF_INET6)).check()  # IPv6 loopback serves
    assert Serving(host="::1").warnings() == [] and Serving(host="[::1]").warnings() == []
    assert Serving(host="::1").url_host == Serving(host="[::1]").url_host == "[::1]"
    assert "--host :: lets anyone" in Serving(host="::").warnings()[0]
    with socket.create_server(("127.0.0.1", 0)) as taken:  # Gradio tries the port there too
        port = int(taken.getsockname()[1])
        with pytest.raises(UserError, match=f"cannot serve on ::1:{port}"):
            Serving(host="::1", port=port).check()


def free_port(family: socket.AddressFamily) -> int:
    with socket.create_server(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0),
                              family=family) as probe:  # fmt: skip
        return int(probe.getsockname()[1])


def test_an_editor_without_vectors_is_refused_with_the_command_that_makes_them(run, monkeypatch):
    from facefilter.runs.config import RunConfig
    from facefilter.sizes import ImageSize

    config = RunConfig("dcae", {}, ["Smiling", "Eyeglasses"], ImageSize(32, 32),
                       source=run / "config.json")  # fmt: skip
    backend = SimpleNamespace(device=torch.device("cpu"), family=None)
    no_targets = Filter(config, [], backend)  # what Filter.load gives for such a run
    monkeypatch.setattr(Filter, "load", lambda *args, **kwargs: no_targets)
    with pytest.raises(UserError, match=r"offers no targets yet: .*`facefilter vectors "):
        DemoService([run])
