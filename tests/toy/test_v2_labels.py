"""Toy world v2: the error type of every object word, on hand-made captions (types by the rules in
lvsal_nb.toy.labels's docstring, worked out by hand here)."""

import pytest

from lvsal_nb.toy.labels import (
    ERROR_TYPES,
    LIST_TYPES,
    RECAP_TYPES,
    label_caption,
    label_words,
    recap_omissions,
)


def types(text, truth):
    return [(lab.shape, lab.part, lab.type) for lab in label_caption(text, truth)]


def test_faithful_caption_is_all_correct():
    text = "there is a large red star , a small blue cross and a large blue square . so : star , cross , square ."  # noqa: E501
    labs = label_caption(text, ["cross", "star", "square"])
    assert [(lab.part, lab.type) for lab in labs] == [("list", "correct")] * 3 + [
        ("recap", "recap_correct")
    ] * 3
    assert not any(lab.hallucinated for lab in labs)
    # recap word k copies list word k: word indices 5, 10, 15 (counted by hand)
    assert [lab.source for lab in labs[3:]] == [5, 10, 15] == [lab.expected for lab in labs[3:]]
    assert [lab.index for lab in labs] == [5, 10, 15, 19, 21, 23]


def test_list_part_types():
    # truth {star, circle}; moon is star's partner (absent) -> partner; square -> misread;
    # triangle is the partner of the hallucinated square -> cascade; star again -> repeat
    text = "there is a star , a moon , a square , a triangle , a star and a circle ."
    assert types(text, ["star", "circle"]) == [
        ("star", "list", "correct"), ("moon", "list", "partner"), ("square", "list", "misread"),
        ("triangle", "list", "cascade"), ("star", "list", "repeat"), ("circle", "list", "correct"),
    ]  # fmt: skip


def test_overrun_after_all_objects_named():
    # both objects named, then one more: overrun even though hexagon's partner ring... is absent too
    text = "there is a star , a circle and a cross ."
    assert types(text, ["star", "circle"])[-1] == ("cross", "list", "overrun")
    # cross is circle's partner, but every object was already named: overrun wins over partner
    text = "there is a cross , a star and a circle ."
    assert types(text, ["star", "circle"])[0] == ("cross", "list", "partner")


def test_recap_types_against_the_models_own_list():
    # the model listed star, moon (hallucinated), circle; recap: moon at turn 0 (order error),
    # moon again at turn 1 (where the list has moon: a faithful copy), circle at turn 2 (correct
    # copy), heart never listed, star past the end
    text = "there is a star , a moon and a circle . so : moon , moon , circle , heart , star ."
    got = [(lab.shape, lab.type, lab.hallucinated) for lab in label_caption(text, ["star", "circle"])][3:]
    assert got == [("moon", "recap_order", True), ("moon", "recap_correct", True), ("circle", "recap_correct", False),  # noqa: E501
                   ("heart", "recap_never_listed", True), ("star", "overrun", False)]  # fmt: skip


def test_recap_repeat_is_a_memory_error_but_a_copied_list_repeat_is_faithful():
    # list star, circle; recap star, star: turn 1 should copy circle, names star again -> repeat
    labs = label_caption("there is a star and a circle . so : star , star .", ["star", "circle"])
    assert [(lab.type, lab.source, lab.expected) for lab in labs[2:]] == [
        ("recap_correct", 3, 3),
        ("repeat", 3, 6),
    ]
    # list star, circle, star (a list repeat); recap copies it word for word: all faithful, and the
    # third recap word's source is the third list word (index 9), not the first listing (3)
    words = "there is a star , a circle and a star . so : star , circle , star ."
    labs = label_caption(words, ["star", "circle"])
    assert [lab.type for lab in labs] == ["correct", "correct", "repeat"] + ["recap_correct"] * 3
    assert labs[-1].source == 9 == labs[-1].expected


def test_copy_of_a_hallucinated_list_word_is_a_faithful_recap():
    labs = label_caption("there is a moon . so : moon .", ["circle"])
    assert [(lab.type, lab.hallucinated) for lab in labs] == [("misread", True), ("recap_correct", True)]
    # with star (moon's partner) in the scene the same list word is a partner error
    assert label_caption("there is a moon . so : moon .", ["star"])[0].type == "partner"


def test_never_listed_recap_word_points_at_the_word_it_should_copy():
    labs = label_caption("there is a star and a circle . so : star , cross .", ["star", "circle"])
    never = labs[-1]
    assert never.type == "recap_never_listed" and never.source is None
    assert never.expected == 6  # "circle" is word 6: the word turn 1 should have copied


def test_no_recap_and_non_shape_words():
    assert types("there is a large red star .", ["star"]) == [("star", "list", "correct")]
    assert label_words([], ["star"]) == []
    assert label_words(["so", ":", "star"], ["star"])[0].type == "recap_never_listed"


@pytest.mark.parametrize("t", ERROR_TYPES)
def test_error_types_are_known(t):
    assert t in LIST_TYPES + RECAP_TYPES and t not in ("correct", "recap_correct")


def test_recap_omissions_by_hand():
    # words: 0 there 1 is 2 a 3 star 4 , 5 a 6 cross 7 , 8 a 9 moon 10 and 11 a 12 star 13 . 14 so 15 :
    # 16 moon 17 . -> star (first listed at 3) and cross (6) are never recapped; moon is.
    words = "there is a star , a cross , a moon and a star . so : moon .".split()
    assert recap_omissions(words) == [(3, "star"), (6, "cross")]
    full = "there is a star and a cross . so : cross , star .".split()
    assert recap_omissions(full) == []  # out of order, but nothing left out
    assert recap_omissions("there is a star and a cross .".split()) == []  # no recap: nothing judged
    assert recap_omissions("there is a star . so : .".split()) == [(3, "star")]
