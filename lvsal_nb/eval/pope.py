"""POPE (Li et al. 2023, "Evaluating Object Hallucination in Large Vision-Language Models").

Builds the random / popular / adversarial question sets from any COCO-format instances file,
following the POPE code (github.com/AoiDragon/POPE, ``main.py`` and ``utils.py``):

1. keep the images with at least ``per_image`` distinct objects and draw ``n_images`` of them
   (``random.sample``, seeded);
2. per image, for each of its first ``per_image`` objects (in order of first annotation) ask a
   "yes" question, then right after it one "no" question about an object that is neither in
   the image nor already asked about for this image:
   - random: drawn uniformly from the objects present in the drawn images;
   - popular: the most frequent object over the drawn images (frequency = number of images);
   - adversarial: the object that co-occurs most often with that positive object in the
     drawn images;
   when popular / adversarial run out of candidates, POPE falls back to the random rule.
   Ties in frequency keep first-seen order, as POPE's stable sort does;
3. the question is "Is there a {object} in the image?" ("an" before a vowel, as the released
   POPE files) followed by " Please answer this question with one word.".

Answers are scored with POPE's parser and metrics (:mod:`lvsal_nb.eval.scores`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

from lvsal_nb.errors import ConfigError
from lvsal_nb.eval.coco import AnnotationsLike, image_files, image_objects, load_annotations
from lvsal_nb.eval.scores import parse_yes_no, pope_scores

__all__ = [
    "SPLITS",
    "POPE_TEMPLATE",
    "POPE_SUFFIX",
    "build_pope",
    "save_questions",
    "load_questions",
    "score",
]

SPLITS = ("random", "popular", "adversarial")
POPE_TEMPLATE = "Is there a {} in the image?"
POPE_SUFFIX = " Please answer this question with one word."
_KEYS = ("question_id", "image_id", "file_name", "object", "question", "label")


def _question(obj: str, template: str, suffix: str) -> str:
    text = template.format(obj)
    if obj[:1].lower() in "aeiou" and " a {}" in template:
        text = template.replace(" a {}", " an {}").format(obj)
    return text + suffix


def build_pope(
    annotations: AnnotationsLike,
    split: str,
    n_images: int | None = 500,
    seed: int = 0,
    per_image: int = 3,
    *,
    template: str = POPE_TEMPLATE,
    suffix: str = POPE_SUFFIX,
) -> list[dict]:
    """Build one POPE split.

    The same ``annotations``, ``n_images``, ``seed`` and ``per_image`` give the same images
    for all three splits, as POPE draws the images before the negatives.

    Args:
        annotations (Mapping | str | PathLike): COCO instances dict or JSON path
            (POPE used ``instances_val2014.json``).
        split (str): "random", "popular" or "adversarial".
        n_images (int | None): images to draw. Default: 500 (3000 questions at per_image=3).
            None: every eligible image, in a seeded random order.
        seed (int): seed of the image draw and of random negatives. Default: 0.
        per_image (int): "yes" questions per image, and as many "no". Default: 3.
        template (str): question with one ``{}`` for the object. Default: POPE's.
        suffix (str): appended to every question. Default: " Please answer this question
            with one word." ("" for the bare question).

    Returns:
        list[dict]: ``2 * per_image * n_images`` questions, each with ``question_id`` (from 1),
        ``image_id``, ``file_name``, ``object``, ``question`` and ``label`` ("yes" / "no");
        per image they alternate yes, no, yes, no, ...
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown POPE split {split!r}; choose one of {list(SPLITS)}.")
    if not isinstance(per_image, int) or per_image < 1:
        raise ConfigError(f"per_image must be an int >= 1 (POPE uses 3), got {per_image!r}.")
    if n_images is not None and (not isinstance(n_images, int) or n_images < 1):
        raise ConfigError(f"n_images must be an int >= 1 or None (all eligible images), got {n_images!r}.")
    if template.count("{}") != 1:
        raise ConfigError(f"template must hold exactly one '{{}}' for the object, got {template!r}.")
    ann = load_annotations(annotations, what="instances")  # read a path once, not once per helper
    objects = image_objects(ann)
    files = image_files(ann)

    eligible = [i for i, objs in objects.items() if len(objs) >= per_image]
    if n_images is None:
        n_images = len(eligible)
    if len(eligible) < max(n_images, 1):
        raise ConfigError(
            f"only {len(eligible)} images have >= {per_image} distinct objects, but n_images={n_images}; "
            "lower n_images or per_image, or use a larger annotation file."
        )
    rng = random.Random(seed)
    chosen = rng.sample(eligible, n_images)

    # Frequencies and co-occurrences over the drawn images only, as POPE computes them.
    counts: dict[str, int] = {}
    co: dict[str, dict[str, int]] = {}
    for i in chosen:
        for o in objects[i]:
            counts[o] = counts.get(o, 0) + 1
            row = co.setdefault(o, {})
            for other in objects[i]:
                if other != o:
                    row[other] = row.get(other, 0) + 1
    pool = list(counts)
    popular = [o for o, _ in sorted(counts.items(), key=lambda kv: kv[1], reverse=True)]
    co_sorted = {
        o: [k for k, _ in sorted(r.items(), key=lambda kv: kv[1], reverse=True)] for o, r in co.items()
    }

    questions: list[dict] = []
    for i in chosen:
        present = set(objects[i])
        asked: list[str] = []
        for pos in objects[i][:per_image]:
            asked.append(pos)
            ranked = popular if split == "popular" else co_sorted[pos] if split == "adversarial" else []
            neg = next((o for o in ranked if o not in asked and o not in present), None)
            if neg is None:  # the random rule, and POPE's fallback for the other two
                if not any(o not in asked and o not in present for o in pool):
                    raise ConfigError(
                        f"image {i!r}: no object of the {len(pool)} seen in the drawn images is left to ask "
                        "a 'no' question about; draw more images (n_images) or lower per_image."
                    )
                neg = rng.choice(pool)
                while neg in asked or neg in present:  # POPE's rejection loop: uniform over the rest
                    neg = rng.choice(pool)
            asked.append(neg)
            for obj, label in ((pos, "yes"), (neg, "no")):
                questions.append(
                    {
                        "question_id": len(questions) + 1,
                        "image_id": i,
                        "file_name": files[i],
                        "object": obj,
                        "question": _question(obj, template, suffix),
                        "label": label,
                    }
                )
    return questions


def save_questions(questions: Sequence[Mapping], path: str | PathLike) -> Path:
    """Write questions as JSON Lines (one question per line, POPE's file format). Returns the path."""
    _check_questions(questions)
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(dict(q)) + "\n")
    return path


def load_questions(path: str | PathLike) -> list[dict]:
    """Read questions written by :func:`save_questions`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"question file {str(path)!r} does not exist; write one with save_questions().")
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ConfigError(
                        f"{path}:{n} is not a JSON line ({e}); is this a POPE JSONL file?"
                    ) from e
    _check_questions(out)
    return out


def _check_questions(questions: Sequence[Mapping]) -> None:
    if isinstance(questions, (str, bytes)) or not isinstance(questions, Sequence):
        raise ConfigError("questions must be a list of dicts as returned by build_pope().")
    for k, q in enumerate(questions):
        if not isinstance(q, Mapping):
            raise ConfigError(
                f"questions[{k}] is a {type(q).__name__}; each question is a dict from build_pope()."
            )
        missing = [key for key in ("question", "label") if key not in q]
        if missing:
            raise ConfigError(
                f"questions[{k}] lacks {missing}; each question needs at least 'question' and 'label'."
            )
        if q["label"] not in ("yes", "no"):
            raise ConfigError(f"questions[{k}] has label {q['label']!r}; labels are 'yes' or 'no'.")


def score(answers: Sequence[str], questions: Sequence[Mapping], *, parser: str = "pope") -> dict:
    """Score free-text answers against POPE questions.

    Args:
        answers (Sequence[str]): the model's answer to each question, same order.
        questions (Sequence[Mapping]): from :func:`build_pope` or :func:`load_questions`.
        parser (str): "pope" (POPE's evaluate.py rule) or "strict" (negation-aware); see
            :func:`lvsal_nb.eval.scores.parse_yes_no`. Default: "pope".

    Returns:
        dict: ``accuracy``, ``precision``, ``recall``, ``f1``, ``yes_ratio``, ``n`` (yes = positive),
        each answer parsed with :func:`lvsal_nb.eval.scores.parse_yes_no`.
    """
    _check_questions(questions)
    if isinstance(answers, (str, bytes)):
        raise ConfigError("answers must be a list of strings, one per question, not a single string.")
    answers = list(answers)
    if len(answers) != len(questions):
        raise ConfigError(
            f"{len(answers)} answers for {len(questions)} questions; pass one answer per question, in order."
        )
    return pope_scores([parse_yes_no(a, parser) for a in answers], [q["label"] == "yes" for q in questions])
