"""Columns of the cursor step's saliency row (row q over all keys): the image-token part on the
patch grid and the text part as bars. Pure functions, like columns.py.
"""

from __future__ import annotations

import numpy as np

from ..trace import Trace
from .columns import NO_MARK, colors, display, fmt, row

HEAT_ALPHA = 0.75  # the heatmap over the thumbnail: one alpha, so colour alone carries the value

OUTSIDE_J = "#aab2bb"  # text keys that are not averaged into the score (the system part)


def _image_values(trace: Trace, step: int, layer: int | None) -> np.ndarray | None:
    """The image-token part of a step's row, [rows * cols] (None without an image grid)."""
    grid, span = trace.image_grid, trace.spans.image
    if not grid or not span or not trace.records or grid[0] * grid[1] > span[1] - span[0]:
        return None
    return np.asarray(row(trace, step, layer)[span[0] : span[0] + grid[0] * grid[1]], dtype=float)


def image_top(trace: Trace, layer: int | None) -> float:
    """The largest image-token saliency over all steps: the heatmap's per-trace scale [0, top]."""
    tops = [
        np.nanmax(v)
        for i in range(len(trace.records))
        if (v := _image_values(trace, i, layer)) is not None and v.size and np.isfinite(v).any()
    ]
    return float(max(tops)) if tops else 0.0


def image_patches(trace: Trace, step: int, layer: int | None, hi: float | None = None) -> dict:
    """The image-token part of a step's row on the patch grid: one row per patch, centre (x, y) in
    patch units with y up (grid row 0 at the top), raw value and its Viridis colour on the scale
    [0, hi] (default hi: `image_top`, the per-trace scale; pass the step's max for per step)."""
    keys = ("x", "y", "r", "c", "value", "text", "fill", "alpha")
    vals = _image_values(trace, step, layer)
    if vals is None:
        return {k: [] for k in keys}
    rows, cols = trace.image_grid
    hi = image_top(trace, layer) if hi is None else hi
    r, c = np.divmod(np.arange(rows * cols), cols)
    return {
        "x": (c + 0.5).tolist(),
        "y": (rows - r - 0.5).tolist(),
        "r": r.tolist(),
        "c": c.tolist(),
        "value": vals.tolist(),
        "text": [fmt(v) for v in vals],
        "fill": colors(vals, 0.0, hi),
        "alpha": [HEAT_ALPHA] * len(vals),
    }


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
    return {
        "x": list(range(len(pos))),
        "position": pos,
        "token": [display(trace.tokens[p]) for p in pos],
        "value": vals,
        "text": [fmt(v) if p <= q else "–" for v, p in zip(vals, pos)],
        "fill": [NO_MARK if p in in_j else OUTSIDE_J for p in pos],
    }


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
