"""POPE question building (Li et al. 2023), from ground-truth object lists, exactly as POPE's code does.

Rules of the reference implementation (github.com/AoiDragon/POPE, utils.py `pope`, main.py):
- only images with at least `sample_num` (3) objects are used;
- statistics come from those images: object frequency, and for each object the others sorted by
  how often they appear in the same image (ties keep first-seen order, as Python's stable sort);
- per image, for i in 0..2: a "yes" question on its i-th ground-truth object (annotation order),
  then one "no" question on an object that is neither in the image nor already asked:
    random      a uniform draw from all objects seen in the set (redrawn until it qualifies);
    popular     the most frequent qualifying object overall;
    adversarial the qualifying object that co-occurs most often with the i-th "yes" object;
  popular/adversarial fall back to a random draw when no object qualifies.
So each image gets 6 questions, alternating yes/no, 3 of each.
"""

from __future__ import annotations

import random
from collections import Counter

from lvsal_nb.errors import ConfigError

SPLITS = ("random", "popular", "adversarial")
TEMPLATE = "Is there {article} {object} in the image?"


def question_text(obj: str) -> str:
    """POPE's question for one object, with "a"/"an" by the object's first letter."""
    return TEMPLATE.format(article="an" if obj[0] in "aeiou" else "a", object=obj)


def _statistics(lists: list[list[str]]) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """(objects in first-seen order, objects by frequency, co-occurring objects by count per object)."""
    freq: Counter[str] = Counter()
    co: dict[str, Counter[str]] = {}
    for objs in lists:
        freq.update(objs)
        for o in objs:
            co.setdefault(o, Counter()).update(p for p in objs if p != o)
    seen = list(freq)  # Counter keeps first-insertion order
    by_freq = sorted(seen, key=lambda o: -freq[o])
    by_co = {o: sorted(c, key=lambda p: -c[p]) for o, c in co.items()}
    return seen, by_freq, by_co


def _random_free(rng: random.Random, seen: list[str], taken: set[str], idx: int) -> str:
    """POPE's random draw: uniform over all objects, redrawn until it is not taken."""
    if not set(seen) - taken:
        raise ConfigError(f"Image {idx} leaves no object to ask a 'no' question about; drop it.")
    while True:
        o = rng.choice(seen)
        if o not in taken:
            return o


def build_pope(object_lists: list[list[str]], split: str, seed: int, sample_num: int = 3) -> list[dict]:
    """POPE questions for images given by their ground-truth object lists.

    Returns dicts (scene_index, object, question, label) with label "yes"/"no"; `scene_index`
    indexes `object_lists`. Images with fewer than `sample_num` objects are skipped, as in POPE.
    """
    if split not in SPLITS:
        raise ConfigError(f"Unknown POPE split {split!r}; use one of {SPLITS}.")
    if sample_num < 1:
        raise ConfigError(f"sample_num must be >= 1, got {sample_num}.")
    rng = random.Random(seed)
    chosen = [i for i, objs in enumerate(object_lists) if len(objs) >= sample_num]
    seen, by_freq, by_co = _statistics([object_lists[i] for i in chosen])
    if chosen and len(seen) < 2 * sample_num:
        raise ConfigError(
            f"POPE needs at least {2 * sample_num} distinct objects over the images, found {len(seen)}: "
            "pass more images."
        )
    out: list[dict] = []
    for idx in chosen:
        objs = object_lists[idx]
        asked: list[str] = []
        for i in range(sample_num):
            pos = objs[i]
            asked.append(pos)
            out.append(dict(scene_index=idx, object=pos, question=question_text(pos), label="yes"))
            taken = set(asked) | set(objs)
            if split == "random":
                neg = _random_free(rng, seen, taken, idx)
            else:
                ranked = by_freq if split == "popular" else by_co.get(pos, [])
                neg = next((o for o in ranked if o not in taken), None) or _random_free(rng, seen, taken, idx)
            asked.append(neg)
            out.append(dict(scene_index=idx, object=neg, question=question_text(neg), label="no"))
    return out
