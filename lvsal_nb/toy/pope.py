"""POPE questions for toy scenes: the one POPE builder (:mod:`lvsal_nb.protocol.pope`) on the scenes'
ground-truth object lists, every scene with at least `sample_num` objects used (no image draw), the
negatives drawn from `random.Random(seed)`. Each image gets 6 questions, alternating yes/no.
"""

from __future__ import annotations

import random

from lvsal_nb.errors import ConfigError
from lvsal_nb.protocol.pope import SPLITS, pope_questions, question_text

__all__ = ["SPLITS", "build_pope", "question_text"]


def build_pope(object_lists: list[list[str]], split: str, seed: int, sample_num: int = 3) -> list[dict]:
    """POPE questions for images given by their ground-truth object lists.

    Returns dicts (scene_index, object, question, label) with label "yes"/"no"; `scene_index`
    indexes `object_lists`. Images with fewer than `sample_num` objects are skipped, as in POPE.
    """
    if split not in SPLITS:
        raise ConfigError(f"Unknown POPE split {split!r}; use one of {SPLITS}.")
    if sample_num < 1:
        raise ConfigError(f"sample_num must be >= 1, got {sample_num}.")
    chosen = [i for i, objs in enumerate(object_lists) if len(objs) >= sample_num]
    seen = {o for i in chosen for o in object_lists[i]}
    if chosen and len(seen) < 2 * sample_num:
        raise ConfigError(
            f"POPE needs at least {2 * sample_num} distinct objects over the images, found {len(seen)}: "
            "pass more images."
        )
    qs = pope_questions([object_lists[i] for i in chosen], split, random.Random(seed), sample_num)
    return [dict(scene_index=chosen[k], object=o, question=question_text(o), label=lab) for k, o, lab in qs]
