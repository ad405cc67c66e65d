"""CHAIR's two word-handling modes on tricky captions, expected values derived by hand from the
reference rules (chair.py of Rohrbach et al.: nltk.word_tokenize, pattern.en's singularize, the
synonym file split on ", "), so a drift from the original's counting fails here.

Each row: caption, ground truth, then for "original" and for "fixed" the categories mentioned (in
order, repeats kept) and the length in tokens after joining two-word phrases.
"""

import pytest

from lvsal_nb.errors import ConfigError
from lvsal_nb.eval.chair import Chair, load_synonyms
from lvsal_nb.eval.singular import singularize
from lvsal_nb.eval.tokenize import word_tokenize

# fmt: off
CASES = [
    # pattern: "minibus" -> "minibu" (missed); fixed keeps vocabulary words
    ("A minibus next to a man.", {"person"},
     ["person"], 7, ["bus", "person"], 7),
    # pattern: "ties" -> "ty"; inflect gives "tie"
    ("Two men wearing ties.", {"person"},
     ["person"], 5, ["person", "tie"], 5),
    # pattern: "canoes" -> "cano"
    ("Canoes on a lake.", set(),
     [], 5, ["boat"], 5),
    # pattern: "thieves" -> "thieve"; inflect: "thief" (a person synonym)
    ("Thieves run past a car.", {"car"},
     ["car"], 6, ["person", "car"], 6),
    # pattern finds irregular plurals: grandchildren -> grandchild, mouses -> mouse
    ("Grandchildren play with a dog.", {"dog"},
     ["person", "dog"], 6, ["person", "dog"], 6),
    ("Two computer mouses on a desk.", {"dining table"},
     ["laptop", "mouse", "dining table"], 7, ["laptop", "mouse", "dining table"], 7),
    # " motor bike" / " cheesecake" (double spaces in the synonym file) never match in the original
    ("A motor bike on the street.", {"person"},
     [], 6, ["motorcycle"], 6),
    ("A slice of cheesecake.", {"cup"},
     [], 5, ["cake"], 5),
    # NLTK keeps "couch/sofa" one token; "..." is one token
    ("A cat on a couch/sofa.", {"cat"},
     ["cat"], 6, ["cat", "couch", "couch"], 8),
    ("A dog... and a cat.", {"dog", "cat"},
     ["dog", "cat"], 7, ["dog", "cat"], 9),
    # pattern: "tennis" -> "tenni", so "tennis racket" is not joined ("racket" still counts)
    ("A man holds a tennis racket.", {"person", "tennis racket"},
     ["person", "tennis racket"], 7, ["person", "tennis racket"], 6),
    ("A red bus.", set(),
     [], 4, ["bus"], 4),
    # a period inside a sentence stays on its word for NLTK ("dog.a" is one token)
    ("A dog.a cat sits.", {"cat"},
     ["cat"], 5, ["dog", "cat"], 7),
    # "dr." is an abbreviation: no sentence break, the token keeps its period
    ("Dr. Smith with a dog.", {"dog"},
     ["dog"], 6, ["dog"], 7),
    # toilet anywhere drops every "seat"; both modes
    ("The dog sat by the toilet. A seat was empty.", {"dog", "toilet"},
     ["dog", "toilet"], 12, ["dog", "toilet"], 12),
    # the same in both modes
    ("People near the glass door.", {"person"},
     ["person"], 6, ["person"], 6),
    ("Two wine glasses and a cup.", {"cup"},
     ["wine glass", "cup"], 6, ["wine glass", "cup"], 6),
    ("Kids ride bikes near buses.", {"person", "bicycle"},
     ["person", "bicycle", "bus"], 6, ["person", "bicycle", "bus"], 6),
    ("Broccoli and carrots.", {"broccoli"},
     ["broccoli", "carrot"], 4, ["broccoli", "carrot"], 4),
    ("A stove top oven.", {"oven"},
     ["oven", "oven"], 5, ["oven", "oven"], 5),
    ("An iPhone.", set(),
     [], 3, [], 3),
    ("Skis and a snowboard.", {"skis", "snowboard"},
     ["skis", "snowboard"], 5, ["skis", "snowboard"], 5),
]
# fmt: on
# CHAIR_S by hand: original hallucinates in rows 5 (grandchild), 6 (computer, mouse), 17 (wine glass),
# 18 (bus), 19 (carrot) = 5 of 22; fixed adds rows 1 (bus), 2 (tie), 3 (boat), 4 (person), 7
# (motorcycle), 8 (cake), 9 (couch), 12 (bus), 13 (dog) = 14 of 22.
CHAIR_S = {"original": 5 / 22, "fixed": 14 / 22}
# CHAIR_I by hand: original 6 hallucinated mentions (rows 5, 6 x2, 17, 18, 19) of 29; fixed 16 of 39.
CHAIR_I = {"original": 6 / 29, "fixed": 16 / 39}


def _chair(compat):
    return Chair({k: truth for k, (_, truth, *_) in enumerate(CASES)}, compat=compat)


@pytest.mark.parametrize("k", range(len(CASES)))
def test_mentions_and_length_per_mode(k):
    text, _, orig, n_orig, fixed, n_fixed = CASES[k]
    for compat, objs, n in (("original", orig, n_orig), ("fixed", fixed, n_fixed)):
        _, df = _chair(compat).evaluate({k: text})
        assert (list(df.iloc[0]["objects"]), int(df.iloc[0]["n_words"])) == (objs, n), compat


@pytest.mark.parametrize("compat", ["original", "fixed"])
def test_chair_over_the_fixture(compat):
    summary, _ = _chair(compat).evaluate({k: c[0] for k, c in enumerate(CASES)})
    assert summary["chair_s"] == pytest.approx(CHAIR_S[compat])
    assert summary["chair_i"] == pytest.approx(CHAIR_I[compat])


def test_original_is_the_default():
    assert Chair({1: {"dog"}}).compat == "original"
    assert Chair.from_coco({"images": [{"id": 1}], "annotations": [], "categories": []}).compat == "original"
    with pytest.raises(ConfigError, match="unknown CHAIR compat mode 'exact'.*'original'.*'fixed'"):
        Chair({1: {"dog"}}, compat="exact")


def test_synonym_file_quirk_is_kept_only_by_original():
    assert " motor bike" in load_synonyms(compat="original")["motorcycle"]
    assert " cheesecake" in load_synonyms(compat="original")["cake"]
    assert "motor bike" in load_synonyms()["motorcycle"] and "cheesecake" in load_synonyms()["cake"]


@pytest.mark.parametrize(
    "word, singular",
    [  # pattern.en 2.6 singularize, by its rules
        ("dogs", "dog"), ("people", "person"), ("men", "man"), ("children", "child"),
        ("grandchildren", "grandchild"), ("mice", "mouse"), ("mouses", "mouse"), ("buses", "bus"),
        ("bus", "bu"), ("minibus", "minibu"), ("ties", "ty"), ("canoes", "cano"), ("thieves", "thieve"),
        ("knives", "knife"), ("glass", "glas"), ("glasses", "glass"), ("tennis", "tenni"),
        ("skis", "ski"), ("sheep", "sheep"), ("oxen", "ox"), ("puppies", "puppy"), ("couches", "couch"),
        ("scissors", "scissors"), ("cattle", "cattle"), ("his", "hi"), ("a", "a"), ("ice", "ice"),
        ("water", "water"), ("doggies", "doggies"), ("leaves", "leaf"), ("wolves", "wolf"),
        ("data", "datum"), ("dogs'", "dog's"), ("mothers-in-law", "mother-in-law"),
    ],
)  # fmt: skip
def test_pattern_singularize(word, singular):
    # ("doggies", "doggies"): pattern returns the -ie plurals of its list unchanged (`return w`)
    assert singularize(word) == singular


@pytest.mark.parametrize(
    "text, tokens",
    [  # NLTK 3.3 word_tokenize, by its Treebank rules
        ("a dog... a cat.", ["a", "dog", "...", "a", "cat", "."]),
        ("a couch/sofa, a tv.", ["a", "couch/sofa", ",", "a", "tv", "."]),
        ("the man's dog can't sit.", ["the", "man", "'s", "dog", "ca", "n't", "sit", "."]),
        ("two dogs. a cat!", ["two", "dogs", ".", "a", "cat", "!"]),
        ('a "red" bus (old).', ["a", "``", "red", "''", "bus", "(", "old", ")", "."]),
        ("dr. who -- a dog.a cat", ["dr.", "who", "--", "a", "dog.a", "cat"]),
        ("price: $3.50 each", ["price", ":", "$", "3.50", "each"]),
    ],
)
def test_nltk_word_tokenize(text, tokens):
    assert word_tokenize(text) == tokens
