"""Toy world v2 captions: a list of the objects in a random order, then a recap of that list.

    "there is a large yellow star , a small red cross and a large blue square . so : star , cross , square ."

The list names every object once in the scene's annotation order (a random permutation, drawn by
`make_scene`), with size and colour; the recap after "so :" repeats the shape nouns in the SAME
order. The image says which shapes are present but not in which order they were listed: only the
model's own earlier outputs (4 to 39 words back in v2's scenes of 1-8 objects) tell the recap's
order. So a recap token that names a shape the list never named, or names a listed shape out of
turn, is a failure of memory,
the mechanism the paper's claim is about; list tokens are readings of the image (v1's mechanism).
"""

from __future__ import annotations

from lvsal_nb.toy.scenes import PARTNER, Scene

RECAP_WORDS = ("so", ":")  # "so :" opens the recap; ":" is already in the v1 vocabulary
NEW_WORDS = ("so",)  # appended after v1's words: v1 ids stay the same in the v2 tokenizer


def recap_caption(scene: Scene) -> str:
    """The v2 training caption (see module doc): list in annotation order, then "so : a , b , c ."."""
    parts = [f"a {o.size} {o.color} {o.shape}" for o in scene.objects]
    listed = parts[0] if len(parts) == 1 else " , ".join(parts[:-1]) + " and " + parts[-1]
    recap = " , ".join(o.shape for o in scene.objects)
    return f"there is {listed} . so : {recap} ."


def split_words(words: list[str]) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(list part, recap part) of a caption's words: each a list of (word index, shape noun).

    The recap starts after the first "so"; words after it that are shape nouns are recap items.
    Only exact shape nouns count (the toy vocabulary has no plurals).
    """
    cut = words.index("so") if "so" in words else len(words)
    listed = [(i, w) for i, w in enumerate(words[:cut]) if w in PARTNER]
    recap = [(i, w) for i, w in enumerate(words) if i > cut and w in PARTNER]
    return listed, recap
