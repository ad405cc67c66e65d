"""The demo's drop flag fires only at object words, against earlier object words (hand-computed)."""

from lvsal_nb.toy.drops import object_drops


def test_only_object_words_against_object_history():
    words = ["there", "is", "a", "star", ",", "a", "moon", "and", "a", "cross", "."]
    sal = [0.9, 0.01, 0.01, 0.50, 0.001, 0.2, 0.40, 0.3, 0.3, 0.20, 0.0]
    # star: no history; moon 0.40 vs 0.6 * 0.50 = 0.30: no; cross 0.20 vs 0.6 * 0.45 = 0.27: drop.
    # "is", "a", "," fall far below their neighbours but are not object words.
    assert object_drops(words, sal) == {9}


def test_window_and_unscored_steps():
    words = ["star", "moon", "star", "moon"]
    assert object_drops(words, [1.0, None, 0.1, 0.5], window=1) == {2}  # None skipped; 0.5 vs 0.6*0.1: no
    assert object_drops(words, [1.0, 1.0, 1.0, 0.59], alpha=0.6) == {3}
    assert object_drops(words, [float("nan"), 1.0, 0.7, 0.61], alpha=0.6) == set()
