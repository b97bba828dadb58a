"""Targets and directions: parsing edits with amounts, combining them, and the messages."""

from __future__ import annotations

import pytest

from facefilter.errors import UserError
from facefilter.models.targets import Direction, Target, combine, resolve

EDITS = [Direction(None, Target(name, sign)) for name in ("Smiling", "Eyeglasses")
         for sign in (1, -1)]  # fmt: skip
DOMAINS = [Direction("photo", Target("anime")), Direction("anime", Target("photo"))]


def test_an_edit_may_carry_an_amount():
    assert Target.parse("+Smiling=1.5") == Target("Smiling", 1, 1.5)
    assert Target.parse("-Eyeglasses") == Target("Eyeglasses", -1)
    assert (
        str(Target("Smiling", 1, 1.5)) == "+Smiling=1.5"
        and str(Target("Smiling", -1)) == "-Smiling"
    )
    assert Target.parse("+Smiling=1.5").unit == Target("Smiling", 1)


def test_a_domain_named_by_its_filter_is_a_target():
    """A makeover's unnamed target set is called after its filter (`where=-Male,-Eyeglasses`
    is `not-Male+not-Eyeglasses`): `eval` and `apply --to` take that name back."""
    assert Target.parse("not-Male+not-Eyeglasses") == Target("not-Male+not-Eyeglasses")
    assert Target.parse("+Smiling") == Target("Smiling", 1)  # a leading sign is still an edit


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("anime=2", "an amount is for attribute edits"),
        ("+Smiling=0", "must be a number > 0"),
        ("+Smiling=-1", "must be a number > 0"),
        ("+Smiling=nan", "must be a number > 0"),
        ("+Smiling=lots", "must be a number > 0"),
        ("+", "is not a name"),
    ],
)
def test_bad_amounts_are_one_line(text, message):
    with pytest.raises(UserError, match=message):
        Target.parse(text)


def test_resolve_keeps_the_amount_and_finds_the_offered_direction():
    direction = resolve(EDITS, "+Smiling=2")
    assert direction == Direction(None, Target("Smiling", 1, 2.0))
    assert direction.units == (Direction(None, Target("Smiling", 1)),)


def test_combine_applies_edits_together():
    both = combine([resolve(EDITS, "+Smiling=1.5"), resolve(EDITS, "-Eyeglasses")])
    assert both.targets == (Target("Smiling", 1, 1.5), Target("Eyeglasses", -1))
    assert set(both.units) <= set(EDITS)
    assert str(both) == "any face -> +Smiling=1.5 -Eyeglasses"


def test_combine_refuses_domains_and_repeats():
    with pytest.raises(UserError, match="use --to anime"):
        combine([DOMAINS[0]])
    with pytest.raises(UserError, match="Smiling twice"):
        combine([resolve(EDITS, "+Smiling"), resolve(EDITS, "-Smiling")])


def test_messages_name_what_the_model_offers():
    with pytest.raises(
        UserError, match="unknown attribute 'Bald'; this model edits Eyeglasses, Smiling"
    ):
        resolve(EDITS, "+Bald")
    with pytest.raises(UserError, match=r"no attribute vectors.*translates to anime, photo"):
        resolve(DOMAINS, "+Smiling")
    with pytest.raises(UserError, match=r"no targets yet.*facefilter vectors"):
        resolve([], "+Smiling")
    with pytest.raises(UserError, match="unknown target 'sketch'; this model offers anime, photo"):
        resolve(DOMAINS, "sketch")
