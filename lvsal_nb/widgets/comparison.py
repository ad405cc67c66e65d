"""Comparing two runs (the tuner's A and B): which tokens differ, CHAIR against known objects, and
the HTML panel of one run. Pure functions of Traces; no widgets."""

from __future__ import annotations

import difflib
import html

from ..trace import Trace
from .columns import rejected, score

DIFF_BACKGROUND = "#ffe08a"
HALLUCINATED = "#d62728"


def token_differences(a: Trace, b: Trace) -> tuple[set[int], set[int]]:
    """Steps of a and of b whose tokens lie outside the matching blocks of the two token-id
    sequences (difflib, no junk heuristic)."""
    ta, tb = [s.token_id for s in a.records], [s.token_id for s in b.records]
    da: set[int] = set()
    db: set[int] = set()
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if op != "equal":
            da.update(range(i1, i2))
            db.update(range(j1, j2))
    return da, db


def chair(trace: Trace, truth: set[str], *, toy: bool = False) -> dict:
    """CHAIR of one caption, plus the `mentioned` and `hallucinated` object names in order.

    toy=True (a toy-world scene): the toy's shape words (toy.scenes.mentioned_objects) and
    eval.scores.chair_scores. Else (a real model): eval.chair.Chair, the COCO synonym table of
    Rohrbach et al., with `truth` as COCO categories or synonyms; `hallucinated` then also holds
    each mention's category ("puppy" -> "dog")."""
    if toy:
        from ..eval.scores import chair_scores
        from ..toy.scenes import mentioned_objects

        m = mentioned_objects(trace.text)
        res = chair_scores([m], [truth], lengths=[len(trace.text.split())])
        return {**res, "mentioned": m, "hallucinated": [o for o in m if o not in truth]}
    from ..eval.chair import Chair

    ch = Chair({0: truth})
    summary, per = ch.evaluate({0: trace.text})
    gt = ch.truth[0]
    m = list(per["objects"][0])
    return {**summary, "mentioned": m, "hallucinated": [o for o in m if o not in gt]}


def mentions_in(token: str, toy: bool) -> list[str]:
    """Object categories a single token mentions (toy shape words, or COCO categories)."""
    if toy:
        from ..toy.scenes import mentioned_objects

        return mentioned_objects(token)
    from ..eval.chair import Chair

    return [o for _w, o in Chair({}).caption_objects(token)]


def settings_label(kw: dict) -> str:
    """ "SGRS K=5 α=0.6 W=5 R=3 · LocoRE β=0.15 w_s=5" for a run's trace keywords."""
    sg, lc = kw.get("sgrs"), kw.get("locore")
    left = f"SGRS K={sg.k} α={sg.alpha:g} W={sg.window} R={sg.rounds}" if sg else "no SGRS"
    right = "no LocoRE"
    if lc:
        right = f"LocoRE β={lc.beta:g} w_s={lc.window}" + (f" layers {list(lc.layers)}" if lc.layers else "")
    return f"{left} · {right}"


def run_panel(
    slot: str, trace: Trace | None, kw: dict, diff: set[int], scores: dict | None, toy: bool = False
) -> str:
    """HTML of one run: its settings, its text (differing tokens on yellow, hallucinated objects in
    red, saliency on hover) and its counts (+ CHAIR when scores are given)."""
    if trace is None:
        return f"<b>{slot}</b>: <i>not run yet</i>"
    bad = set(scores["hallucinated"]) if scores else set()
    words = []
    for s in trace.records:
        # differing tokens: a pale background with black text, readable in light and dark themes
        style = f"background:{DIFF_BACKGROUND};color:#000;" if s.step in diff else ""
        if bad and bad.intersection(mentions_in(s.token, toy)):
            style += f"color:{HALLUCINATED};font-weight:bold;"
        tip = html.escape(f"step {s.step} · saliency {score(s, trace.layers, None):.3f}", quote=True)
        words.append(f"<span title='{tip}' style='{style}'>{html.escape(s.token)}</span>")
    stats = f"{len(trace.records)} tokens · {sum(len(rejected(s)) for s in trace.records)} rejected draws"
    if scores:
        stats += (
            f" · <b>CHAIR_S {scores['chair_s']:.0f} · CHAIR_I {scores['chair_i']:.2f}</b> · recall "
            f"{scores['recall']:.2f}" + (f" · hallucinated: {', '.join(sorted(bad))}" if bad else "")
        )
    muted = "color:var(--jp-ui-font-color2, #666)"  # the theme's secondary text colour
    return (
        f"<div><b>{slot}</b> <span style='{muted}'>{html.escape(settings_label(kw))}</span></div>"
        f"<div style='font-family:monospace;white-space:pre-wrap;margin:4px 0'>{''.join(words)}</div>"
        f"<div style='{muted}'>{stats}</div>"
    )
