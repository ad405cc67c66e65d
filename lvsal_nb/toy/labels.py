"""Exact error type of every object word a toy-v2 caption generates (ground truth from the scene).

A v2 caption is a list part, then a recap after "so :" (`lvsal_nb.toy.recap`). Each shape noun the
model writes gets one type, decided by the first rule that applies:

list part (reading the image), word w, shapes P listed before it, scene objects T:
    repeat      w in P (named again)
    correct     w in T
    overrun     w absent and every object of T is already in P (one more after all were named)
    cascade     w absent and its partner is an earlier hallucinated list word (copies a hallucination)
    partner     w absent and its partner is in T (the co-occurrence prior)
    misread     w absent otherwise
recap part (memory), w at recap index k, the model's OWN list L (in order), recapped before R:
    recap_never_listed  w not in L (memory-driven hallucination: nothing to copy from)
    recap_correct       L[k] == w (a faithful copy, even of a hallucinated or repeated list word)
    overrun             k >= len(L)
    repeat              w in R (named again in the recap where L[k] is another shape)
    recap_order         w in L, but not at turn k
Recap memory errors: recap_never_listed, recap_order, and a recap repeat (each copies the wrong
list word). A faithful copy is checked before a repeat, so copying a list that named a shape twice
is not an error of memory (it was one of reading, typed in the list part).
A listed shape the recap never names is an omission (`recap_omissions`; no word, so no label).
"hallucinated" is CHAIR's: w not in T. `source` is the word index where w was listed (recap
words; for a faithful copy, list word k),
`expected` the word index of L[k], the word a faithful recap copies (None past the list's end).
"""

from __future__ import annotations

from dataclasses import dataclass

from lvsal_nb.toy.recap import split_words
from lvsal_nb.toy.scenes import PARTNER

LIST_TYPES = ("correct", "misread", "partner", "cascade", "repeat", "overrun")
RECAP_TYPES = ("recap_correct", "recap_order", "recap_never_listed", "repeat", "overrun")
ERROR_TYPES = ("misread", "partner", "cascade", "repeat", "overrun", "recap_order", "recap_never_listed")
CORRECT_TYPES = ("correct", "recap_correct")
MEMORY_TYPES = ("recap_order", "recap_never_listed", "repeat")  # in the recap part: memory errors


@dataclass(frozen=True)
class ObjectLabel:
    """One generated shape noun. index: its word index in the caption; part: "list" or "recap"."""

    index: int
    shape: str
    part: str
    type: str
    hallucinated: bool
    source: int | None = None
    expected: int | None = None


def label_words(words: list[str], truth: list[str]) -> list[ObjectLabel]:
    """Labels of the shape nouns in `words` (a caption split into words/tokens, stripped, lower case).

    truth: the scene's object names. Non-shape words get no label.
    """
    present = set(truth)
    listed, recap = split_words(words)
    out: list[ObjectLabel] = []
    seen: list[str] = []
    hallucinated: set[str] = set()
    for i, w in listed:
        if w in seen:
            t = "repeat"
        elif w in present:
            t = "correct"
        elif present <= set(seen):
            t = "overrun"
        elif PARTNER[w] in hallucinated:
            t = "cascade"
        elif PARTNER[w] in present:
            t = "partner"
        else:
            t = "misread"
        if w not in present:
            hallucinated.add(w)
        seen.append(w)
        out.append(ObjectLabel(i, w, "list", t, w not in present))
    order = [w for _, w in listed]
    first_at = {}
    for i, w in listed:
        first_at.setdefault(w, i)
    recapped: list[str] = []
    for k, (i, w) in enumerate(recap):
        expected = listed[k][0] if k < len(listed) else None
        source = first_at.get(w)
        if w not in first_at:
            t = "recap_never_listed"
        elif k < len(order) and order[k] == w:
            t, source = "recap_correct", expected  # copies list word k, even a list repeat
        elif k >= len(order):
            t = "overrun"
        elif w in recapped:
            t = "repeat"
        else:
            t = "recap_order"
        recapped.append(w)
        out.append(ObjectLabel(i, w, "recap", t, w not in present, source, expected))
    return out


def label_caption(text: str, truth: list[str]) -> list[ObjectLabel]:
    """`label_words` on a caption string (split on whitespace; the toy captions space every word)."""
    return label_words(text.lower().split(), truth)


def recap_omissions(words: list[str]) -> list[tuple[int, str]]:
    """Listed shapes the recap never names: [(word index of the first listing, shape)], list order.

    A memory error without a word of its own (the recap forgot an item), so it has no label and
    no signal; counted beside the labelled types. A caption without the recap marker "so" (cut off
    or never recapped) omits nothing here: there is no recap to judge.
    """
    if "so" not in words:
        return []
    listed, recap = split_words(words)
    recapped = {w for _, w in recap}
    first: dict[str, int] = {}
    for i, w in listed:
        first.setdefault(w, i)
    return [(i, w) for w, i in first.items() if w not in recapped]
