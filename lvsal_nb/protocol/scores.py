"""Pure scoring functions for POPE and CHAIR (no data loading, no model).

Both follow the reference implementations: POPE's answer parser and metrics
(Li et al. 2023, ``evaluate.py`` of the POPE repo) and CHAIR's counts
(Rohrbach et al. 2018, ``chair.py``).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Collection, Sequence

import numpy as np

from lvsal_nb.errors import ConfigError

__all__ = ["PARSERS", "parse_yes_no", "pope_scores", "chair_scores"]

_NEGATIONS = {"no", "not"}
PARSERS = ("pope", "strict")


def parse_yes_no(text: str, parser: str = "pope") -> bool:
    """Parse a free-form answer to a yes/no question.

    ``parser="pope"`` (default) is POPE's ``evaluate.py`` rule, character for character: keep the
    text before the first '.' (when there is one), delete every ',', split on single spaces, and
    answer "no" when one of the pieces is exactly ``"No"``, ``"not"`` or ``"no"``; otherwise "yes".
    Its quirks are kept so scores are comparable with published ones: "NO", "No!", "(No)",
    "\\nNo", "There isn't a dog." and "I don't know" are all "yes" there.

    ``parser="strict"`` is a negation-aware reading (not POPE's): first sentence, case-insensitive
    words, typographic apostrophes normalised; "no" when a word is "no", "not" or ends in "n't".
    So "NO", "No!", "(No)" and "There isn't a dog." are "no" there; "I don't know" too.

    Args:
        text (str): the model's answer.
        parser (str): "pope" or "strict". Default: "pope".

    Returns:
        bool: True for "yes", False for "no".

    Examples::

        >>> parse_yes_no("No, there is not.")
        False
        >>> parse_yes_no("There isn't one.")          # POPE: no "No"/"no"/"not" piece
        True
        >>> parse_yes_no("There isn't one.", parser="strict")
        False
    """
    if not isinstance(text, str):
        raise ConfigError(
            f"parse_yes_no expects a str answer, got {type(text).__name__}; pass the decoded text."
        )
    if parser == "pope":
        # POPE's evaluate.py, literally.
        if text.find(".") != -1:
            text = text.split(".")[0]
        words = text.replace(",", "").split(" ")
        return not ("No" in words or "not" in words or "no" in words)
    if parser != "strict":
        raise ConfigError(f"unknown POPE answer parser {parser!r}; choose one of {list(PARSERS)}.")
    first = text.split(".")[0]
    # Normalise typographic apostrophes so "isn’t" counts like "isn't".
    first = first.replace("\u2019", "'").lower()
    for w in re.findall(r"[a-z']+", first):
        w = w.strip("'")
        if w in _NEGATIONS or w.endswith("n't"):
            return False
    return True


def _as_bools(name: str, values: Sequence[bool]) -> list[bool]:
    if isinstance(values, (str, bytes)):
        raise ConfigError(f"{name} must be a sequence of booleans (True = yes), not a string.")
    try:
        out = list(values)
    except TypeError as e:
        raise ConfigError(
            f"{name} must be a sequence of booleans (True = yes); got {type(values).__name__}."
        ) from e
    for i, v in enumerate(out):
        # bool("no") is True: strings here are a mistake, so refuse them instead of miscounting.
        if not isinstance(v, (numbers.Integral, np.bool_)) or v not in (0, 1):
            raise ConfigError(
                f"{name}[{i}] is {v!r}; pass booleans (True = yes). "
                "Parse text answers with parse_yes_no first."
            )
    return [bool(v) for v in out]


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def pope_scores(pred_yes: Sequence[bool], label_yes: Sequence[bool]) -> dict:
    """POPE metrics with "yes" as the positive class.

    Args:
        pred_yes (Sequence[bool]): parsed answers, True = the model said yes.
        label_yes (Sequence[bool]): ground truth, True = the object is in the image.

    Returns:
        dict: ``accuracy``, ``precision``, ``recall``, ``f1``, ``yes_ratio`` (floats in [0, 1];
        a ratio with a zero denominator is 0.0) and ``n`` (int, number of questions).

    Examples::

        >>> pope_scores([True, True, False, False], [True, False, False, True])["f1"]
        0.5
    """
    pred = _as_bools("pred_yes", pred_yes)
    label = _as_bools("label_yes", label_yes)
    if len(pred) != len(label):
        raise ConfigError(
            f"pred_yes has {len(pred)} answers but label_yes has {len(label)}; "
            "pass one prediction per question, in the same order."
        )
    if not pred:
        raise ConfigError("pope_scores got no questions; pass at least one answer and its label.")
    tp = sum(p and y for p, y in zip(pred, label))
    fp = sum(p and not y for p, y in zip(pred, label))
    tn = sum((not p) and (not y) for p, y in zip(pred, label))
    fn = sum((not p) and y for p, y in zip(pred, label))
    n = len(pred)
    precision = _div(tp, tp + fp)
    recall = _div(tp, tp + fn)
    return {
        "accuracy": _div(tp + tn, n),
        "precision": precision,
        "recall": recall,
        "f1": _div(2 * precision * recall, precision + recall),
        "yes_ratio": _div(tp + fp, n),
        "n": n,
    }


def chair_scores(
    mentioned: Sequence[Sequence[str]],
    truth: Sequence[Collection[str]],
    lengths: Sequence[int] | None = None,
) -> dict:
    """CHAIR_S, CHAIR_I, recall and average length over a set of captions.

    Counts follow Rohrbach et al.'s ``chair.py``: every mention counts for CHAIR_I (a caption
    saying "dog" twice about a dog-less image adds 2 hallucinated mentions out of 2), a caption
    counts once for CHAIR_S, and recall is covered ground-truth objects over all ground-truth
    objects, both summed over captions (a micro average).

    Args:
        mentioned (Sequence[Sequence[str]]): per caption, its canonical object mentions in order,
            with repeats.
        truth (Sequence[Collection[str]]): per caption, the image's ground-truth canonical objects.
        lengths (Sequence[int] | None): per caption, its length in words. Default: None
            (then ``avg_len`` is NaN).

    Returns:
        dict: ``chair_s``, ``chair_i``, ``recall`` (floats; 0.0 when the denominator is 0),
        ``avg_len`` (float), ``n_captions``, ``n_mentions``, ``n_hallucinated`` (ints).

    Examples::

        >>> chair_scores([["dog", "cat"], ["cat"]], [{"dog"}, {"cat", "bed"}])["chair_i"]
        0.3333333333333333
    """
    if isinstance(mentioned, (str, bytes)) or isinstance(truth, (str, bytes)):
        raise ConfigError("mentioned and truth must be sequences with one entry per caption, not strings.")
    mentioned = list(mentioned)
    truth = list(truth)
    if len(mentioned) != len(truth):
        raise ConfigError(
            f"mentioned has {len(mentioned)} captions but truth has {len(truth)}; "
            "pass one ground-truth object set per caption, in the same order."
        )
    if not mentioned:
        raise ConfigError("chair_scores got no captions; pass at least one caption's mentions.")
    for i, (m, t) in enumerate(zip(mentioned, truth)):
        if isinstance(m, str):
            raise ConfigError(
                f"mentioned[{i}] is the string {m!r}; pass a list of object names such as [{m!r}]."
            )
        if isinstance(t, str):
            raise ConfigError(
                f"truth[{i}] is the string {t!r}; pass a set of object names such as {{{t!r}}}."
            )
    if lengths is not None:
        lengths = list(lengths)
        if len(lengths) != len(mentioned):
            raise ConfigError(
                f"lengths has {len(lengths)} entries but there are {len(mentioned)} captions; "
                "pass one word count per caption or lengths=None."
            )
        if any((not isinstance(n, numbers.Real)) or n < 0 for n in lengths):
            raise ConfigError("lengths must be non-negative word counts, one per caption.")

    n_mentions = n_halluc = n_halluc_caps = n_gt = n_covered = 0
    for m, t in zip(mentioned, truth):
        gt = set(t)
        bad = sum(1 for w in m if w not in gt)
        n_mentions += len(m)
        n_halluc += bad
        n_halluc_caps += bad > 0
        n_gt += len(gt)
        n_covered += len(gt & set(m))
    return {
        "chair_s": _div(n_halluc_caps, len(mentioned)),
        "chair_i": _div(n_halluc, n_mentions),
        "recall": _div(n_covered, n_gt),
        "avg_len": float(sum(lengths)) / len(lengths) if lengths is not None else math.nan,
        "n_captions": len(mentioned),
        "n_mentions": n_mentions,
        "n_hallucinated": n_halluc,
    }
