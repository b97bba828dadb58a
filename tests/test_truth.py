"""What `eval` scores a filter against, derived from what its run trained on."""

from __future__ import annotations

import pytest

from facefilter.errors import UserError
from facefilter.evaluation.truth import TrainedOn, plan
from facefilter.models.targets import Direction, Target

CYCLEGAN = TrainedOn("unpaired", ("photo", "anime"), None, "synth:photo", "synth:anime")
MAKEOVER = TrainedOn(
    "unpaired",
    ("Male", "female"),
    None,
    "synth:photo?count=400&where=Male",
    "synth:photo?count=400&where=-Male,-Wearing_Lipstick&name=female",
)
TRVAE = TrainedOn("classes", ("photo", "anime", "cartoon"), "synth:photo,anime,cartoon?count=90")
EDITOR = TrainedOn("attributes", ("Smiling", "Eyeglasses"), "synth:photo?count=500")


def test_a_style_change_is_scored_against_the_same_faces_in_the_target_style():
    both_ways = [plan(CYCLEGAN, Direction("photo", Target("anime"))),
                 plan(CYCLEGAN, Direction("anime", Target("photo")))]  # fmt: skip
    assert [(p.inputs, p.truth, p.reference, p.style) for p in both_ways] == [
        ("synth:photo", "synth:anime", "synth:anime", "anime"),
        ("synth:anime", "synth:photo", "synth:photo", "photo"),
    ]
    tv = plan(TRVAE, Direction("anime", Target("cartoon")))
    assert (tv.inputs, tv.truth) == ("synth:anime?count=90", "synth:cartoon?count=90")


def test_a_makeover_forces_every_term_of_the_target_filter():
    mtf = plan(MAKEOVER, Direction("Male", Target("female")))
    assert mtf.inputs == "synth:photo?count=400&where=Male"
    assert mtf.truth == "synth:photo?count=400&where=Male&set=Male:-1,Wearing_Lipstick:-1"
    assert mtf.edited == {"Male": False, "Wearing_Lipstick": False} and mtf.style == "photo"


def test_an_edit_picks_the_faces_that_lack_it_and_forces_it_on_the_same_faces():
    add = plan(EDITOR, Direction(None, Target("Smiling", 1)))
    assert add.inputs == "synth:photo?count=500&where=-Smiling"
    assert add.truth == "synth:photo?count=500&where=-Smiling&set=Smiling:1"
    assert add.reference == "synth:photo?count=500&where=Smiling" and add.edited == {
        "Smiling": True
    }
    both = plan(EDITOR, Direction(None, Target("Smiling", -1), (Target("Eyeglasses", 1),)))
    assert (
        both.truth == "synth:photo?count=500&where=Smiling,-Eyeglasses&set=Smiling:-1,Eyeglasses:1"
    )
    own = plan(EDITOR, Direction(None, Target("Smiling", 1)), truth="celeba:/data/smiling")
    assert own.truth == "celeba:/data/smiling?where=-Smiling"  # the same faces as the inputs


def test_real_folders_have_a_reference_and_no_truth():
    folders = TrainedOn("unpaired", ("a", "b"), None, "folder:/x/a", "folder:/x/b")
    found = plan(folders, Direction("a", Target("b")))
    assert (found.inputs, found.truth, found.reference) == ("folder:/x/a", None, "folder:/x/b")
    assert any("no paired truth" in note for note in found.notes)


@pytest.mark.parametrize(
    ("trained", "direction", "data", "message"),
    [(EDITOR, Direction(None, Target("Smiling", 1)), "folder:/x", "give synth: or celeba"),
     (CYCLEGAN, Direction("photo", Target("anime")), "synth:photo,anime", "several styles"),
     (TrainedOn("classes", ("a", "b"), "classes:/x"), Direction("a", Target("b")), None,
      "no data spec of the run gives the faces of 'a' alone")],
)  # fmt: skip
def test_what_cannot_be_scored_is_one_line(trained, direction, data, message):
    with pytest.raises(UserError, match=message):
        plan(trained, direction, data)
