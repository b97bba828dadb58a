"""CelebA's 40 attribute names, in the column order of `list_attr_celeba.txt`.

Every attribute filter (`celeba:PATH?where=Male,-Eyeglasses`) and every
attribute the synthetic renderer draws uses these exact names, so a filter
written for CelebA works on synthetic faces and back.
"""

from __future__ import annotations

import difflib

from facefilter.errors import UserError

CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald",
    "Bangs", "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair",
    "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
    "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip


def parse_where(text: str) -> list[tuple[str, bool]]:
    """ "Male,-Eyeglasses" -> [("Male", True), ("Eyeglasses", False)]; a leading + is allowed."""
    terms = []
    for raw in text.split(","):
        term = raw.strip()
        name = term.lstrip("+-")
        if not name:
            raise UserError(f"where={text}: empty attribute name; write where=Male,-Eyeglasses")
        terms.append((name, not term.startswith("-")))
    return terms


def check_attribute(name: str, attr_names: list[str], origin: str) -> int:
    """Column of `name`, or a UserError with the closest names and every valid one."""
    if name in attr_names:
        return attr_names.index(name)
    close = difflib.get_close_matches(name, attr_names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserError(
        f"unknown attribute {name!r}; {hint}valid ({len(attr_names)} in {origin}): "
        f"{', '.join(attr_names)}"
    )
