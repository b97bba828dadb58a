"""Labelled grids, GIFs, and pictures written beside their target and renamed into place."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facefilter.errors import UserError
from facefilter.pictures import enlarge, labelled_grid, save_gif, save_picture


def test_a_picture_is_written_in_the_format_its_suffix_names(tmp_path):
    picture = np.full((8, 8, 3), 200, np.uint8)
    for name, kind in (("a.png", "PNG"), ("a.jpg", "JPEG"), ("a.webp", "WEBP")):
        save_picture(tmp_path / "out" / name, picture)
        assert Image.open(tmp_path / "out" / name).format == kind
    for name in ("a.x", "a.txt", "noname"):  # never a PNG under another name
        with pytest.raises(UserError, match=r"name a png or jpg or jpeg or webp or bmp file"):
            save_picture(tmp_path / "out" / name, picture)
        assert not (tmp_path / "out" / name).exists()


def test_a_failed_write_leaves_the_old_picture_whole_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    save_picture(path, np.zeros((8, 8, 3), np.uint8))
    before = path.read_bytes()

    def full_disk(self, fp, *args, **kwargs):
        with open(fp, "wb") as handle:
            handle.write(b"half a pic")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    with pytest.raises(UserError, match=r"no space left on .*: free \d+ MB"):
        save_picture(path, np.ones((8, 8, 3), np.uint8))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_labelled_grid_has_room_for_its_labels():
    tiles = np.zeros((2, 3, 16, 16, 3), np.uint8)
    plain = labelled_grid(tiles)
    names = {"rows": ["first face", "second"], "columns": ["a", "+Blond_Hair", "b"]}
    labelled = labelled_grid(tiles, **names, title="a title")
    assert plain.shape[0] >= 2 * 16 and plain.shape[1] >= 3 * 16
    assert labelled.shape[0] > plain.shape[0] + 40  # a title and upward column labels
    assert labelled.shape[1] > plain.shape[1] + 40  # row labels on the left
    assert enlarge(tiles, 2).shape == (2, 3, 32, 32, 3)


def test_a_gif_plays_forth_and_back(tmp_path):
    frames = [np.full((8, 8, 3), 40 * i, np.uint8) for i in range(4)]
    save_gif(tmp_path / "a.gif", frames, seconds=1.0)
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 6 and gif.info["loop"] == 0


def test_kinds_grid_puts_each_kind_in_a_labelled_row_at_a_visible_size():
    import torch

    from facefilter.pictures import kinds_grid

    first = torch.full((3, 3, 8, 8), -1.0)  # black faces
    second = torch.ones(3, 3, 8, 8)  # white faces
    grid = kinds_grid([first, second], ["input", "output"], "a title")
    plain = kinds_grid([first, second], ["", ""], "")
    assert grid.shape[2] > plain.shape[2] and grid.shape[1] > plain.shape[1]  # room for labels
    pixels = (plain * 255).round().permute(1, 2, 0).numpy()
    tile = 96  # 8 px enlarged 12x
    black_rows = np.where((pixels == 0).all(axis=2).any(axis=1))[0]
    white = (pixels == 255).all(axis=2)
    assert black_rows.max() - black_rows.min() + 1 == tile  # one row of black tiles...
    assert white[black_rows.max() + 1 :].any() and not white[: black_rows.min()].any()  # ...above
