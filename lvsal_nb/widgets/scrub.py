"""Scrubbing in the browser: every step's saliency row ships to the page once, and a CustomJS
(scrub.js) redraws the cursor's views from it when the step, layer or colour scale changes, with
no kernel round trip (issue 19, item 3: it was 0.2–0.45 s per step through Python).

Data the JS reads (built by `scrub_columns`, pure, tested in tests/widgets/test_scrub.py):

    rows   {"flat": [float32 array]}   every step's row [layers, q + 1], C order, concatenated
    steps  one row per step: step, q (its query position), offset (where its row starts in flat),
           ctx_x (its token's x on the context axis), j0 (first key of J; J = j0..q)
    cursor (ScrubCursor) per trace: n_layers, image_start, grid_rows, grid_cols (0: no heatmap),
           ctx_pos / ctx_tokens (the non-image positions and their display text); per view:
           step, layer (-1 = mean of layers), scale ("trace" | "step"), image_top

A 512-step LLaVA-sized trace (rows of 621..1132 keys, 3 layers) is 5.4 MB, sent once (float32, as
binary comm buffers); a step change sends nothing to the browser. While a live trace grows, the
rows go at most once per ROWS_EVERY_S once they pass SMALL_ROWS (re-sending all of them per new
step would be quadratic); meanwhile the kernel draws the cursor's views of the steps the page has
no rows for, as it did before.

Who moves the cursor: the browser owns `cursor.step` (set in the page only, never sent per key
press). Keys and taps set it, and the page reports the step it shows in `shown` (with moved_by
"user") once the keys pause for 50 ms, at least every 250 ms while they do not: the kernel's info
line, candidates and mark panel follow without ~5 comm messages per step competing with the
drawing. The kernel moves the cursor by writing `goto` (the page applies it, reports it with
moved_by "kernel" and resets goto to -1), so both sides agree on the step the page shows, even
when a live update and a key press cross.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bokeh.core.properties import Float, Int, List, String
from bokeh.document import Document
from bokeh.model import DataModel
from bokeh.models import ColumnDataSource, CustomJS

from ..palette import NAN_COLOR, SALIENCY_PALETTE
from ..trace import Trace
from .columns import NO_MARK, display
from .row_columns import OUTSIDE_J, context_positions

_JS = (Path(__file__).parent / "scrub.js").read_text(encoding="utf-8")
ROWS_EVERY_S = 1.0  # while decoding: the rows go to the page at most this often ...
SMALL_ROWS = 1 << 20  # ... once they are larger than this (bytes); smaller ones go every step


class ScrubCursor(DataModel):
    """The viewer's browser-side state (a Bokeh data model: no view, synced with the kernel)."""

    step = Int(0, help="the step the page shows (written in the page, not synced per change)")
    shown = Int(0, help="the step the page shows, as it last reported it to the kernel")
    goto = Int(-1, help="a step the kernel asks the page to show; -1 once applied")
    moved_by = String("kernel", help='who wrote the last step: "user" (keys, taps) or "kernel"')
    layer = Int(-1, help="index into trace.layers of the layer shown; -1 = mean of layers")
    scale = String("trace", help='the heatmap colour scale: "trace" (fixed) or "step"')
    image_top = Float(0.0, help="the per-trace top of the heatmap's scale for this layer")
    n_layers = Int(1, help="rows per step in rows.flat")
    image_start = Int(0, help="first image-token position")
    grid_rows = Int(0, help="image patch grid rows (0: no heatmap)")
    grid_cols = Int(0, help="image patch grid columns")
    ctx_pos = List(Int, help="the non-image positions, in order (the context axis)")
    ctx_tokens = List(String, help="their display text")


def scrub_columns(trace: Trace) -> tuple[dict, dict, dict]:
    """(rows, steps, cursor fields) of a trace, as described in the module docstring.

    rows["flat"][0][offset[t] + l * (q_t + 1) + k] is step t's row of layer index l at key k
    (zeros for a step without a row, as `columns.row` shows it)."""
    recs, n_layers = trace.records, max(len(trace.layers), 1)
    parts, offsets, qs, ctx_x, j0 = [], [], [], [], []
    pos = context_positions(trace)
    index = {p: i for i, p in enumerate(pos)}
    context = trace.config.get("context", "text")
    off = 0
    for s in recs:
        n = s.position + 1
        r = np.zeros((n_layers, n), np.float32) if s.row is None else np.asarray(s.row, np.float32)
        parts.append(r.reshape(-1))
        offsets.append(off)
        off += r.size
        qs.append(s.position)
        ctx_x.append(index.get(s.position + 1, len(pos)))
        keys = trace.spans.context(s.position, context)
        j0.append(int(keys[0]) if keys.size else s.position + 1)
    flat = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    grid, span = trace.image_grid, trace.spans.image
    g_rows, g_cols = grid if grid else (0, 0)
    ok = span is not None and 0 < g_rows * g_cols <= span[1] - span[0]
    fields = dict(
        n_layers=n_layers,
        image_start=span[0] if ok and span else 0,
        grid_rows=g_rows if ok else 0,
        grid_cols=g_cols if ok else 0,
        ctx_pos=pos,
        ctx_tokens=[display(trace.tokens[p]) for p in pos],
    )
    steps = {"step": [s.step for s in recs], "q": qs, "offset": offsets, "ctx_x": ctx_x, "j0": j0}
    return {"flat": [flat]}, steps, fields


def attach(cursor: ScrubCursor, src: dict[str, ColumnDataSource], figures: dict, bar, doc: Document) -> None:
    """Wire the JS into the viewer's document: redraw on cursor / data changes, apply `goto`, taps
    on the strip and the curve, ←/→/Home/End on the figures (installed when the document is ready).

    Args:
        cursor: the viewer's ScrubCursor. src: its sources by name (figures.SOURCE_NAMES).
        figures: its figures by name. bar: the heatmap's ColorBar (None without an image).
        doc: the Document holding the layout (the BokehModel renders it)."""
    args = dict(
        cursor=cursor,
        rows=src["rows"],
        steps=src["steps"],
        strip=src["strip"],
        image=src["image"],
        context=src["context"],
        strip_cursor=src["strip_cursor"],
        curve_cursor=src["curve_cursor"],
        context_cursor=src["context_cursor"],
        bars=[bar] if bar is not None else [],
        root=figures["strip"],
        palette=list(SALIENCY_PALETTE),
        nan_color=NAN_COLOR,
        in_j=NO_MARK,
        out_j=OUTSIDE_J,
    )

    def js(action: str) -> CustomJS:
        return CustomJS(args=args, code=_JS + "\n" + action)

    redraw = js("S.render();")
    cursor.js_on_change("step", redraw)
    for prop in ("layer", "scale", "image_top", "n_layers"):
        cursor.js_on_change(prop, redraw)
    src["rows"].js_on_change("data", redraw)
    src["steps"].js_on_change("data", redraw)
    cursor.js_on_change("goto", js("S.apply_goto();"))
    for name in ("strip", "curve"):  # a tap selects a glyph: move there, then clear the selection
        src[name].selected.js_on_change("indices", js(f"S.tap(cb_obj, {name});"))
    doc.js_on_event("document_ready", js("S.install_keys();"))
