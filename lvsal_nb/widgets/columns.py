"""Trace -> ColumnDataSource columns for the token strip and the saliency curve, and the helpers
all columns share: pure functions of (trace, step, layer, marks), no Bokeh, so tests can check
every number a figure shows. The cursor step's row views are in row_columns.py.

`layer` is a traced layer index or None for the mean over layers (the score SGRS compares with τ).
Colours follow the one colour language (palette.py): Viridis, low saliency dark, high bright, on a
fixed stated scale: per trace [0, max over the trace] (or per step when asked).
"""

from __future__ import annotations

import math

import numpy as np

from ..palette import MARK_COLORS, MARK_STYLE, SALIENCY_PALETTE, color_for, text_color_for
from ..trace import Step, Trace

PALETTE = SALIENCY_PALETTE  # one palette for every saliency colour (palette.py)
NO_MARK = "#4575b4"  # curve points of unmarked steps (not a saliency colour)
STRIP_CHARS = 72  # characters per token-strip line
CAND_LINE = 0.62  # height of one rejected-candidate line, in token lines


def display(token: str) -> str:
    """A token as shown in a cell: tokenizer markers and whitespace made visible."""
    t = token.replace("\u2581", " ").replace("\u0120", " ").replace("\u010a", "\n")
    t = t.replace("\n", "⏎").replace("\t", "⇥").strip()
    return t or "␣"


def score(s, layers: list[int], layer: int | None) -> float:
    """A Step's or Candidate's saliency for the chosen layer (NaN when there is none)."""
    if layer is not None and s.layer_scores:
        v = s.layer_scores[layers.index(layer)]
    else:
        v = s.saliency
    return math.nan if v is None else float(v)


def top(values) -> float:
    """The top of a per-trace scale [0, top]: the largest finite value (0.0 when there is none)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else 0.0


def colors(values, lo: float = 0.0, hi: float | None = None) -> list[str]:
    """Viridis colours of values on the fixed scale [lo, hi] (default hi: their max); NaN grey."""
    hi = top(values) if hi is None else hi
    return [color_for(x, lo, hi) for x in values]


def rejected(s: Step):
    """SGRS candidates that were drawn and turned down at this step, in draw order."""
    return sorted((c for c in s.candidates if c.round is not None and not c.accepted), key=lambda c: c.round)


def has_rejected(trace: Trace) -> bool:
    """Whether any step of the trace turned down an SGRS candidate (the views hide what it lacks)."""
    return any(rejected(s) for s in trace.records)


def row(trace: Trace, step: int, layer: int | None) -> np.ndarray:
    """The saliency row of a step over keys 0..q: [q + 1] (zeros when the step has none)."""
    s = trace.records[step]
    if s.row is None:
        return np.zeros(s.position + 1, dtype=np.float32)
    return s.row.mean(0) if layer is None else s.row[trace.layers.index(layer)]


def fmt(x: float) -> str:
    """A saliency as text: 3 decimals, "–" for NaN."""
    return "–" if not math.isfinite(x) else f"{x:.3f}"


# ---- token strip ---------------------------------------------------------------------------------
STRIP_KEYS = (
    "step",
    "x",
    "y",
    "line_h",
    "mark_y",
    "w",
    "h",
    "text",
    "text_color",
    "saliency",
    "value",
    "fill",
    "prob",
    "tau",
    "decision",
    "mark",
    "mark_color",
    "mark_dash",
    "mark_alpha",
    "rejected",
)


def strip(
    trace: Trace, layer: int | None, marks: dict, width: int = STRIP_CHARS, show_rejected: bool = True
) -> tuple[dict, dict]:
    """(token cells, rejected-candidate labels), laid out in wrapped lines of `width` characters.

    Token cells: one row per step with centre x, y, width w, height h (character units; line i at
    y = -i * line_h), text and its colour (white on the dark half of the palette), raw saliency,
    fill colour on the per-trace scale [0, max saliency of the trace], and the mark's outline
    (mark_color, mark_dash, mark_alpha 0 when unmarked; mark_y: the old underline's y).
    Candidate labels (none unless show_rejected): one
    row per rejected candidate, at its token's left edge, stacked under the token.
    """
    recs, lay = trace.records, trace.layers
    sal = [score(s, lay, layer) for s in recs]
    rej = [rejected(s) for s in recs] if show_rejected else [[] for _ in recs]
    line_h = 1.0 + CAND_LINE * max((len(r) for r in rej), default=0)
    cells: dict[str, list] = {k: [] for k in STRIP_KEYS}
    cands: dict[str, list] = {k: [] for k in ("step", "x", "y", "text")}
    x0, line, hi = 0.0, 0, top(sal)
    for s, v in zip(recs, sal):
        text = display(s.token)
        labels = [f"✗{display(c.token)} {fmt(score(c, lay, layer)).lstrip('0')}" for c in rejected(s)]
        w = max([len(text)] + [len(t) for t in labels if show_rejected]) + 1.0
        if x0 > 0 and x0 + w > width:
            x0, line = 0.0, line + 1
        y, m = -line * line_h, marks.get(s.step)
        cell = dict(
            step=s.step,
            x=x0 + w / 2,
            y=y,
            line_h=line_h,
            mark_y=y - 0.42,
            w=w - 0.3,
            h=0.9,
            text=text,
            text_color=text_color_for(v, 0.0, hi),
            saliency=v,
            value=fmt(v),
            fill=color_for(v, 0.0, hi),
            prob=f"{s.prob:.3f}",
            tau=fmt(math.nan if s.tau is None else s.tau),
            decision=s.decision,
            mark=m.label if m else "",
            mark_color=MARK_COLORS[m.label] if m else NO_MARK,
            mark_dash=MARK_STYLE[m.label][1] if m else "solid",
            mark_alpha=1.0 if m else 0.0,
            rejected=", ".join(labels) or "none",
        )
        for k in STRIP_KEYS:
            cells[k].append(cell[k])
        for j, t in enumerate(labels if show_rejected else []):
            below = y - 0.5 - CAND_LINE * (j + 0.5)
            for k, val in zip(("step", "x", "y", "text"), (s.step, x0 + 0.15, below, t)):
                cands[k].append(val)
        x0 += w
    return cells, cands


def strip_cursor(cells: dict, step: int) -> dict:
    """The outline around the cursor's token cell (empty when there are no steps)."""
    keys = ("x", "y", "w", "h")
    if step >= len(cells["step"]):
        return {k: [] for k in keys} | {"step": []}
    return {k: [cells[k][step]] for k in keys} | {"step": [step]}


# ---- saliency over steps ---------------------------------------------------------------------------
def curve(trace: Trace, layer: int | None, marks: dict) -> dict:
    """One point per step: its score, τ (NaN without SGRS), and a colour from its mark."""
    recs = trace.records
    sal = [score(s, trace.layers, layer) for s in recs]
    m = [marks.get(s.step) for s in recs]
    return {
        "step": [s.step for s in recs],
        "saliency": sal,
        "value": [fmt(v) for v in sal],
        "tau": [math.nan if s.tau is None else s.tau for s in recs],
        "token": [display(s.token) for s in recs],
        "mark": [x.label if x else "" for x in m],
        "color": [MARK_COLORS[x.label] if x else NO_MARK for x in m],
        "size": [9 if x else 6 for x in m],
    }


def curve_rejected(trace: Trace, layer: int | None) -> dict:
    """Every rejected SGRS candidate as a point (step, its score)."""
    pts = [
        (s.step, score(c, trace.layers, layer), display(c.token)) for s in trace.records for c in rejected(s)
    ]
    return {
        "step": [p[0] for p in pts],
        "saliency": [p[1] for p in pts],
        "token": [p[2] for p in pts],
        "value": [fmt(p[1]) for p in pts],
    }


def curve_cursor(step: int, n_steps: int) -> dict:
    """The vertical cursor line at the current step (a VSpan: full height, no effect on ranges)."""
    return {"x": [step] if n_steps else []}
