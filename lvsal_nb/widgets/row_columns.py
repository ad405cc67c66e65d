"""Columns of the cursor step's saliency row (row q over all keys): the image-token part on the
patch grid and the text part as bars. Pure functions, like columns.py.
"""

from __future__ import annotations

import numpy as np

from ..trace import Trace
from .columns import HEAT, NO_MARK, colors, display, fmt, row

OUTSIDE_J = "#aab2bb"  # text keys that are not averaged into the score (the system part)


def image_patches(trace: Trace, step: int, layer: int | None) -> dict:
    """The image-token part of a step's row on the patch grid: one row per patch, centre (x, y) in
    patch units with y up (grid row 0 at the top), raw value and a heat colour + alpha."""
    keys = ("x", "y", "r", "c", "value", "text", "fill", "alpha")
    grid, span = trace.image_grid, trace.spans.image
    if not grid or not span or not trace.records or grid[0] * grid[1] > span[1] - span[0]:
        return {k: [] for k in keys}
    rows, cols = grid
    vals = np.asarray(row(trace, step, layer)[span[0]: span[0] + rows * cols], dtype=float)
    z = (vals - vals.min()) / (np.ptp(vals) or 1.0)
    r, c = np.divmod(np.arange(rows * cols), cols)
    return {"x": (c + 0.5).tolist(), "y": (rows - r - 0.5).tolist(), "r": r.tolist(), "c": c.tolist(),
            "value": vals.tolist(), "text": [fmt(v) for v in vals], "fill": colors(vals, HEAT),
            "alpha": (0.1 + 0.7 * z).tolist()}


def context_positions(trace: Trace) -> list[int]:
    """The non-image positions of the sequence (system, prompt, outputs), in order."""
    span = trace.spans.image
    return [p for p in range(len(trace.tokens)) if not (span and span[0] <= p < span[1])]


def context_bars(trace: Trace, step: int, layer: int | None) -> dict:
    """The text part of a step's row: one bar per non-image position (x = its ordinal), zero past
    q. Colour: in J (the keys averaged into the score) or not."""
    pos = context_positions(trace)
    keys = ("x", "position", "token", "value", "text", "fill")
    if not trace.records:
        return {k: [] for k in keys}
    r, q = row(trace, step, layer), trace.records[step].position
    in_j = set(trace.spans.context(q, trace.config.get("context", "text")).tolist())
    vals = [float(r[p]) if p <= q else 0.0 for p in pos]
    return {"x": list(range(len(pos))), "position": pos, "token": [display(trace.tokens[p]) for p in pos],
            "value": vals, "text": [fmt(v) if p <= q else "–" for v, p in zip(vals, pos)],
            "fill": [NO_MARK if p in in_j else OUTSIDE_J for p in pos]}


def context_top(trace: Trace, layer: int | None) -> float:
    """The largest text-part value over all steps (the context figure's common y scale)."""
    pos = np.asarray(context_positions(trace), dtype=int)
    top = 0.0
    for i in range(len(trace.records)):
        r = row(trace, i, layer)
        p = pos[pos < r.shape[0]]
        if p.size:
            top = max(top, float(np.nanmax(r[p])))
    return top


def context_cursor(trace: Trace, step: int) -> dict:
    """Where the step's token sits (q + 1) on the context axis: a band [x0, x1] one bar wide."""
    if not trace.records:
        return {"x0": [], "x1": [], "position": []}
    p = trace.records[step].position + 1
    pos = context_positions(trace)
    x = pos.index(p) if p in pos else len(pos)
    return {"x0": [x - 0.5], "x1": [x + 0.5], "position": [p]}
