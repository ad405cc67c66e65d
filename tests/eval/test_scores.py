"""Hand-computed checks of the POPE answer parser and the POPE / CHAIR formulas."""

import math

import numpy as np
import pytest

from lvsal_nb.errors import ConfigError
from lvsal_nb.eval.scores import chair_scores, parse_yes_no, pope_scores


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Yes", True),
        ("yes, there is a dog.", True),
        ("There is a dog in the image.", True),
        ("No", False),
        ("NO.", False),
        ("no, there is no dog", False),
        ("Not at all", False),
        ("There isn't a dog.", False),
        ("There isn\u2019t a dog.", False),  # typographic apostrophe
        ("I don't see one", False),
        ("No.", False),
        ("No, ", False),
        # POPE keeps only the first sentence: the negation after the first '.' does not count.
        ("Yes. There is no cat.", True),
        ("Nothing suggests that", True),  # "nothing" is not one of the negation words
        ("Knot", True),  # a word ending in 'not' is not 'not'
        ("", True),  # no negation at all -> yes, as POPE
    ],
)
def test_parse_yes_no(text, expected):
    assert parse_yes_no(text) is expected


def test_parse_yes_no_rejects_non_str():
    with pytest.raises(ConfigError, match="str"):
        parse_yes_no(None)


def test_pope_scores_hand_computed():
    # pred:  Y Y Y N N Y N N
    # label: Y Y N N Y Y N Y   -> TP=3 (0,1,5) FP=1 (2) TN=2 (3,6) FN=2 (4,7)
    pred = [1, 1, 1, 0, 0, 1, 0, 0]
    label = [1, 1, 0, 0, 1, 1, 0, 1]
    s = pope_scores([bool(p) for p in pred], np.array(label, dtype=bool))
    assert s["n"] == 8
    assert s["accuracy"] == pytest.approx(5 / 8)
    assert s["precision"] == pytest.approx(3 / 4)
    assert s["recall"] == pytest.approx(3 / 5)
    # F1 = 2PR/(P+R) = 2*0.75*0.6/1.35 = 2/3
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["yes_ratio"] == pytest.approx(4 / 8)


def test_pope_scores_zero_division_is_zero():
    # Never says yes: precision/recall/f1 have 0 denominators or 0 numerators.
    s = pope_scores([False, False], [False, False])
    assert s == {"accuracy": 1.0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "yes_ratio": 0.0, "n": 2}


def test_pope_scores_validation():
    with pytest.raises(ConfigError, match="same order"):
        pope_scores([True], [True, False])
    with pytest.raises(ConfigError, match="no questions"):
        pope_scores([], [])
    with pytest.raises(ConfigError, match="parse_yes_no"):
        pope_scores(["no"], [True])
    with pytest.raises(ConfigError, match="not a string"):
        pope_scores("yes", [True, True, True])


def test_chair_scores_hand_computed():
    mentioned = [
        ["dog", "dog", "cat"],  # truth {dog}: only cat is wrong -> 1 hallucinated mention
        ["person", "bed", "bed"],  # truth {person}: bed twice -> 2 halluc
        [],  # no mentions: not hallucinated, covers nothing
        ["car"],  # truth {car, truck}: fine
    ]
    truth = [{"dog"}, {"person", "chair"}, {"cup"}, {"car", "truck"}]
    s = chair_scores(mentioned, truth, lengths=[10, 20, 3, 7])
    assert s["n_captions"] == 4
    assert s["n_mentions"] == 7
    assert s["n_hallucinated"] == 3  # cat, bed, bed
    assert s["chair_s"] == pytest.approx(2 / 4)
    assert s["chair_i"] == pytest.approx(3 / 7)
    # covered / gt: {dog}1/1 + {person}1/2 + 0/1 + {car}1/2 -> 3 / 6
    assert s["recall"] == pytest.approx(3 / 6)
    assert s["avg_len"] == pytest.approx(10.0)


def test_chair_scores_no_lengths_and_no_mentions():
    s = chair_scores([[]], [set()])
    assert math.isnan(s["avg_len"])
    assert s["chair_i"] == 0.0 and s["chair_s"] == 0.0 and s["recall"] == 0.0


def test_chair_scores_validation():
    with pytest.raises(ConfigError, match="one ground-truth object set per caption"):
        chair_scores([["dog"]], [{"dog"}, {"cat"}])
    with pytest.raises(ConfigError, match="one word count per caption"):
        chair_scores([["dog"]], [{"dog"}], lengths=[1, 2])
    with pytest.raises(ConfigError, match=r"\['dog'\]"):
        chair_scores(["dog"], [{"dog"}])
    with pytest.raises(ConfigError, match="set of object names"):
        chair_scores([["dog"]], ["dog"])
    with pytest.raises(ConfigError, match="no captions"):
        chair_scores([], [])
    with pytest.raises(ConfigError, match="non-negative"):
        chair_scores([["dog"]], [{"dog"}], lengths=[-1])
