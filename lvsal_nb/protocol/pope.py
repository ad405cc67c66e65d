"""POPE's question rules (Li et al. 2023) on ground-truth object lists — the one POPE builder.

Both the COCO builder (:func:`lvsal_nb.eval.pope.build_pope`) and the toy world
(:func:`lvsal_nb.toy.pope.build_pope`) call :func:`pope_questions`. Rules of the reference code
(github.com/AoiDragon/POPE, utils.py ``pope``, main.py), on the images already drawn:

- statistics over those images: object frequency (number of images), and for each object the
  others sorted by how often they share an image (ties keep first-seen order: Python's stable sort);
- per image, for each of its first ``per_image`` objects: a "yes" question on it, then one "no"
  question on an object that is neither in the image nor already asked about for this image:
    random       a uniform draw from all objects seen (redrawn until it qualifies);
    popular      the most frequent qualifying object;
    adversarial  the qualifying object that co-occurs most often with that "yes" object;
  popular / adversarial fall back to the random draw when none qualifies.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from lvsal_nb.errors import ConfigError

__all__ = ["SPLITS", "POPE_TEMPLATE", "SUFFIXES", "question_text", "pope_questions"]

SPLITS = ("random", "popular", "adversarial")
POPE_TEMPLATE = "Is there a {} in the image?"
# Question suffixes by name: POPE's files ask the bare question; VCD's scripts append one.
SUFFIXES = {"pope": "", "vcd": " Please answer this question with one word."}


def question_text(obj: str, template: str = POPE_TEMPLATE, suffix: str = "") -> str:
    """POPE's question for one object: "an" before a vowel (as POPE's files), then the suffix."""
    text = template.format(obj)
    if obj[:1].lower() in "aeiou" and " a {}" in template:
        text = template.replace(" a {}", " an {}").format(obj)
    return text + suffix


def pope_questions(
    object_lists: Sequence[Sequence[str]], split: str, rng: random.Random, per_image: int = 3
) -> list[tuple[int, str, str]]:
    """POPE's questions for the drawn images, as ``(image index, object, "yes" | "no")``.

    Args:
        object_lists: per drawn image, its distinct objects in ground-truth order (each list must
            hold at least ``per_image`` objects).
        split: "random", "popular" or "adversarial".
        rng: the random source of negatives (POPE's module-level ``random``; seeded by the caller).
        per_image: "yes" questions per image, and as many "no". Default: 3.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown POPE split {split!r}; choose one of {list(SPLITS)}.")
    counts: dict[str, int] = {}
    co: dict[str, dict[str, int]] = {}
    for objs in object_lists:
        for o in objs:
            counts[o] = counts.get(o, 0) + 1
            row = co.setdefault(o, {})
            for other in objs:
                if other != o:
                    row[other] = row.get(other, 0) + 1
    pool = list(counts)
    popular = [o for o, _ in sorted(counts.items(), key=lambda kv: kv[1], reverse=True)]
    co_sorted = {
        o: [k for k, _ in sorted(r.items(), key=lambda kv: kv[1], reverse=True)] for o, r in co.items()
    }
    out: list[tuple[int, str, str]] = []
    for idx, objs in enumerate(object_lists):
        present = set(objs)
        asked: list[str] = []
        for pos in objs[:per_image]:
            asked.append(pos)
            ranked = popular if split == "popular" else co_sorted[pos] if split == "adversarial" else []
            neg = next((o for o in ranked if o not in asked and o not in present), None)
            if neg is None:  # the random rule, and POPE's fallback for the other two
                if not any(o not in asked and o not in present for o in pool):
                    raise ConfigError(
                        f"image {idx}: no object of the {len(pool)} seen in the drawn images is left to ask "
                        "a 'no' question about; draw more images or lower per_image."
                    )
                neg = rng.choice(pool)
                while neg in asked or neg in present:  # POPE's rejection loop: uniform over the rest
                    neg = rng.choice(pool)
            asked.append(neg)
            out += [(idx, pos, "yes"), (idx, neg, "no")]
    return out
