"""Per object word of a traced toy-v2 caption: its error type and the signals that might detect it.

Signals, all read from the Trace of one greedy caption (the saliency row of step k is the query at
position p = output start + k - 1, which predicts word k; rows are head-mean and l2-normalised over
all keys, averaged over the Trace's layers):
    s_J        the paper's score: `Step.saliency` (mean of the row over J, context "text")
    s_outputs  mean of the row over the generated words before word k (context "outputs")
    s_image    mean of the row over the image tokens (image-only saliency)
    img_share  the image tokens' share of the row's sum (0..1)
    s_source   the row at the list word a recap word copies (its own listing; for a word never
               listed, the list word it should have copied); NaN for list words
    prob       the token's probability
    drop       whether the demo's drop flag fires there (`lvsal_nb.toy.drops.object_drops`)
Also `dist`: for a recap word, tokens back to the list word a faithful copy would copy
(`ObjectLabel.expected`); NaN for list words and recap words past the list's end.
"""

from __future__ import annotations

import math

import numpy as np

from lvsal_nb.toy.drops import object_drops
from lvsal_nb.toy.labels import label_words

SIGNALS = ("s_J", "s_outputs", "s_image", "img_share", "s_source", "prob")


def trace_words(trace) -> list[str]:
    """The generated words of a toy trace, one per step (the toy tokenizer is word-level)."""
    return [r.token.strip().lower() for r in trace.records]


def object_rows(trace, truth: list[str]) -> list[dict]:
    """One dict per generated shape noun: label fields (`labels.ObjectLabel`) + `SIGNALS` + step + dist."""
    words = trace_words(trace)
    out0 = trace.spans.output[0]
    img = trace.spans.image
    rows = []
    drops = object_drops(words, [r.saliency for r in trace.records])
    for lab in label_words(words, truth):
        st = trace.records[lab.index]
        r = {"step": lab.index, "shape": lab.shape, "part": lab.part, "type": lab.type,
             "hallucinated": lab.hallucinated, "prob": float(st.prob), "drop": lab.index in drops,
             "s_J": math.nan if st.saliency is None else float(st.saliency),
             "dist": math.nan if lab.expected is None else float(lab.index - lab.expected)}  # fmt: skip
        row = None if st.row is None else np.asarray(st.row, dtype=np.float64).mean(axis=0)  # [p + 1]
        if row is None:
            r.update(s_outputs=math.nan, s_image=math.nan, img_share=math.nan, s_source=math.nan)
        else:
            q = st.position
            r["s_outputs"] = float(row[out0 : q + 1].mean()) if q >= out0 else math.nan
            r["s_image"] = float(row[img[0] : img[1]].mean()) if img else math.nan
            r["img_share"] = float(row[img[0] : img[1]].sum() / max(row.sum(), 1e-12)) if img else math.nan
            src = lab.source if lab.source is not None else lab.expected
            r["s_source"] = float(row[out0 + src]) if lab.part == "recap" and src is not None else math.nan
        rows.append(r)
    return rows
