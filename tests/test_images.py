"""Decoding every kind of file a user may hand us, and the tensor conversions."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facefilter.data.images import (
    MAX_IMAGE_PIXELS,
    ImageError,
    list_images,
    load_image,
    to_pil,
    to_tensor,
)
from facefilter.errors import UserError

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def _close(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def _halves(size: tuple[int, int], left: tuple[int, ...], right: tuple[int, ...]) -> Image.Image:
    """An RGB image whose left half is `left` and right half `right`."""
    image = Image.new("RGB", size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def test_rgb_png_and_jpeg_load_unchanged(tmp_path: Path) -> None:
    source = _halves((32, 16), RED, BLUE)
    source.save(tmp_path / "a.png")
    source.save(tmp_path / "a.jpg", quality=95)
    png = load_image(tmp_path / "a.png")
    assert png.mode == "RGB" and png.size == (32, 16)
    assert np.array_equal(np.asarray(png), np.asarray(source))
    jpeg = load_image(tmp_path / "a.jpg")
    assert jpeg.mode == "RGB" and _close(jpeg.getpixel((2, 8)), RED)


def test_exif_orientation_6_is_rotated_upright(tmp_path: Path) -> None:
    # Orientation 6: the stored pixels must be turned 90 degrees clockwise to display,
    # so the stored left half (red) ends up on top.
    stored = _halves((40, 20), RED, BLUE)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    upright = load_image(tmp_path / "phone.jpg")
    assert upright.size == (20, 40)
    assert _close(upright.getpixel((10, 5)), RED)
    assert _close(upright.getpixel((10, 35)), BLUE)


def test_grayscale_and_bilevel_become_gray_rgb(tmp_path: Path) -> None:
    Image.new("L", (8, 8), 100).save(tmp_path / "gray.png")
    Image.new("1", (8, 8), 1).save(tmp_path / "bilevel.png")
    assert load_image(tmp_path / "gray.png").getpixel((0, 0)) == (100, 100, 100)
    assert load_image(tmp_path / "bilevel.png").getpixel((0, 0)) == WHITE


def test_transparency_is_composited_over_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (4, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (255, 0, 0, 255))
    rgba.putpixel((2, 0), (0, 0, 0, 128))
    rgba.save(tmp_path / "rgba.png")
    image = load_image(tmp_path / "rgba.png")
    assert image.getpixel((0, 0)) == WHITE  # fully transparent black -> white, not black
    assert image.getpixel((1, 0)) == RED
    assert _close(image.getpixel((2, 0)), (127, 127, 127), tolerance=2)  # half black over white
    Image.new("LA", (2, 2), (0, 0)).save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png").getpixel((0, 0)) == WHITE


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    palette = Image.new("P", (2, 1), 0)
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "opaque.png")
    palette.save(tmp_path / "keyed.png", transparency=0)
    opaque = load_image(tmp_path / "opaque.png")
    assert opaque.getpixel((0, 0)) == (0, 0, 0) and opaque.getpixel((1, 0)) == GREEN
    keyed = load_image(tmp_path / "keyed.png")
    assert keyed.getpixel((0, 0)) == WHITE and keyed.getpixel((1, 0)) == GREEN


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 1000, 128 * 257, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    image = load_image(tmp_path / "deep.png")
    assert [image.getpixel((x, 0))[0] for x in range(4)] == [0, 4, 128, 255]


def test_32_bit_integer_and_float_images(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 65535]], dtype=np.int32)).save(tmp_path / "int.tif")
    assert [p[0] for p in np.asarray(load_image(tmp_path / "int.tif"))[0]] == [0, 255]
    floats = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    Image.fromarray(floats).save(tmp_path / "float.tif")
    assert [p[0] for p in np.asarray(load_image(tmp_path / "float.tif"))[0]] == [0, 128, 255]
    wide = np.array([[-5.0, 5.0]], dtype=np.float32)  # no known range: stretched min..max
    Image.fromarray(wide).save(tmp_path / "wide.tif")
    assert [p[0] for p in np.asarray(load_image(tmp_path / "wide.tif"))[0]] == [0, 255]


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "print.jpg", quality=95)
    image = load_image(tmp_path / "print.jpg")
    assert image.mode == "RGB" and _close(image.getpixel((4, 4)), RED, tolerance=20)


def test_jpeg_draft_decodes_smaller_but_never_below_min_side(tmp_path: Path) -> None:
    Image.new("RGB", (400, 300), RED).save(tmp_path / "photo.jpg")
    assert load_image(tmp_path / "photo.jpg", min_side=64).size == (100, 75)  # 1/4 scale
    assert load_image(tmp_path / "photo.jpg", min_side=300).size == (400, 300)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: p.write_text("just some notes"), "not an image"),
        (lambda p: None, "not found"),
    ],
    ids=["zero-byte", "text-named-jpg", "missing"],
)
def test_broken_files_raise_image_error_naming_the_file(tmp_path: Path, make, expected) -> None:
    path = tmp_path / "broken.jpg"
    make(path)
    with pytest.raises(ImageError, match=expected) as caught:
        load_image(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, UserError)


def test_truncated_jpeg_raises_image_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # noise: no tiny JPEG
    Image.fromarray(noise).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated") as caught:
        load_image(tmp_path / "cut.jpg")
    assert "cut.jpg" in str(caught.value)


def _png_claiming_size(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims width x height: a decompression bomb's shape."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("side", "expected"), [(15_000, "225 megapixels"), (50_000, "too large")])
def test_decompression_bomb_is_refused_from_its_header(tmp_path: Path, side, expected) -> None:
    _png_claiming_size(tmp_path / "bomb.png", side, side)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(ImageError, match=expected) as caught:
            load_image(tmp_path / "bomb.png")
    assert "bomb.png" in str(caught.value)
    assert MAX_IMAGE_PIXELS > 12000 * 9000


def test_large_legal_image_loads_without_bomb_warning(tmp_path: Path) -> None:
    Image.new("L", (12000, 9000), 200).save(tmp_path / "pano.jpg", quality=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail here
        quick = load_image(tmp_path / "pano.jpg", min_side=32)
        full = load_image(tmp_path / "pano.jpg")
    assert quick.size == (1500, 1125)
    assert full.size == (12000, 9000) and _close(full.getpixel((6000, 4500)), (200,) * 3, 3)


def test_list_images_sorted_recursive_case_insensitive_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / ".cache").mkdir()
    for name in ["z.png", "A.JPG", "b/deep/c.WebP", "b/x.bmp", "b/y.jpeg", ".hidden.png"]:
        Image.new("RGB", (2, 2)).save(tmp_path / name, format="PNG")
    (tmp_path / ".cache" / "d.png").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "photo.gif").write_bytes(b"GIF89a")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["A.JPG", "b/deep/c.WebP", "b/x.bmp", "b/y.jpeg", "z.png"]
    top_only = [p.name for p in list_images(tmp_path, recursive=False)]
    assert top_only == ["A.JPG", "z.png"]
    with pytest.raises(UserError, match="nowhere"):
        list_images(tmp_path / "nowhere")


def test_to_tensor_resizes_short_side_and_centre_crops() -> None:
    strips = Image.new("RGB", (60, 20), RED)
    strips.paste(GREEN, (20, 0, 40, 20))
    strips.paste(BLUE, (40, 0, 60, 20))
    tensor = to_tensor(strips, 16)
    assert tensor.shape == (3, 16, 16) and tensor.dtype == torch.float32
    assert tensor.min() >= -1 and tensor.max() <= 1
    # The crop keeps the middle third: green everywhere, up to resampling at the edges.
    assert torch.allclose(tensor[:, 8, 8], torch.tensor([-1.0, 1.0, -1.0]))
    assert tensor[1].mean() > 0.9
    assert to_tensor(Image.new("RGB", (7, 9), WHITE), 32).shape == (3, 32, 32)  # upscales too


def test_to_pil_inverts_to_tensor_exactly() -> None:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    round_trip = to_pil(to_tensor(image, 16))
    assert np.array_equal(np.asarray(round_trip), np.asarray(image))
    assert to_pil(torch.full((3, 4, 5), 3.0)).getpixel((0, 0)) == WHITE  # clamped
    with pytest.raises(ValueError, match="shape"):
        to_pil(torch.zeros(1, 3, 4, 4))
