"""The `emoji:` data source: the face emoji of Noto Color Emoji, as a domain of cartoon faces.

    emoji:                            Debian's font (apt-get install fonts-noto-color-emoji)
    emoji:PATH/NotoColorEmoji.ttf     a font file you give
    emoji:?limit=20&name=smiley       the first 20 faces of `FACES`, as the domain "smiley"

so `facefilter train cyclegan-lite --data-a synth:photo --data-b emoji:` learns photo ->
emoji. `FACES` is all there is (the font is OFL-licensed, the faces are its drawings):
every split gives every face, as `folder:` does without split sub-folders, and there
are no attributes and one class.

Each face is drawn once, at the font's native size, on a white background (how emoji are
seen, on a page or in a chat, and the colour `load_image` gives transparent pixels too),
cropped to a square around the glyph with a small margin, and cached as PNG files with a
`faces.json` naming them, in `$FACEFILTER_CACHE/emoji/` (unset: `$XDG_CACHE_HOME`, else
`~/.cache`, then `facefilter/emoji/`), a folder per font file's content. The folder is built
beside its place and swapped in whole, so a killed first open leaves no half cache; one
that cannot be written is warned about, and the faces drawn again on the next open.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from facefilter.data.images import ImageError, load_image, to_tensor
from facefilter.data.spec import ImageSource, SourceSpec, int_option
from facefilter.errors import UserError
from facefilter.memory import refuse_over_memory
from facefilter.pixels import from_pixels, to_pixels
from facefilter.safe_io import replace_folder
from facefilter.sizes import ImageSize

# Where Debian's fonts-noto-color-emoji puts the font (bookworm on), then older layouts.
KNOWN_FONTS = (
    Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"),
    Path("/usr/share/fonts/noto/NotoColorEmoji.ttf"),
)
MISSING_FONT = (
    "emoji: needs Debian's fonts-noto-color-emoji (apt-get install fonts-noto-color-emoji), "
    "or give the font's path: emoji:/path/NotoColorEmoji.ttf"
)
FONT_PIXELS = 109  # the one size whose bitmaps (CBDT) Noto Color Emoji holds; 136 px glyphs
MARGIN = 0.06  # of the glyph's longer side, at each edge: the face does not touch the frame
BACKGROUND = (255, 255, 255)  # white: how emoji are seen, and what transparency is elsewhere
MIN_CHROMA = 24  # a colour font draws some pixel this far from grey; a plain font draws none
CACHE_ENV = "FACEFILTER_CACHE"
INDEX_FILE = "faces.json"
# how the cached faces were drawn, kept in faces.json: a cache drawn otherwise is drawn again
DRAWN = {"size": FONT_PIXELS, "margin": MARGIN, "background": list(BACKGROUND)}


class Face(NamedTuple):
    codepoint: int
    name: str  # the CLDR short name

    @property
    def text(self) -> str:
        return chr(self.codepoint)

    @property
    def file(self) -> str:
        return f"{self.codepoint:x}.png"


# Unicode's "Smileys & Emotion" faces (emoji-test.txt, Emoji 15.0), in its order: smiling,
# affection, tongue, hand, neutral, sleepy, unwell, hat, glasses, concerned, negative,
# costume, cat and monkey faces. Single code points only: the ZWJ faces (face in clouds,
# face exhaling, face with spiral eyes) need libraqm to become one glyph, and without it
# would draw as two. Left out as no face: skull, skull and crossbones, pile of poo, and
# alien monster (a space invader). Plain U+263A and U+2639 draw their emoji without FE0F.
# fmt: off
FACES: tuple[Face, ...] = tuple(Face(*row) for row in (
    (0x1F600, "grinning face"), (0x1F603, "grinning face with big eyes"),
    (0x1F604, "grinning face with smiling eyes"), (0x1F601, "beaming face with smiling eyes"),
    (0x1F606, "grinning squinting face"), (0x1F605, "grinning face with sweat"),
    (0x1F923, "rolling on the floor laughing"), (0x1F602, "face with tears of joy"),
    (0x1F642, "slightly smiling face"), (0x1F643, "upside-down face"),
    (0x1FAE0, "melting face"), (0x1F609, "winking face"),
    (0x1F60A, "smiling face with smiling eyes"), (0x1F607, "smiling face with halo"),
    (0x1F970, "smiling face with hearts"), (0x1F60D, "smiling face with heart-eyes"),
    (0x1F929, "star-struck"), (0x1F618, "face blowing a kiss"), (0x1F617, "kissing face"),
    (0x263A, "smiling face"), (0x1F61A, "kissing face with closed eyes"),
    (0x1F619, "kissing face with smiling eyes"), (0x1F972, "smiling face with tear"),
    (0x1F60B, "face savoring food"), (0x1F61B, "face with tongue"),
    (0x1F61C, "winking face with tongue"), (0x1F92A, "zany face"),
    (0x1F61D, "squinting face with tongue"), (0x1F911, "money-mouth face"),
    (0x1F917, "smiling face with open hands"), (0x1F92D, "face with hand over mouth"),
    (0x1FAE2, "face with open eyes and hand over mouth"), (0x1FAE3, "face with peeking eye"),
    (0x1F92B, "shushing face"), (0x1F914, "thinking face"), (0x1FAE1, "saluting face"),
    (0x1F910, "zipper-mouth face"), (0x1F928, "face with raised eyebrow"),
    (0x1F610, "neutral face"), (0x1F611, "expressionless face"),
    (0x1F636, "face without mouth"), (0x1FAE5, "dotted line face"),
    (0x1F60F, "smirking face"), (0x1F612, "unamused face"),
    (0x1F644, "face with rolling eyes"), (0x1F62C, "grimacing face"),
    (0x1F925, "lying face"), (0x1FAE8, "shaking face"),
    (0x1F60C, "relieved face"), (0x1F614, "pensive face"), (0x1F62A, "sleepy face"),
    (0x1F924, "drooling face"), (0x1F634, "sleeping face"),
    (0x1F637, "face with medical mask"), (0x1F912, "face with thermometer"),
    (0x1F915, "face with head-bandage"), (0x1F922, "nauseated face"),
    (0x1F92E, "face vomiting"), (0x1F927, "sneezing face"), (0x1F975, "hot face"),
    (0x1F976, "cold face"), (0x1F974, "woozy face"),
    (0x1F635, "face with crossed-out eyes"), (0x1F92F, "exploding head"),
    (0x1F920, "cowboy hat face"), (0x1F973, "partying face"), (0x1F978, "disguised face"),
    (0x1F60E, "smiling face with sunglasses"), (0x1F913, "nerd face"),
    (0x1F9D0, "face with monocle"),
    (0x1F615, "confused face"), (0x1FAE4, "face with diagonal mouth"),
    (0x1F61F, "worried face"), (0x1F641, "slightly frowning face"),
    (0x2639, "frowning face"), (0x1F62E, "face with open mouth"), (0x1F62F, "hushed face"),
    (0x1F632, "astonished face"), (0x1F633, "flushed face"), (0x1F97A, "pleading face"),
    (0x1F979, "face holding back tears"), (0x1F626, "frowning face with open mouth"),
    (0x1F627, "anguished face"), (0x1F628, "fearful face"),
    (0x1F630, "anxious face with sweat"), (0x1F625, "sad but relieved face"),
    (0x1F622, "crying face"), (0x1F62D, "loudly crying face"),
    (0x1F631, "face screaming in fear"), (0x1F616, "confounded face"),
    (0x1F623, "persevering face"), (0x1F61E, "disappointed face"),
    (0x1F613, "downcast face with sweat"), (0x1F629, "weary face"), (0x1F62B, "tired face"),
    (0x1F971, "yawning face"),
    (0x1F624, "face with steam from nose"), (0x1F621, "enraged face"),
    (0x1F620, "angry face"), (0x1F92C, "face with symbols on mouth"),
    (0x1F608, "smiling face with horns"), (0x1F47F, "angry face with horns"),
    (0x1F921, "clown face"), (0x1F479, "ogre"), (0x1F47A, "goblin"), (0x1F47B, "ghost"),
    (0x1F47D, "alien"), (0x1F916, "robot"),
    (0x1F63A, "grinning cat"), (0x1F638, "grinning cat with smiling eyes"),
    (0x1F639, "cat with tears of joy"), (0x1F63B, "smiling cat with heart-eyes"),
    (0x1F63C, "cat with wry smile"), (0x1F63D, "kissing cat"), (0x1F640, "weary cat"),
    (0x1F63F, "crying cat"), (0x1F63E, "pouting cat"),
    (0x1F648, "see-no-evil monkey"), (0x1F649, "hear-no-evil monkey"),
    (0x1F64A, "speak-no-evil monkey"),
))
# fmt: on


class EmojiSource(ImageSource):
    """Face emoji held in memory as uint8 pixels (a few MB), one class; `names` captions them."""

    def __init__(
        self, pictures: Sequence[Image.Image], faces: Sequence[Face], size: ImageSize, font: str
    ) -> None:
        super().__init__("emoji", ["emoji"], ())
        self.size = size
        self.faces = list(faces)
        self.names = [face.name for face in faces]
        self._font = font  # the font's content digest: the same drawings under any path
        # (N, 3, H, W) uint8: resized once here, read back as floats per item
        self._pixels = torch.stack([to_pixels(to_tensor(picture, size)) for picture in pictures])

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} emoji")
        image = from_pixels(self._pixels[index])  # (3, H, W) in [-1, 1]
        return {"image": image, "label": 0, "index": index}

    def identities(self) -> list[Hashable]:
        return [("emoji", self._font, face.codepoint) for face in self.faces]


def open_emoji(spec: SourceSpec, size: ImageSize, split: str, seed: int) -> ImageSource:
    """Every split is every face: the 120 faces of `FACES` are all there is."""
    limit = int_option(spec, "limit", None, minimum=1)
    path = font_path(spec)
    font = open_font(path, spec)
    faces = FACES[:limit]
    refuse_over_memory(len(faces) * 3 * size.width * size.height, f"{spec} at {size}",
                       "lower --size or limit=")  # fmt: skip
    digest = font_digest(path)
    pictures = cached_faces(font, digest, str(path))
    return EmojiSource(pictures[: len(faces)], faces, size, digest)


def font_path(spec: SourceSpec) -> Path:
    """The font `spec` names, else the first of Debian's known places that has it."""
    if not spec.path:
        found = [path for path in KNOWN_FONTS if path.is_file()]
        if not found:
            raise UserError(MISSING_FONT)
        return found[0]
    path = Path(spec.path).expanduser()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise UserError(f"{spec}: {path} {what}; give a font file such as "
                        f"{KNOWN_FONTS[0]}, or write emoji: for Debian's")  # fmt: skip
    return path


def open_font(path: Path, spec: SourceSpec) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(str(path), FONT_PIXELS)
    except OSError as error:  # not a font, unreadable, or no bitmaps at this size
        raise UserError(f"{spec}: cannot open {path} as a colour emoji font at {FONT_PIXELS} "
                        f"px ({error}); give NotoColorEmoji.ttf") from None  # fmt: skip


def font_digest(path: Path) -> str:
    """The font's content, in 16 hex digits: the cache's folder name (10 MB, ~20 ms)."""
    digest = hashlib.sha256()
    with open(path, "rb") as opened:
        while chunk := opened.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def render_face(font: ImageFont.FreeTypeFont, face: Face, origin: str) -> Image.Image:
    """One face, RGB, on `BACKGROUND`: the glyph's square, with `MARGIN` at each edge;
    `origin` names the font in errors."""
    _, _, right, bottom = font.getbbox(face.text)  # the pen's box: the glyph lies inside
    glyph = Image.new("RGBA", (math.ceil(right) + 2, math.ceil(bottom) + 2), (0, 0, 0, 0))
    ImageDraw.Draw(glyph).text((0, 0), face.text, font=font, embedded_color=True)
    box = glyph.getbbox()  # of the alpha: the drawn pixels only
    if box is None or not is_coloured(glyph):
        raise UserError(f"{origin}: draws no colour glyph for U+{face.codepoint:04X} "
                        f"({face.name}); give NotoColorEmoji.ttf")  # fmt: skip
    width, height = box[2] - box[0], box[3] - box[1]
    side = round(max(width, height) * (1 + 2 * MARGIN))
    square = Image.new("RGBA", (side, side), (*BACKGROUND, 255))
    offset = ((side - width) // 2, (side - height) // 2)
    square.alpha_composite(glyph.crop(box), offset)
    return square.convert("RGB")


def is_coloured(glyph: Image.Image) -> bool:
    """Whether some drawn pixel is far from grey: a plain font draws one ink, a colour one many."""
    rgba = np.asarray(glyph, dtype=np.int16)  # (H, W, 4)
    drawn = rgba[rgba[..., 3] > 0][:, :3]  # (P, 3)
    return bool(drawn.size) and int((drawn.max(1) - drawn.min(1)).max()) >= MIN_CHROMA


def cache_folder(digest: str) -> Path:
    """`$FACEFILTER_CACHE/emoji/DIGEST`, else under `$XDG_CACHE_HOME/facefilter`, else
    `~/.cache/facefilter`."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "facefilter")
    return Path(root).expanduser() / "emoji" / digest


def cached_faces(font: ImageFont.FreeTypeFont, digest: str, origin: str) -> list[Image.Image]:
    """Every face of `FACES`, read from the cache, or drawn and cached when it lacks them."""
    folder = cache_folder(digest)
    pictures = read_cache(folder)
    if pictures is not None:
        return pictures
    pictures = [render_face(font, face, origin) for face in FACES]
    try:
        replace_folder(folder, lambda tmp: write_cache(tmp, pictures, origin))
    except UserError as error:  # a cache saves time only: go on without one
        warnings.warn(f"emoji: faces not cached ({error}); set {CACHE_ENV} to a writable "
                      "folder to draw them once", UserWarning, stacklevel=2)  # fmt: skip
    return pictures


def read_cache(folder: Path) -> list[Image.Image] | None:
    """The cached faces, or None when the cache is missing, broken, or made for another table."""
    try:
        index = json.loads((folder / INDEX_FILE).read_text())
        listed = [(row["codepoint"], row["name"], row["file"]) for row in index["faces"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    drawn = {key: index.get(key) for key in DRAWN}
    if drawn != DRAWN or listed != [(f"{f.codepoint:04X}", f.name, f.file) for f in FACES]:
        return None  # drawn otherwise, or for another table: draw again
    try:
        return [load_image(folder / face.file) for face in FACES]
    except ImageError:
        return None


def write_cache(folder: Path, pictures: Sequence[Image.Image], origin: str) -> None:
    for face, picture in zip(FACES, pictures, strict=True):
        picture.save(folder / face.file)
    rows = [{"codepoint": f"{face.codepoint:04X}", "name": face.name, "file": face.file}
            for face in FACES]  # fmt: skip
    index = {"font": origin, **DRAWN, "faces": rows}
    (folder / INDEX_FILE).write_text(json.dumps(index, indent=1, ensure_ascii=False))
