"""The "made by a filter" label every picture and video a filter makes carries.

Laws and platforms ask that synthetic or edited faces say so; what platforms read is the
IPTC digital source type in the file's XMP. `Provenance` builds that XMP packet: the
source type (a photo with faces pasted back is `compositeWithTrainedAlgorithmicMedia`, a
whole translated image `trainedAlgorithmicMedia`), `xmp:CreatorTool` ("facefilter
X.Y.Z"), the filter and its target(s), and a sentence for people (`dc:description`).

Where it goes, by format: PNG an `iTXt` chunk `XML:com.adobe.xmp`, JPEG an APP1 segment
and WebP its XMP chunk (all three written by Pillow); GIF an application extension
("XMP DataXMP" and its magic trailer) and MP4 / MOV a top-level `uuid` box, both written
here by hand, since neither Pillow nor ffmpeg writes them. BMP and AVI cannot carry it:
`unlabelled` says so in one line. Read it with `exiftool -XMP:all FILE`.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import facefilter

SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
COMPOSITE = SOURCE_TYPES + "compositeWithTrainedAlgorithmicMedia"  # faces pasted into a photo
GENERATED = SOURCE_TYPES + "trainedAlgorithmicMedia"  # the whole image is the model's output
NAMESPACES = {  # prefix -> URI, as the packet declares them
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "facefilter": "urn:facefilter:xmp:1.0:",  # ours: the filter and target, for machines
}
XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")  # ISO BMFF's XMP box
GIF_XMP_APP = b"\x21\xff\x0bXMP DataXMP"  # application extension, identifier + auth code
GIF_MAGIC_TRAILER = bytes([1, *range(255, -1, -1), 0])  # any sub-block walk ends at 0
CARRIERS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".mp4", ".mov", ".m4v")
NO_LABEL = "outputs carry no 'made by a filter' label (--no-label)"
# characters XML 1.0 refuses even escaped (controls but tab and newlines, lone surrogates)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: str) -> str:
    """`value` as XML character data or an attribute: & < > " escaped, illegal characters
    (which no XML may hold) as U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", value), {'"': "&quot;"})


@dataclass(frozen=True)
class Provenance:
    """What made a picture: `filter` (the run's name and family, e.g. "p2a
    (cyclegan-lite)"), `target` (its target domain or edits, comma-separated when several)
    and `whole` (the whole picture is the model's output, not a photo with faces pasted
    back)."""

    filter: str
    target: str
    whole: bool = False

    @property
    def source_type(self) -> str:
        return GENERATED if self.whole else COMPOSITE

    @property
    def creator_tool(self) -> str:
        return f"facefilter {facefilter.__version__}"

    def description(self) -> str:
        what = "the whole image is its output" if self.whole else "it made the faces shown"
        return f"Made by the face filter {self.filter} (to {self.target}): {what}."

    def xmp(self) -> bytes:
        """The XMP packet, UTF-8, with no NUL byte (a GIF's extension cannot hold one)."""
        declared = "\n    ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NAMESPACES.items()
                                 if prefix not in ("x", "rdf"))  # fmt: skip
        packet = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="{NAMESPACES["x"]}">
 <rdf:RDF xmlns:rdf="{NAMESPACES["rdf"]}">
  <rdf:Description rdf:about=""
    {declared}>
   <Iptc4xmpExt:DigitalSourceType>{self.source_type}</Iptc4xmpExt:DigitalSourceType>
   <xmp:CreatorTool>{_text(self.creator_tool)}</xmp:CreatorTool>
   <facefilter:Filter>{_text(self.filter)}</facefilter:Filter>
   <facefilter:Target>{_text(self.target)}</facefilter:Target>
   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">{_text(self.description())}</rdf:li>
    </rdf:Alt>
   </dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
        return packet.encode("utf-8")


def pillow_options(provenance: Provenance, kind: str) -> dict[str, Any]:
    """The `Image.save` keyword arguments that carry the label in Pillow format `kind`
    (PNG, JPEG, WEBP); {} for a format Pillow cannot write it into."""
    if kind == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()  # iTXt, uncompressed, as the XMP specification asks
        info.add_itxt("XML:com.adobe.xmp", provenance.xmp().decode("utf-8"))
        return {"pnginfo": info}
    if kind in ("JPEG", "WEBP"):  # an APP1 segment / the XMP chunk
        return {"xmp": provenance.xmp()}
    return {}


def labelled_gif(gif: bytes, provenance: Provenance) -> bytes:
    """`gif` with the XMP packet in an application extension before its trailer (XMP
    specification part 3: the packet's bytes, then a 258-byte trailer, so a reader that
    walks them as sub-blocks lands on the terminator)."""
    if not gif.startswith(b"GIF89a") or not gif.endswith(b"\x3b"):
        raise ValueError("not a whole GIF89a file")
    return gif[:-1] + GIF_XMP_APP + provenance.xmp() + GIF_MAGIC_TRAILER + b"\x3b"


def label_video(path: Path, provenance: Provenance) -> bool:
    """Append a top-level `uuid` XMP box to the MP4 / MOV file at `path` (once ffmpeg has
    closed it: players skip boxes they do not know). False, and nothing written, when the
    file is no ISO media file (AVI)."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head[4:8] not in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return False
    packet = provenance.xmp()
    box = struct.pack(">I4s", 8 + len(XMP_UUID) + len(packet), b"uuid") + XMP_UUID + packet
    with open(path, "ab") as handle:
        handle.write(box)
    return True


def unlabelled(path: Path) -> str | None:
    """One warning line when a file named `path` cannot carry the label; None when it can."""
    suffix = Path(path).suffix.lower()
    if suffix in CARRIERS:
        return None
    kind = suffix[1:] or "extensionless"
    return (f"warning: {kind} files cannot carry the 'made by a filter' label; {path} is "
            "written without it (write .png, .jpg, .webp or .mp4 to keep it)")  # fmt: skip
