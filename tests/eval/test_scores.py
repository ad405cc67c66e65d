"""Hand-computed checks of the POPE answer parser and the POPE / CHAIR formulas."""

import math

import numpy as np
import pytest

from lvsal_nb.errors import ConfigError
from lvsal_nb.eval.scores import chair_scores, parse_yes_no, pope_scores

# (answer, POPE's evaluate.py, the strict parser) -- each derived by hand from the two rules.
ANSWERS = [
    ("Yes", True, True),
    ("yes, there is a dog.", True, True),
    ("There is a dog in the image.", True, True),
    ("No", False, False),
    ("No.", False, False),
    ("No, ", False, False),  # commas deleted, then pieces "No", ""
    ("no, there is no dog", False, False),
    (" No", False, False),  # pieces "", "No"
    ("No.There is a dog", False, False),  # the first sentence is "No"
    ("No\nThere is no dog", False, False),  # one piece "No\nThere", but "no" later
    ("Yes, there is not a dog", False, False),
    ("There is a dog, not a cat.", False, False),
    ("Yes. There is no cat.", True, True),  # only the first sentence counts
    ("Nothing suggests that", True, True),
    ("Knot", True, True),
    ("Nope", True, True),
    ("Mr. No", True, True),  # the first "sentence" is "Mr"
    ("", True, True),
    # The 13 where POPE's rule and a negation-aware reading part ways (the list and more):
    ("NO", True, False),
    ("NO.", True, False),
    ("No!", True, False),
    ("No:", True, False),
    ("(No)", True, False),
    ("\nNo", True, False),  # a leading newline: the piece is "\nNo"
    ("no\n", True, False),
    ("Yes\nNo", True, False),
    ("Not at all", True, False),  # "Not" is not one of POPE's three words
    ("There isn't a dog.", True, False),
    ("There isn\u2019t a dog.", True, False),
    ("I don't see one", True, False),
    ("I don't know", True, False),
]


def pope_evaluate_py(text):
    """POPE's evaluate.py answer rule, copied line for line (the reference)."""
    if text.find(".") != -1:
        text = text.split(".")[0]
    text = text.replace(",", "")
    words = text.split(" ")
    return "no" if ("No" in words or "not" in words or "no" in words) else "yes"


@pytest.mark.parametrize("text, pope, strict", ANSWERS)
def test_parse_yes_no(text, pope, strict):
    assert parse_yes_no(text) is pope  # the default is POPE's rule
    assert parse_yes_no(text, parser="pope") is pope
    assert parse_yes_no(text, parser="strict") is strict
    assert (pope_evaluate_py(text) == "yes") is pope


def test_thirteen_answers_differ_between_the_parsers():
    assert sum(p != s for _, p, s in ANSWERS) == 13


def test_parse_yes_no_unknown_parser():
    with pytest.raises(ConfigError, match="unknown POPE answer parser 'lenient'.*'pope', 'strict'"):
        parse_yes_no("No", parser="lenient")


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
