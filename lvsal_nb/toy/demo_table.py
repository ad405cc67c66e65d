"""The `lvsal demo` token table for the toy world: saliency per token and the exact error type of
every object word (`labels`). The drop flag (`drops.object_drops`) is off by default: on the shipped
toy weights low saliency does not mark hallucinated object words (RESULTS.md, issue 22), so a flag
there would claim what the measurements do not support."""

from __future__ import annotations

import sys

from lvsal_nb.toy.drops import object_drops
from lvsal_nb.toy.labels import CORRECT_TYPES, label_words
from lvsal_nb.toy.signals import trace_words

EXPLAIN = {
    "misread": "an absent shape named while listing (the image was misread)",
    "partner": "the absent partner of a present shape (the co-occurrence prior)",
    "cascade": "the partner of an earlier hallucinated word (copies a hallucination)",
    "repeat": "a shape named a second time",
    "overrun": "one more shape after every object (or every listed one) was named",
    "recap_order": "the recap names a listed shape out of turn (memory: order)",
    "recap_never_listed": "the recap names a shape the list never named (memory-driven hallucination)",
}


def _bar(x: float | None, top: float, width: int = 20) -> str:
    if x is None or top <= 0:
        return " " * width
    n = max(0, min(width, round(x * width / top)))
    return "█" * n + "·" * (width - n)


def print_demo_table(
    trace, truth: list[str], alpha: float = 0.6, window: int = 5, out=None, flag_drops: bool = False
) -> list:
    """Print the table; return the object labels (`labels.ObjectLabel`, one per shape noun).

    flag column: the object word's type ("ok: correct", "HALLUCINATED: partner", ...); with
    flag_drops, "drop" first where an object word's saliency falls below alpha x the mean of the
    last `window` object words.
    """
    out = out or sys.stdout
    words = trace_words(trace)
    labels = {lab.index: lab for lab in label_words(words, truth)}
    drops = object_drops(words, [r.saliency for r in trace.records], alpha, window) if flag_drops else set()
    top = max((s.saliency for s in trace.records if s.saliency is not None), default=0.0)
    print(f"{'step':>4}  {'token':<14} {'p':>6}  {'saliency':>8}  {'':20}  flag", file=out)
    for i, s in enumerate(trace.records):
        flag = "drop" if i in drops else ""
        lab = labels.get(i)
        if lab is not None:
            kind = "ok" if lab.type in CORRECT_TYPES else ("HALLUCINATED" if lab.hallucinated else "ERROR")
            flag = f"{flag} {kind}: {lab.type}".strip()
        sal = "    -   " if s.saliency is None else f"{s.saliency:8.4f}"
        print(f"{s.step:>4}  {s.token.strip()[:14]:<14} {s.prob:6.3f}  {sal}  {_bar(s.saliency, top)}  {flag}",  # noqa: E501
              file=out)  # fmt: skip
    return list(labels.values())


def print_errors(trace, labels: list, out=None) -> None:
    """One line per object word that is not a correct read / faithful copy, with what its type means."""
    out = out or sys.stdout
    bad = [lab for lab in labels if lab.type not in CORRECT_TYPES]
    if not bad:
        print("every object word is a correct read or a faithful recap copy", file=out)
    for lab in bad:
        sal = trace.records[lab.index].saliency
        s = "-" if sal is None else f"{sal:.4f}"
        print(f"step {lab.index:>3}  {lab.shape:<9} {lab.part:<5} {lab.type:<19} saliency {s}  "
              f"{EXPLAIN.get(lab.type, '')}", file=out)  # fmt: skip
