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
   POPE files), with no suffix (POPE's own files); ``suffix=SUFFIXES["vcd"]`` appends VCD's
   " Please answer this question with one word." as VCD's evaluation scripts do.

Ground truth as POPE collected it: the objects of an image are its COCO instance categories
(segmentations) and, with ``captions=``, the objects its reference captions mention, found by the
CHAIR code (:class:`lvsal_nb.eval.chair.Chair`, ``compat="original"`` by default). Caption objects
come after the instance objects (in order of first mention), so the "yes" questions still ask
about annotated objects first, and a "no" question never asks about an object a reference caption
mentions. (POPE's released segmentation file is not public data here; the order of its lists is
instance order then caption order by this rule.)

Answers are scored with POPE's parser and metrics (:mod:`lvsal_nb.eval.scores`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

from lvsal_nb.errors import ConfigError
from lvsal_nb.eval.coco import AnnotationsLike, image_captions, image_files, image_objects, load_annotations
from lvsal_nb.eval.scores import parse_yes_no, pope_scores
from lvsal_nb.protocol.pope import POPE_TEMPLATE, SPLITS, SUFFIXES, pope_questions, question_text

__all__ = [
    "SPLITS",
    "POPE_TEMPLATE",
    "POPE_SUFFIX",
    "SUFFIXES",
    "build_pope",
    "save_questions",
    "load_questions",
    "score",
]

POPE_SUFFIX = SUFFIXES["vcd"]  # VCD's suffix (the name older callers import)


def build_pope(
    annotations: AnnotationsLike,
    split: str,
    n_images: int | None = 500,
    seed: int = 0,
    per_image: int = 3,
    *,
    template: str = POPE_TEMPLATE,
    suffix: str = "",
    captions: AnnotationsLike | None = None,
    chair_compat: str = "original",
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
        suffix (str): appended to every question. Default: "" (POPE's bare question);
            ``SUFFIXES["vcd"]`` for VCD's " Please answer this question with one word.".
        captions (Mapping | str | PathLike | None): COCO captions dict or JSON path; adds the objects
            the reference captions mention to each image's ground truth, as POPE did. Default: None.
        chair_compat (str): how captions are read (:class:`~lvsal_nb.eval.chair.Chair`). Default: "original".

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
    if captions is not None:
        objects = _with_caption_objects(ann, objects, captions, chair_compat)

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

    questions: list[dict] = []
    for k, obj, label in pope_questions([objects[i] for i in chosen], split, rng, per_image):
        i = chosen[k]
        questions.append(
            {
                "question_id": len(questions) + 1,
                "image_id": i,
                "file_name": files[i],
                "object": obj,
                "question": question_text(obj, template, suffix),
                "label": label,
            }
        )
    return questions


def _with_caption_objects(ann, objects, captions, compat) -> dict:
    """Instance objects, then the objects the image's reference captions mention (first mention order)."""
    from lvsal_nb.eval.chair import Chair

    parse = Chair({}, compat=compat).mentions
    out = {i: list(objs) for i, objs in objects.items()}
    for image_id, texts in image_captions(captions).items():
        if image_id not in out:
            continue
        for t in texts:
            for m in parse(t):
                if m.object not in out[image_id]:
                    out[image_id].append(m.object)
    return out


def save_questions(questions: Sequence[Mapping], path: str | PathLike) -> Path:
    """Write questions as JSON Lines (one question per line, POPE's file format). Returns the path."""
    _check_questions(questions)
    from lvsal_nb.atomic import dumps, write_text  # atomic, strict JSON (see lvsal_nb.atomic)

    return write_text(Path(path), "".join(dumps(dict(q)) + "\n" for q in questions))


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
