"""Which generated tokens name an object, and whether CHAIR's ground truth has it (token labels).

CHAIR judges a caption by its object mentions; the dashboard needs the same verdict per token so
that low saliency can be scored as a detector. A mention is found in the caption as the trace
spells it ("".join of its tokens), with character spans, then every token overlapping a mention
gets the mention's label: "hallucinated" if its object is not in the image's ground truth, else
"correct". Other tokens are unlabelled (""), as in the paper, which scores object tokens.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

_WORD = re.compile(r"[a-z]+")


@lru_cache(maxsize=1)
def _chair():
    from ..eval.chair import Chair

    return Chair({})  # only its parser (synonyms, two-word phrases, plurals) is used here


def object_spans(text: str, dataset: str | None) -> list[tuple[int, int, str]]:
    """(start, end, object) of every object mention in `text`, in order.

    Args:
        dataset: "toy" uses the toy world's shape nouns (as `lvsal eval --dataset toy` judges);
            anything else CHAIR's COCO parser (synonyms, plurals, two-word phrases).
    """
    if dataset == "toy":
        from ..toy.scenes import mentioned_objects

        out = []
        for m in _WORD.finditer(text.lower()):
            found = mentioned_objects(m.group())
            if found:
                out.append((m.start(), m.end(), found[0]))
        return out
    return [(m.start, m.end, m.object) for m in _chair().mentions(text)]


def token_labels(tokens: list[str], gt_objects, dataset: str | None) -> tuple[list[str], list[str]]:
    """Per token: its CHAIR label ("hallucinated" | "correct" | "") and the object it names ("").

    Args:
        tokens: the generated tokens' text pieces, in order (`"".join(tokens)` is the caption).
        gt_objects: the image's ground-truth objects (CHAIR's canonical names).
    """
    text = "".join(tokens)
    ends = np.cumsum([len(t) for t in tokens])
    starts = ends - np.asarray([len(t) for t in tokens], dtype=int)
    labels, objects = [""] * len(tokens), [""] * len(tokens)
    truth = set(gt_objects or [])
    for s, e, obj in object_spans(text, dataset):
        hit = np.flatnonzero((starts < e) & (ends > s))  # tokens overlapping [s, e)
        for i in hit:
            labels[i] = "correct" if obj in truth else "hallucinated"
            objects[i] = obj
    return labels, objects


def pope_labels(tokens: list[str], pred_yes, label: str | None) -> list[str]:
    """POPE: the answer token ("yes") is "hallucinated" when the object is absent, "correct" when
    present; a "no" answer names no object and stays unlabelled."""
    out = [""] * len(tokens)
    if pred_yes is not True or label not in ("yes", "no"):
        return out
    for i, t in enumerate(tokens):
        if t.strip().lower().startswith("yes"):
            out[i] = "correct" if label == "yes" else "hallucinated"
            break
    return out
