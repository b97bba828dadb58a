"""Every picture and video a filter makes says so: the IPTC digital source type in XMP.

The packet is checked byte by byte here (parsed back with xml.etree), and the files the
real `facefilter apply` and `lerp` write are read back with exiftool, a reader no one
here wrote (Debian's libimage-exiftool-perl; the Makefile installs it).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facefilter
from conftest import tiny_photo_anime_run
from facefilter.cli.main import main
from facefilter.pictures import save_gif, save_picture
from facefilter.provenance import (
    COMPOSITE,
    GENERATED,
    NAMESPACES,
    NO_LABEL,
    XMP_UUID,
    Provenance,
    label_video,
    unlabelled,
)

RUN_NAME = 'p2a &<"x'  # a run folder whose name XML must escape
FILTER = f"{RUN_NAME} (cyclegan-lite)"
TOOL = f"facefilter {facefilter.__version__}"
FAST = ["--upsample", "0"]  # the astronaut's face (~90 px) is found without upsampling


def exiftool(*paths: Path) -> list[dict[str, str]]:
    """Every XMP tag of each file, as exiftool reads it (JSON)."""
    program = shutil.which("exiftool")
    if program is None:
        pytest.fail("exiftool is missing, and these tests read the label with it: "
                    "apt-get install libimage-exiftool-perl")  # fmt: skip
    out = subprocess.run([program, "-j", "-XMP:all", *map(str, paths)], capture_output=True,
                         text=True, check=True)  # fmt: skip
    return json.loads(out.stdout)


def assert_labelled(tags: dict[str, str], source_type: str, target: str) -> None:
    assert tags["DigitalSourceType"] == source_type, tags
    assert tags["CreatorTool"] == TOOL
    assert tags["Filter"] == FILTER and tags["Target"] == target
    assert FILTER in tags["Description"]


# --- the packet ---------------------------------------------------------------------------
def parsed(provenance: Provenance) -> dict[str, str]:
    """The packet's properties by prefix:name, from xml.etree."""
    root = ET.fromstring(provenance.xmp())
    description = root.find("rdf:RDF/rdf:Description", NAMESPACES)
    assert description is not None
    found = {}
    for prefix, uri in NAMESPACES.items():
        for element in description.iter():
            if element.tag.startswith(f"{{{uri}}}") and element.text and element.text.strip():
                found[f"{prefix}:{element.tag.split('}')[1]}"] = element.text
    return found


@pytest.mark.parametrize(("whole", "source_type"), [(False, COMPOSITE), (True, GENERATED)])
def test_the_packet_names_the_source_type_tool_filter_and_target(whole, source_type):
    packet = Provenance("p2a (cyclegan)", "anime, photo", whole).xmp()
    assert packet.startswith(b"<?xpacket begin=") and packet.endswith(b'<?xpacket end="w"?>')
    assert b"\x00" not in packet  # a GIF extension could not hold it
    found = parsed(Provenance("p2a (cyclegan)", "anime, photo", whole))
    assert found["Iptc4xmpExt:DigitalSourceType"] == source_type
    assert source_type.startswith("http://cv.iptc.org/newscodes/digitalsourcetype/")
    assert found["xmp:CreatorTool"] == TOOL
    assert found["facefilter:Filter"] == "p2a (cyclegan)"
    assert found["facefilter:Target"] == "anime, photo"
    assert "p2a (cyclegan)" in found["rdf:li"]  # dc:description, for people


def test_names_that_xml_must_escape_round_trip():
    name = "a&b <c> \"d\" 'e' &amp;"
    found = parsed(Provenance(name, "+Smiling=1.5"))
    assert found["facefilter:Filter"] == name and found["facefilter:Target"] == "+Smiling=1.5"
    # a control character no XML may hold becomes U+FFFD instead of a broken packet
    assert parsed(Provenance("a\x01b", "anime"))["facefilter:Filter"] == "a\ufffdb"


# --- the formats --------------------------------------------------------------------------
def test_png_jpeg_webp_and_gif_carry_it_and_stay_pictures(tmp_path):
    picture = np.full((16, 16, 3), 120, np.uint8)
    label = Provenance(FILTER, "anime")
    paths = [tmp_path / name for name in ("a.png", "a.jpg", "a.webp")]
    for path in paths:
        save_picture(path, picture, label)
        assert Image.open(path).size == (16, 16)
    frames = [np.full((16, 16, 3), 60 * i, np.uint8) for i in range(3)]
    save_gif(tmp_path / "a.gif", frames, 1.0, label)
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 4 and gif.info["loop"] == 0  # still forth and back, looping
    for tags in exiftool(*paths, tmp_path / "a.gif"):
        assert_labelled(tags, COMPOSITE, "anime")
    assert not list(tmp_path.glob(".*tmp*"))


def test_without_a_label_nothing_is_written_and_bmp_cannot_carry_one(tmp_path):
    picture = np.zeros((8, 8, 3), np.uint8)
    save_picture(tmp_path / "plain.png", picture)
    save_picture(tmp_path / "a.bmp", picture, Provenance(FILTER, "anime"))  # no failure
    assert Image.open(tmp_path / "a.bmp").format == "BMP"
    assert [set(tags) for tags in exiftool(tmp_path / "plain.png")] == [{"SourceFile"}]
    assert unlabelled(tmp_path / "a.png") is None and unlabelled(Path("v.mp4")) is None
    for name in ("a.bmp", "clip.avi"):
        note = unlabelled(Path(name))
        assert note is not None and "cannot carry the 'made by a filter' label" in note


def test_an_mp4_gets_a_top_level_xmp_uuid_box_and_an_avi_nothing(tmp_path):
    mp4 = tmp_path / "v.mp4"
    ftyp = struct.pack(">I4s4sI4s", 20, b"ftyp", b"isom", 512, b"isom")
    mp4.write_bytes(ftyp)
    label = Provenance(FILTER, "anime")
    assert label_video(mp4, label)
    data = mp4.read_bytes()
    size, kind = struct.unpack(">I4s", data[20:28])
    assert kind == b"uuid" and size == len(data) - 20 and data[28:44] == XMP_UUID
    assert data[44:] == label.xmp()
    avi = tmp_path / "v.avi"
    avi.write_bytes(b"RIFF\x04\x00\x00\x00AVI ")
    assert not label_video(avi, label) and avi.read_bytes() == b"RIFF\x04\x00\x00\x00AVI "


# --- the real commands --------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny cyclegan-lite (photo -> anime) in a folder whose name XML must escape."""
    return tiny_photo_anime_run(tmp_path_factory.mktemp("provenance") / RUN_NAME)


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory) -> Path:
    pytest.importorskip("dlib")
    skimage_data = pytest.importorskip("skimage.data")
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    return path


def apply(run: Path, photo: Path, out: Path, *extra: str, to: str = "anime") -> int:
    return main(["apply", str(run), str(photo), "--to", to, "-o", str(out), *FAST, *extra])


def test_apply_labels_its_jpeg_png_and_sheet(run, astronaut, tmp_path, capsys):
    out, sheet, crop = tmp_path / "out.jpg", tmp_path / "sheet.png", tmp_path / "crop.png"
    assert apply(run, astronaut, out, "--sheet", str(sheet)) == 0
    assert apply(run, astronaut, crop, "--crop-only") == 0
    assert apply(run, astronaut, tmp_path / "all.png", to="all") == 0
    assert "label" not in capsys.readouterr().err
    pasted, sheet_tags, crop_tags, every = exiftool(out, sheet, crop, tmp_path / "all.png")
    assert_labelled(pasted, COMPOSITE, "anime")  # faces pasted back into the photo
    assert_labelled(sheet_tags, COMPOSITE, "anime")  # before beside after
    assert_labelled(crop_tags, GENERATED, "anime")  # the model's output, whole
    assert_labelled(every, COMPOSITE, "anime, photo")  # --to all names every target


def test_apply_labels_its_mp4(run, astronaut, tmp_path):
    cv2 = pytest.importorskip("cv2")
    pytest.importorskip("imageio_ffmpeg")  # H.264 through ffmpeg, then the box appended
    frame = np.asarray(Image.open(astronaut))[::2, ::2, ::-1]  # (256, 256, 3) BGR
    writer = cv2.VideoWriter(str(tmp_path / "in.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5,
                             (256, 256))  # fmt: skip
    for shift in range(3):
        writer.write(np.ascontiguousarray(np.roll(frame, 2 * shift, axis=1)))
    writer.release()
    assert apply(run, tmp_path / "in.avi", tmp_path / "out.mp4") == 0
    [tags] = exiftool(tmp_path / "out.mp4")
    assert_labelled(tags, COMPOSITE, "anime")
    capture = cv2.VideoCapture(str(tmp_path / "out.mp4"))  # still plays, every frame
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 3
    assert not list(tmp_path.glob(".*tmp*"))


def test_no_label_writes_none_and_says_so(run, astronaut, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert apply(run, astronaut, out, "--no-label", "--sheet", str(tmp_path / "s.png")) == 0
    assert capsys.readouterr().err.strip().splitlines() == [NO_LABEL]
    assert [set(tags) for tags in exiftool(out, tmp_path / "s.png")] == [{"SourceFile"}] * 2


def test_a_bmp_output_is_written_unlabelled_with_one_warning(run, astronaut, tmp_path, capsys):
    assert apply(run, astronaut, tmp_path / "out.bmp") == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bmp files cannot carry the 'made by a filter' label" in err[0]
    assert Image.open(tmp_path / "out.bmp").format == "BMP"


def test_a_lerp_gif_is_labelled(run, astronaut, tmp_path):
    out = tmp_path / "lerp.gif"
    assert main(["lerp", str(run), str(astronaut), "--edit", "anime", "--frames", "3",
                 "-o", str(out), *FAST]) == 0  # fmt: skip
    [tags] = exiftool(out)
    assert_labelled(tags, COMPOSITE, "anime")
    assert Image.open(out).n_frames == 4


def test_a_feature_grid_and_a_morph_are_labelled_and_no_label_leaves_it(tmp_path, capsys):
    """The editing outputs: the grid PNG (faces and their edits), the morph GIF (every
    pixel decoded) and `--no-label`."""
    editor = tmp_path / "ed"
    assert main(["train", "dcae", "--data", "synth:photo?count=30", "--size", "32",
                 "--batch-size", "8", "--max-steps", "4", "--num-workers", "0", "--no-progress",
                 "--out", str(editor), "--vector-count", "5", "--channels", "8",
                 "--max-channels", "16", "--latent-dim", "8"]) == 0  # fmt: skip
    assert main(["data", "synth", "--out", str(tmp_path / "faces"), "--count", "2", "--size",
                 "32", "--styles", "photo"]) == 0  # fmt: skip
    grid = ["grid", str(editor), "--faces", "2", "--attributes", "Smiling"]
    assert main([*grid, "-o", str(tmp_path / "grid.png")]) == 0
    faces = [str(tmp_path / "faces" / "photo" / f"00000{i}.png") for i in (1, 2)]
    assert main(["lerp", str(editor), *faces, "--frames", "3", "-o", str(tmp_path / "m.gif")]) == 0
    capsys.readouterr()
    assert main([*grid, "-o", str(tmp_path / "plain.png"), "--no-label"]) == 0
    assert capsys.readouterr().err.strip().splitlines() == [NO_LABEL]
    grid_tags, morph_tags, plain = exiftool(tmp_path / "grid.png", tmp_path / "m.gif",
                                            tmp_path / "plain.png")  # fmt: skip
    assert grid_tags["DigitalSourceType"] == COMPOSITE and grid_tags["Filter"] == "ed (dcae)"
    assert grid_tags["Target"] == "+Smiling, -Smiling" and grid_tags["CreatorTool"] == TOOL
    assert morph_tags["DigitalSourceType"] == GENERATED
    assert set(plain) == {"SourceFile"}
